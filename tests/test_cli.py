from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pftlab.cli import main

GUARD = 1800  # seconds: a last resort against a hang (a tiny run took 330 s on a heavily loaded 2-core machine)
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


def _listed(text: str) -> dict[str, str]:
    """`pftlab methods` output: method name -> its two lines (a name starts a line, its details are indented)."""
    listed: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace():
            name = line.split()[0]
            assert name not in listed, f"{name} listed twice"
            listed[name] = line
        elif line.strip():
            assert listed, f"details before any method: {line!r}"
            listed[next(reversed(listed))] += "\n" + line
    return listed


def test_methods_lists_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    """Every registered method, in the registry's order, each with its kind and every parameter's default."""
    from pftlab.personalize import METHODS

    assert main(["methods"]) == 0
    listed = _listed(capsys.readouterr().out)
    assert list(listed) == METHODS.names()
    assert {"ft", "lp", "lp-ft", "fedper", "fedrep", "ditto"} <= set(listed)  # not vacuous: the registry is full
    for name, text in listed.items():
        spec = METHODS[name]
        assert spec.summary in text, name
        kind = "process-integrated baseline" if spec.integrated else "post-hoc recipe"
        assert kind in text, name
        assert f"parameters ([method.{name}]):" in text, name
        for field, info in spec.Params.model_fields.items():
            assert f"{field}={info.default}" in text, (name, field)
    assert "lp_epochs=5" in listed["lp-ft"]


def test_methods_lists_a_method_registered_by_a_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    """The listing comes from the registry, not from a list of known names: a new method shows up."""
    from dataclasses import replace

    from pftlab.personalize import METHODS

    extra = replace(METHODS["ft"], name="zz-test-only-ft", summary="a method only this test registers")
    METHODS.register(extra, origin="test-plugin")
    try:
        assert main(["methods"]) == 0
    finally:
        METHODS.unregister(extra.name)
    listed = _listed(capsys.readouterr().out)
    assert list(listed)[-1] == extra.name
    assert extra.summary in listed[extra.name] and "from test-plugin" in listed[extra.name]
    assert extra.name not in METHODS.names()


def test_run_as_a_subprocess_prints_the_table(tmp_path: Path, tiny: list[str]) -> None:
    """The installed entry point, as a user runs it."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "pftlab", "run", QUICKSTART, "--out", str(out), *_sets(tiny)],
        capture_output=True,
        text=True,
        timeout=GUARD,  # a last resort against a hang; a loaded machine never comes near it
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
