"""Property test: mutated configs and command lines are either accepted or refused in one line with exit code 2.

Cases are generated from the valid configs (configs/*.toml, configs/benchmarks/*.toml) and a valid command line
of every subcommand, by mutation: unknown keys, wrong types, negative / zero / huge / NaN / inf values, empty lists
and tables, unicode keys and values, missing files, bad --set strings, unknown flags. Each goes through
`pftlab.cli.main` in-process with `--check` (validation only), so a case costs milliseconds. The promise checked
for every case: exit 0, or exit 2 with exactly one line on stderr ("pftlab: error: ..."); never a traceback;
nothing written into the working folder, the --out folder or the cache.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import subprocess
import sys
import tomllib
import traceback
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pftlab.cli import main
from pftlab.experiment.config import load_config

ROOT = Path(__file__).parents[1]
CONFIGS = [
    ROOT / "configs" / "quickstart.toml",
    ROOT / "configs" / "all_methods.toml",
    *sorted((ROOT / "configs" / "benchmarks").glob("*.toml")),
]
EXAMPLES = 800  # per strategy; distinct cases are counted: the two strategies give well over 1000
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

WEIRD_SCALARS: list[Any] = [
    0, 1, -1, 2, 3, -(2**63), 2**63 - 1, 10**30, 0.0, -0.0, 0.5, -1.5, 1e-320, 1e308, 1e300,
    math.nan, math.inf, -math.inf, True, False, "", "0", "1", "ü", "日本", "😀", "../x", "/abs/path",
    "a\nb", "a\x00b", "nan", "inf", datetime.date(2024, 1, 1),
]  # fmt: skip
WEIRD_TEXT = [
    "", "-1", "0", "1", "2", "1e309", "-1e309", "nan", "inf", "-inf", "1e100", "9" * 30, "ü", "😀",
    "../x", "/abs/x", "a=b", "=", "=1", ".=1", "x..y=1", "--", "-", "a\nb", "[]", "{}", "[1,", '"',
    "seed=-1", "seed=nan", "data=1", "data.benchmark=1", "method.ft=[]", "personalize.methods=[]",
]  # fmt: skip
UNKNOWN_FLAGS = ["--frobnicate", "-z", "--ünï", "--set", "--out", "--seeds", "--", "-", "--size", "--seed", "--clients"]


def key_defaults(cfg: Path) -> dict[tuple[str, ...], Any]:
    """Every key of the fully resolved config (defaults included) and every method's parameters, with a value."""
    from pftlab.personalize import METHODS

    found: dict[tuple[str, ...], Any] = {}

    def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for k, v in node.items():
            found[(*prefix, k)] = v
            if isinstance(v, dict):
                walk(v, (*prefix, k))

    walk(load_config(cfg).resolved(), ())
    for name, m in METHODS.items():
        walk({"method": {name: m.Params().model_dump(mode="json")}}, ())
    return dict(sorted(found.items()))


DEFAULTS = {cfg: key_defaults(cfg) for cfg in CONFIGS}  # keys of [data] differ between benchmarks
KEYS = sorted({k for d in DEFAULTS.values() for k in d})


def same_type(draw: st.DrawFn, default: Any) -> Any:
    """A value of the key's own type, often at or past an edge: the cases a type check alone does not catch."""
    if isinstance(default, bool):
        return draw(st.booleans())
    if isinstance(default, int):
        return draw(st.one_of(st.sampled_from([-1, 0, 1, 2, 3, 7, 10**6, 2**62]), st.integers(-5, 200)))
    if isinstance(default, float):
        return draw(st.one_of(st.sampled_from([0.0, 1e-12, 1e-3, 0.5, 0.99, 1.0, 2.0, 1e6]), st.floats(-1, 3)))
    if isinstance(default, str):
        return draw(st.sampled_from([default, "", "auto", "cnn", "mlp", "sgd", "adam", "quick", "batch", "iid"]))
    if isinstance(default, list):
        from pftlab.personalize import METHODS

        pool = list(METHODS.names()) if all(isinstance(x, str) for x in default) and default else default
        return draw(st.lists(st.sampled_from(pool or [0]), max_size=4)) if pool else []
    return default


def values() -> st.SearchStrategy[Any]:
    scalar = st.one_of(
        st.sampled_from(WEIRD_SCALARS),
        st.integers(),
        st.floats(),
        st.text(max_size=6),
    )
    return st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=4), scalar, max_size=2))


def set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def del_path(raw: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = raw
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


MUTATIONS = ["edge", "edge", "edge", "set", "set", "unknown", "delete", "empty", "table", "bench"]


@st.composite
def config_case(draw: st.DrawFn) -> bytes:
    """A valid config with 1-3 mutations, as the bytes of a TOML file (sometimes not valid TOML at all)."""
    base = draw(st.sampled_from(CONFIGS))
    raw = tomllib.loads(base.read_text())
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(MUTATIONS))
        path = draw(st.sampled_from(KEYS))
        if kind == "edge":
            own = draw(st.sampled_from(list(DEFAULTS[base])))
            set_path(raw, own, same_type(draw, DEFAULTS[base][own]))
        elif kind == "set":
            set_path(raw, path, draw(values()))
        elif kind == "unknown":
            prefix = path[: draw(st.integers(0, len(path) - 1))]
            set_path(raw, (*prefix, draw(st.text(max_size=8))), draw(values()))
        elif kind == "delete":
            del_path(raw, path)
        elif kind == "empty":
            set_path(raw, path, draw(st.sampled_from([[], {}, ""])))
        elif kind == "table":
            set_path(raw, path[:1], draw(st.sampled_from([{}, [], 1, "x"])))
        else:
            set_path(raw, ("data", "benchmark"), draw(st.sampled_from(["heart", "table", "image-folder", "cifar10c"])))
    try:
        text = tomli_w.dumps(raw).encode()
    except (TypeError, ValueError):  # a value TOML cannot hold: fall back to the valid file
        text = base.read_bytes()
    damage = draw(st.sampled_from(["none"] * 7 + ["truncate", "insert", "bytes"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=3)).encode("utf-8", "surrogatepass") + text[at:]
    elif damage == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=3)) + text[at:]
    return text


def set_string(draw: st.DrawFn) -> str:
    key = ".".join(draw(st.sampled_from(KEYS))) if draw(st.booleans()) else draw(st.text(max_size=8))
    value = draw(st.one_of(st.sampled_from(WEIRD_TEXT), st.text(max_size=6)))
    return draw(st.sampled_from([f"{key}={value}", key, f"{key}=", f"={value}", value]))


def base_argvs(rundir: Path) -> list[list[str]]:
    qs, allm = str(CONFIGS[0]), str(CONFIGS[1])
    argvs = [
        ["run", qs, "--check", "--out", "out"],
        ["run", allm, "--check", "--seeds", "0", "1", "--out", "out"],
        ["run", qs, "--check", "--set", "personalize.epochs=3", "--no-progress"],
        ["methods"],
        ["data", "list"],
        ["data", "show", "digits-quick", "--size", "quick", "--check", "--out", "out/h.png"],
        ["data", "show", "heart", "--check", "--set", "data.num_clients=4"],
        ["analyze", "curves", qs, "--check", "--clients", "2", "--out", "out"],
        ["analyze", "flooding", qs, "--check", "--levels", "0.1", "0.5", "--out", "out"],
        ["analyze", "distortion", str(rundir), "--check", "--out", "out"],
        ["theory", "onestep", "--check", "--out", "out"],
        ["theory", "sweep", "--check", "--lambdas", "0.5", "1", "--steps", "1", "2"],
        ["theory", "threshold", "--check", "--grid", "20"],
        ["theory", "relu", "--check", "--n-train", "10", "--settings", "concept"],
    ]
    argvs += [["run", str(c), "--check"] for c in CONFIGS[2:]]
    return argvs


@st.composite
def argv_case(draw: st.DrawFn, bases: list[list[str]], files: dict[str, str]) -> list[str]:
    """A valid command line with 1-3 mutations; `--check` is never removed, so nothing heavy runs."""
    argv = list(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "replace", "delete", "set", "set", "file", "flag"]))
        free = [i for i, a in enumerate(argv) if a != "--check"]
        at = draw(st.integers(0, len(argv)))
        if kind == "insert":
            argv.insert(at, draw(st.one_of(st.sampled_from(WEIRD_TEXT + UNKNOWN_FLAGS), st.text(max_size=6))))
        elif kind == "replace" and free:
            argv[draw(st.sampled_from(free))] = draw(st.one_of(st.sampled_from(WEIRD_TEXT), st.text(max_size=6)))
        elif kind == "delete" and free:
            del argv[draw(st.sampled_from(free))]
        elif kind == "set":
            argv[at:at] = ["--set", set_string(draw)]
        elif kind == "file":
            configs = [i for i, a in enumerate(argv) if a.endswith(".toml") or a.endswith("rundir")]
            target = draw(st.sampled_from(configs)) if configs else at
            argv[target : target + 1] = [draw(st.sampled_from(list(files.values())))]
        else:
            argv.insert(at, draw(st.sampled_from(UNKNOWN_FLAGS)))
    return argv


def call(argv: list[str]) -> tuple[int | None, str, str]:
    """main(argv) in-process: (exit code, stderr, traceback of an unexpected exception or '')."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code: int | None = main(argv)
        except SystemExit as e:  # --help, --version
            code = e.code if isinstance(e.code, int) else 0
        except BaseException:  # a traceback is exactly what the test looks for
            return None, err.getvalue(), traceback.format_exc()
    return code, err.getvalue(), ""


def problem(code: int | None, err: str, tb: str) -> str | None:
    """What is wrong with one outcome, or None when it keeps the promise."""
    if tb:
        return f"traceback: {tb.strip().splitlines()[-1]}"
    if code == 0:
        return None
    if code != 2:
        return f"exit code {code}"
    lines = err.splitlines()
    if len(lines) != 1 or not err.endswith("\n"):
        return f"{len(lines)} lines on stderr: {err!r}"
    if not lines[0].startswith("pftlab: error: ") or len(lines[0]) < len("pftlab: error: ") + 10:
        return f"not a 'pftlab: error: ...' line: {err!r}"
    if "Traceback" in err:
        return f"traceback text on stderr: {err!r}"
    return None


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An empty working folder (default outputs land here), a fake run directory and some bad input files."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rundir = tmp_path / "rundir"
    rundir.mkdir()
    (rundir / "clients.csv").write_text(
        "method,client,domain,n_train,n_test,local,global,global_balanced,worst,distortion_own\n"
        "global-model,0,a,5,5,0.5,0.5,0.5,0.5,0.0\nft,0,a,5,5,0.6,0.4,0.4,0.4,1.0\n"
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.toml").write_text("")
    (bad / "binary.toml").write_bytes(b"\x00\xff\xfe\x80garbage")
    (bad / "latin1.toml").write_bytes("seed = 0 # caf\xe9".encode("latin-1"))
    (bad / "list.toml").write_text("[[data]]\nbenchmark = 'heart'\n")
    files = {
        "missing": str(tmp_path / "missing.toml"),
        "folder": str(bad),
        "empty": str(bad / "empty.toml"),
        "binary": str(bad / "binary.toml"),
        "latin1": str(bad / "latin1.toml"),
        "list": str(bad / "list.toml"),
        "nul": "a\x00b.toml",
        "unicode": "ünï😀.toml",
    }
    cache = Path(os.environ["PFTLAB_CACHE"])
    return {"work": work, "rundir": rundir, "files": files, "cfgdir": tmp_path / "cfg", "cache": cache}


def run_fuzz(strategy: st.SearchStrategy[list[str]], sandbox: dict[str, Any]) -> tuple[int, list[str]]:
    """Every drawn command line through main(); returns (cases tried, problems found)."""
    work: Path = sandbox["work"]
    cache_before = files_under(sandbox["cache"])
    seen: set[tuple[str, ...]] = set()
    problems: list[str] = []

    @FUZZ
    @given(strategy)
    def one(argv: list[str]) -> None:
        seen.add(tuple(argv))
        code, err, tb = call(argv)
        found = problem(code, err, tb)
        left = files_under(work)
        if left:
            found = f"{found or 'ok'}; left files behind: {sorted(left)[:3]}"
        if found:
            problems.append(f"{argv!r}: {found}")

    one()
    if files_under(sandbox["cache"]) != cache_before:
        problems.append("the cache changed during --check runs")
    return len(seen), problems


def test_fuzzed_command_lines_keep_the_promise(sandbox: dict[str, Any]) -> None:
    bases = base_argvs(sandbox["rundir"])
    count, problems = run_fuzz(argv_case(bases, sandbox["files"]), sandbox)
    print(f"command lines fuzzed: {count}, broken promises: {len(problems)}")
    assert not problems, "\n".join(problems[:20])
    assert count >= 500


def test_fuzzed_configs_keep_the_promise(sandbox: dict[str, Any]) -> None:
    cfgdir: Path = sandbox["cfgdir"]
    cfgdir.mkdir()
    counter = iter(range(10**9))

    @st.composite
    def config_argv(draw: st.DrawFn) -> list[str]:
        path = cfgdir / f"c{next(counter)}.toml"
        path.write_bytes(draw(config_case()))
        cmd = draw(st.sampled_from([["run"], ["run"], ["run"], ["analyze", "curves"], ["analyze", "flooding"]]))
        return [*cmd, str(path), "--check", "--out", "out"]

    count, problems = run_fuzz(config_argv(), sandbox)
    print(f"configs fuzzed: {count}, broken promises: {len(problems)}")
    assert not problems, "\n".join(problems[:20])
    assert count >= 500


SUBPROCESS_ARGVS = [
    ["run", str(CONFIGS[0]), "--check", "--out", "out"],
    ["run", "missing.toml", "--out", "out"],
    ["run", str(CONFIGS[0]), "--set", "federated.lr=nan", "--out", "out"],
    ["run", str(CONFIGS[0]), "--set", "model.ünï=1", "--seeds", "-1", "--out", "out"],
    ["theory", "sweep", "--d", "100000", "--out", "out"],
]

# One fresh process runs `python -m pftlab` (the package's __main__, as the installed entry point does) once per
# command line, each with its own stderr: the import of torch is paid once, not once per case.
CHILD = """
import contextlib, io, json, runpy, sys
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["pftlab", *argv]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module("pftlab", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_subprocess_keeps_the_promise(tmp_path: Path) -> None:
    """The real entry point in a fresh process: exit 0 (the --check case) or 2 with one line, nothing written."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PFTLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(SUBPROCESS_ARGVS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    for argv, (code, err) in zip(SUBPROCESS_ARGVS, json.loads(proc.stdout), strict=True):
        assert problem(code, err, "") is None, (argv, err)
        assert code == (0 if "--check" in argv else 2), (argv, err)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "runs").exists()
