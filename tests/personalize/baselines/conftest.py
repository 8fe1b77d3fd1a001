from tests.tiny_federation import fed, new_model  # noqa: F401  (fixtures)
