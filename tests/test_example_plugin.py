"""The example plugin (examples/pftlab-example-plugin, installed by `make install-test`) extends pftlab
through entry points alone: its method, model and benchmark are listed, run through `pftlab run`,
and pass the conformance kit, with no line of pftlab edited."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from pftlab import BENCHMARKS, METHODS, MODELS, testing

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "pftlab-example-plugin"
DIST = "pftlab-example-plugin"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    try:
        distribution(DIST)
    except PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed: `make install-test` installs it (pip install -e {PLUGIN})")


def pftlab(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pftlab", *args], capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_registries_find_the_plugins_components_and_their_origin() -> None:
    assert METHODS.origin("ft-frozen-head") == DIST
    assert MODELS.origin("tanh-mlp") == DIST
    assert BENCHMARKS.origin("shifted-blobs") == DIST
    assert METHODS.origin("ft") == "pftlab"  # built-ins keep theirs


def test_listings_show_them_with_the_package() -> None:
    methods = pftlab("methods")
    line = next(ln for ln in methods.splitlines() if ln.startswith("ft-frozen-head"))
    assert "FT with the head frozen" in line
    assert f"from {DIST}" in methods.split("ft-frozen-head", 1)[1].splitlines()[1]
    assert "shifted-blobs" in pftlab("data", "list")


def test_the_conformance_kit_passes_them() -> None:
    testing.check_method(METHODS["ft-frozen-head"])
    testing.check_model(MODELS["tanh-mlp"], input_shape=(10,), num_classes=4)
    fed = testing.check_benchmark("shifted-blobs")
    assert fed.num_clients == 4


def test_pftlab_run_uses_all_three(tmp_path: Path) -> None:
    out = tmp_path / "run"
    pftlab(
        "run",
        str(PLUGIN / "example.toml"),
        "--set",
        "federated.rounds=3",
        "--set",
        "personalize.epochs=2",
        "--set",
        'personalize.methods=["ft", "ft-frozen-head"]',
        "--out",
        str(out),
        "--no-progress",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "shifted-blobs"
    assert set(summary["methods"]) == {"global-model", "ft", "ft-frozen-head"}
    assert 0 <= summary["methods"]["ft-frozen-head"]["local"] <= 100
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["model"]["name"] == "tanh-mlp"
    # the body moved and the head did not: distortion is measured, and is not LP's exact 0
    assert summary["methods"]["ft-frozen-head"]["distortion_own"] > 0


def test_an_unknown_name_lists_the_plugins_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pftlab", "run", str(PLUGIN / "example.toml"), "--set", "model.name=nope", "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 2
    assert "unknown model 'nope'" in done.stderr and "tanh-mlp" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
