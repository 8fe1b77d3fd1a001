"""Untrusted files: nothing in pftlab unpickles or evaluates, configs are data, and names cannot leave the run dir."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from pftlab.core.errors import UserError
from pftlab.core.io import safe_name
from pftlab.experiment.config import from_dict, load_config, parse_override
from pftlab.personalize import METHODS

SRC = Path(__file__).parents[1] / "src" / "pftlab"
QUICKSTART = Path(__file__).parents[1] / "configs" / "quickstart.toml"
BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "yaml", "jsonpickle"}
BANNED_BUILTINS = {"eval", "exec", "compile", "__import__"}
BANNED_ATTRS = {("torch", "load"), ("pd", "read_pickle"), ("pandas", "read_pickle"), ("torch", "jit")}


def unsafe_calls(path: Path) -> list[str]:
    """Where a file imports a pickling / YAML module, calls eval-like builtins, torch.load, or np.load without
    allow_pickle=False."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{where} imports {n}" for n in names if n and n.split(".")[0] in BANNED_MODULES]
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in BANNED_BUILTINS:
            found.append(f"{where} calls {f.id}()")
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            if (f.value.id, f.attr) in BANNED_ATTRS:
                found.append(f"{where} calls {f.value.id}.{f.attr}()")
            if f.value.id in ("np", "numpy") and f.attr == "load":
                safe = any(
                    k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in node.keywords
                )
                if not safe:
                    found.append(f"{where} calls np.load without allow_pickle=False")
        for k in node.keywords:
            unsafe = isinstance(k.value, ast.Constant) and k.value.value is (k.arg == "allow_pickle")
            if k.arg in ("allow_pickle", "weights_only") and unsafe:
                found.append(f"{where} passes {k.arg}={k.value.value}")
    return found


def test_no_pickle_eval_or_unsafe_load_anywhere_in_the_source() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    found = [hit for f in files for hit in unsafe_calls(f)]
    assert not found, "\n".join(found)


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport torch, numpy as np\nfrom yaml import load\n"
        "torch.load('w.pt')\nnp.load('a.npz')\nnp.load('a.npz', allow_pickle=True)\neval('1')\nmodel.eval()\n"
        "np.load('a.npz', allow_pickle=False)\n"
    )
    hits = unsafe_calls(bad)
    assert len(hits) == 7, hits  # pickle, yaml, torch.load, 2 x np.load, allow_pickle=True, eval(); not model.eval()


BAD_NAMES = ["../x", "../../etc/passwd", "/abs/path", "a/b", "a\\b", "a\x00b", "..", ".", "", "x/../../y"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_config_names_that_could_escape_are_refused(name: str) -> None:
    """Every file name in a run directory derives from a method or benchmark name; such names are refused."""
    for raw in (
        {"personalize": {"methods": [name]}},
        {"data": {"benchmark": name}},
        {"method": {name: {}}},
        {"search": {name: {"lr": [0.1]}}},
    ):
        with pytest.raises(UserError) as err:
            from_dict(raw)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not a plain file name"):
        safe_name(name)


def test_every_registered_name_is_a_plain_file_name() -> None:
    from pftlab.data.benchmarks import BENCHMARKS

    for name in [*METHODS.names(), *BENCHMARKS]:
        assert safe_name(name) == name


def _payloads(marker: Path) -> list[str]:
    """Values that create `marker` if anything evaluates them as Python, or hands them to a shell."""
    return [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"__import__('os').system('touch {marker}')",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"x; touch {marker}",
    ]


@pytest.mark.parametrize("kind", range(5))
def test_config_values_are_data_never_code(kind: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --set value or a TOML value that is code is a string; nothing runs it (not Python, not a shell).

    Each value, if evaluated, creates a file of its own under this test's tmp_path: every way a config
    value comes in (--set, a TOML file, the CLI, with and without --check) is tried, and the file must not
    appear. The file's absence is checked right after each step, before anything else can fail."""
    from pftlab.cli import main

    marker = tmp_path / "pwned"
    code = _payloads(marker)[kind]

    def untouched(step: str) -> None:
        assert not marker.exists(), f"{step}: {code!r} was run"

    for key in ("model.name", "data.benchmark", "personalize.epochs", "method.ft.lr"):
        parsed = parse_override(f"{key}={code}")
        untouched(f"--set {key}")
        assert parsed == (key.split("."), code)
        with pytest.raises(UserError, match=re.escape(key.split(".")[0])):
            load_config(QUICKSTART, [f"{key}={code}"])
        untouched(f"load_config --set {key}")
    with pytest.raises(UserError, match=r"model\.name"):
        from_dict({"model": {"name": code}})
    untouched("from_dict")

    toml = tmp_path / "config.toml"
    toml.write_text(f"[model]\nname = {json.dumps(code)}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"model\.name"):
        load_config(toml)
    untouched("a TOML file")
    for check in ([], ["--check"]):
        out = tmp_path / f"run{len(check)}"
        assert main(["run", str(toml), "--out", str(out), *check]) == 2
        untouched(f"pftlab run {' '.join(check)} with the TOML file")
        assert main(["run", str(QUICKSTART), "--set", f"model.name={code}", "--out", str(out), *check]) == 2
        untouched(f"pftlab run {' '.join(check)} --set")
        assert not out.exists()
        assert capsys.readouterr().err.count("config: model.name: unknown model") == 2  # refused as a name
