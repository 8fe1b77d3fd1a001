from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pftlab.cli import main

QUICKSTART = str(Path(__file__).parents[1] / "configs" / "quickstart.toml")


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["fly"],
        ["run"],
        ["run", "missing.toml"],
        ["run", QUICKSTART, "--set", "data.num_clients=0"],
        ["run", QUICKSTART, "--set", "bogus=1"],
        ["run", QUICKSTART, "--frobnicate"],
    ],
)
def test_user_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out)] if argv[:1] == ["run"] and len(argv) > 1 else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pftlab: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not out.exists(), "a refused run must not leave a run directory"


def test_methods_lists_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    for name in ("ft", "lp", "lp-ft", "lp_epochs=5"):
        assert name in text


def test_run_as_a_subprocess_prints_the_table(tmp_path: Path, tiny: list[str]) -> None:
    """The installed entry point, as a user runs it."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "pftlab", "run", QUICKSTART, "--out", str(out), *_sets(tiny)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for method in ("global-model", "ft", "lp", "lp-ft"):
        assert method in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"global-model", "ft", "lp", "lp-ft"}


def test_theory_is_reachable_from_the_main_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["theory", "onestep", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "onestep.csv").is_file()
    assert main(["theory", "sweep", "--setting", "bogus"]) == 2
    assert capsys.readouterr().err.startswith("pftlab: error: argument --setting")
