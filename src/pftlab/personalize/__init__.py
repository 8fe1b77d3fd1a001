"""Post-hoc personalization methods, each a small recipe file registered here."""

from pftlab.personalize import ft, lp, lpft
from pftlab.personalize.recipe import Method, Phase

METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (ft, lp, lpft)}

__all__ = ["METHODS", "Method", "Phase"]
