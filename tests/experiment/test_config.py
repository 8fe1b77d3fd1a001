from __future__ import annotations

from pathlib import Path

import pytest

from pftlab.core.errors import UserError
from pftlab.experiment.config import Config, dumps_toml, from_dict, load_config

QUICKSTART = Path(__file__).parents[2] / "configs" / "quickstart.toml"


def test_quickstart_config_is_valid_and_round_trips(tmp_path: Path) -> None:
    cfg = load_config(QUICKSTART)
    assert cfg.personalize.methods == ["ft", "lp", "lp-ft"]
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(dumps_toml(cfg))
    assert load_config(resolved).resolved() == cfg.resolved()


def test_defaults_fill_every_method_table() -> None:
    resolved = Config().resolved()
    assert set(resolved["method"]) == {"ft", "lp", "lp-ft"}
    assert resolved["method"]["lp-ft"]["lp_epochs"] == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"bogus": 1}, "unknown key 'bogus'"),
        (
            {"data": {"num_client": 3}},
            "unknown key 'data.num_client' for benchmark 'digits-quick'; allowed: benchmark, size,",
        ),
        ({"data": {"benchmark": "imagenet"}}, "data.benchmark: unknown benchmark 'imagenet'; allowed: digits-quick"),
        ({"data": {"size": "huge"}}, "data.size: Input should be 'quick' or 'default'"),
        ({"data": {"domains": ["sepia"]}}, "data.domains.0: Input should be 'clean', 'rotate'"),
        ({"data": {"num_clients": "3"}}, "data.num_clients: Input should be a valid integer"),
        ({"data": {"num_clients": 1}}, "data.num_clients: Input should be greater than or equal to 2"),
        ({"data": {"alpha": float("nan")}}, "data.alpha: Input should be a finite number"),
        ({"data": {"alpha": 0.0}}, "data.alpha: Input should be greater than 0"),
        ({"data": {"partition": "zipf"}}, "data.partition: Input should be 'iid', 'dirichlet' or 'pathological'"),
        ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, "val_fraction + test_fraction must be <= 0.8"),
        ({"federated": {"lr": -1.0}}, "federated.lr: Input should be greater than 0"),
        ({"federated": {"rounds": True}}, "federated.rounds: Input should be a valid integer"),
        ({"personalize": {"methods": []}}, "personalize.methods: List should have at least 1 item"),
        ({"personalize": {"methods": ["ft", "magic"]}}, "unknown method 'magic'; allowed: ft, lp, lp-ft"),
        ({"personalize": {"methods": ["ft", "ft"]}}, "methods must not repeat"),
        ({"method": {"magic": {}}}, "unknown method table [method.magic]"),
        ({"method": {"ft": {"lr": 0}}}, "method.ft.lr: Input should be greater than 0"),
        ({"method": {"ft": {"learning_rate": 0.1}}}, "unknown key 'method.ft.learning_rate'; allowed here: lr"),
        ({"method": {"lp-ft": {"lp_epochs": 20}}}, "lp_epochs=20 exceeds the budget personalize.epochs=15"),
        ({"model": {"name": "resnet"}}, "model.name: unknown model 'resnet'; allowed: auto, cnn, mlp"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(UserError) as info:
        from_dict(raw)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_overrides_are_parsed_as_toml_values() -> None:
    cfg = load_config(QUICKSTART, ["personalize.epochs=4", 'personalize.methods=["lp"]', "data.alpha=2.5"])
    assert cfg.personalize.epochs == 4
    assert cfg.personalize.methods == ["lp"]
    assert cfg.data.alpha == 2.5


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("personalize.epochs", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("seed.x=1", "'seed' is a value, not a table"),
        ("data.alpha=inf", "must be a finite number"),
        ("personalize.epochs=five", "personalize.epochs: Input should be a valid integer"),
    ],
)
def test_bad_overrides(override: str, expected: str) -> None:
    with pytest.raises(UserError, match=None) as info:
        load_config(QUICKSTART, [override])
    assert expected in str(info.value)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\nnum_clients = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(broken)


@pytest.mark.parametrize("text", ["", "\n", "# a comment only\n", "  \t\n"])
def test_an_empty_config_file_is_refused(text: str, tmp_path: Path) -> None:
    """docs/reliability.md: an empty config is refused, not silently a 30-round default run."""
    path = tmp_path / "empty.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"is empty .*\[data\] benchmark"):
        load_config(path)
    with pytest.raises(UserError, match="is empty"):
        load_config(path, ["data.benchmark=heart"])


@pytest.mark.parametrize(
    "text",
    [
        "seed = " + "[" * 5000 + "]" * 5000,
        "x = " + "{a = " * 5000 + "1" + "}" * 5000,
        "x" + ".k" * 20_000 + " = 1",
        "[x" + ".k" * 20_000 + "]\nv = 1",
        "[data]\ndomains = " + "[" * 20 + "]" * 20,
    ],
    ids=["array", "inline-table", "dotted-key", "table-header", "depth-20"],
)
def test_deeply_nested_values_are_refused_in_one_line(text: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"nested|dotted parts") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_deep_overrides_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--set seed: the value is nested too deeply"):
        load_config(None, ["seed=" + "[" * 5000 + "]" * 5000])
    with pytest.raises(UserError, match="nested more than 16 levels"):
        load_config(None, ["x" + ".k" * 5000 + "=1"])


def test_a_long_line_of_numbers_is_not_mistaken_for_a_deep_key(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    values = ", ".join(["0.001"] * 200)
    path.write_text(f'[personalize]\nmethods = ["ft"]\n[search.ft]\nlr = [\n  {values}\n]\n')
    with pytest.raises(UserError, match="give 1 to 64 values, got 200"):
        load_config(path)
