"""The hostile-input suite: what a careless or hostile user, or a broken file system, can hand pftlab.

Beside tests/test_cli_fuzz.py (mutated configs and command lines), cases are generated (hypothesis,
derandomized) in these categories, each through `pftlab.cli.main` in-process:

- filesystem: output and cache folders that cannot be written (a file or FIFO in the way, a name over 255
  bytes, a path over PATH_MAX, a symbolic link loop, a link to nothing, an immutable or read-only folder, a
  folder the kernel refuses), for every command that writes, as `--out` and as `$PFTLAB_CACHE`; and good
  folders (unicode names, links to folders) that `--check` must accept without creating anything;
- runtime-fs: the file system failing while a command writes (disk full, read-only, permission...) after
  every check passed: one line and exit 2; any other exception is a bug and keeps its traceback with a note;
- nesting: values and keys nested thousands deep, in the file, in `--set`, as table headers;
- method-params: every method's every parameter at, inside and past its range, and wrong types;
  what `--check` accepts at the edges must train (tests/personalize/test_params_ranges.py);
- analysis: `analyze curves|flooding` budgets and levels, checked before compute; a few real tiny analyses;
- names: client, domain, class and method names that matplotlib would read as mathtext, in every figure;
- user-tables / user-images: CSV tables with odd headers, cells, encodings and sizes, and image folders with
  odd names, sizes, modes and damage, through `pftlab data show` (decode, partition, draw);
- empty config files.

The promise checked for every case: exit 0 (`--check`, or a command that finished), or exit 2 with exactly
one line `pftlab: error: ...` on stderr and nothing written under the output folder or the cache; never a
traceback. Each test prints its counts (`pytest -s`): cases, ok, refused, broken (always 0).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import random
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_cli_fuzz import problem as promise_kept

from pftlab.cli import BUG_NOTE, FILESYSTEM_ERRNOS, main
from pftlab.personalize import METHODS

ROOT = Path(__file__).parents[1]
QS = str(ROOT / "configs" / "quickstart.toml")


def hostile(examples: int) -> settings:
    """Derandomized (the same cases every run); PFTLAB_HOSTILE_SCALE=10 tries ten times as many, for a deeper hunt."""
    return settings(
        max_examples=int(examples * float(os.environ.get("PFTLAB_HOSTILE_SCALE", "1"))),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# ---------------------------------------------------------------- the promise, and counting it


def call(argv: list[str]) -> tuple[int | None, str, str]:
    """main(argv) in-process: (exit code, stderr, traceback of an unexpected exception or '')."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code: int | None = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        except BaseException:
            return None, err.getvalue(), traceback.format_exc()
    return code, err.getvalue(), ""


def problem(code: int | None, err: str, tb: str) -> str | None:
    """What is wrong with one outcome, or None when it keeps the promise (exit 0, or exit 2 with one line):
    the fuzz's check, with a traceback named by its last line that is not the bug note."""
    if tb:
        lines = [x for x in tb.strip().splitlines() if x and not x.startswith(("pftlab: internal error", " "))]
        return f"traceback: {(lines or ['?'])[-1][:300]}"
    return promise_kept(code, err, "")
    if code != 2:
        return f"exit code {code}: {err[-300:]!r}"
    lines = err.splitlines()
    if len(lines) != 1 or not err.endswith("\n"):
        return f"{len(lines)} lines on stderr: {err[:300]!r}"
    if not lines[0].startswith("pftlab: error: ") or len(lines[0]) < len("pftlab: error: ") + 10:
        return f"not a 'pftlab: error: ...' line: {err[:300]!r}"
    return None


def tree(folder: Path) -> set[str]:
    """Every entry under `folder`, links not followed (a loop must not hang the listing)."""
    found: set[str] = set()
    if not os.path.isdir(folder):
        return found
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(top, name), folder))
    return found


class Tally:
    """Counts per category: cases, ok (exit 0), refused (exit 2, one line), broken (anything else)."""

    def __init__(self, category: str) -> None:
        self.category = category
        self.counts: Counter[str] = Counter()
        self.broken: list[str] = []
        self.seen: set[str] = set()

    def add(self, case: str, found: str | None, code: int | None) -> None:
        """One distinct case: `found` is what broke the promise (None: kept); `code` None = a bug's traceback kept."""
        if case in self.seen:
            return
        self.seen.add(case)
        self.counts["cases"] += 1
        if found:
            self.counts["broken"] += 1
            self.broken.append(f"{case[:400]}: {found}")
        else:
            self.counts["ok" if code == 0 else "refused" if code == 2 else "bug traceback kept"] += 1

    def report(self, minimum: int) -> None:
        c = self.counts
        bugs = f", {c['bug traceback kept']} bugs kept their traceback" if c["bug traceback kept"] else ""
        line = (
            f"hostile {self.category}: {c['cases']} cases, {c['ok']} ok, {c['refused']} refused{bugs}, "
            f"{c['broken']} broken"
        )
        print(line)
        if os.environ.get("PFTLAB_HOSTILE_COUNTS"):  # the reliability note's numbers
            with open(os.environ["PFTLAB_HOSTILE_COUNTS"], "a", encoding="utf-8") as f:
                f.write(json.dumps({"category": self.category, **c}) + "\n")
        if os.environ.get("HOSTILE_DEBUG"):
            print("\n".join(f"BROKEN {b}" for b in self.broken))
        assert not self.broken, "\n".join(self.broken[:15])
        assert c["cases"] >= minimum, line


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def toml_str(text: str) -> str:
    """A --set value: `text` as a TOML basic string."""
    return json.dumps(text)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (default outputs would land here) and a fresh cache folder."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    return folder


def write_rundir(folder: Path, methods: list[str] | None = None) -> Path:
    """A run directory with a clients.csv that `analyze distortion` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [["method", "client", "domain", "n_train", "n_test", "local", "global", "global_balanced", "worst"]]
    rows[0].append("distortion_own")
    for c in range(4):
        rows.append(["global-model", str(c), "a", "5", "5", "50", "50", "50", "50", "0"])
        for k, m in enumerate(methods or ["ft", "lp"]):
            rows.append([m, str(c), "a", "5", "5", "60", str(40 + c + k), "40", "40", str(0.5 * (c + 1) + k)])
    with (folder / "clients.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return folder


# ---------------------------------------------------------------- filesystem situations


def _chattr(flag: str, path: Path) -> bool:
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _unwritable(path: Path) -> bool:
    """True when this process really cannot create a file in `path` (root ignores permission bits)."""
    try:
        (path / ".w").touch()
    except OSError:
        return True
    (path / ".w").unlink()
    return False


@pytest.fixture
def situations(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Folders that cannot be written, built for real; a kind this machine cannot build is left out (and said)."""
    base = tmp_path / "fs"
    base.mkdir()
    bad: dict[str, Path] = {}
    (base / "a-file").write_text("x")
    bad["file in the way"] = base / "a-file"
    bad["under a file"] = base / "a-file" / "sub"
    os.mkfifo(base / "a-fifo")
    bad["fifo in the way"] = base / "a-fifo"
    bad["name of 300 chars"] = base / ("n" * 300)
    bad["name of 256 bytes (128 x u-umlaut)"] = base / ("ü" * 128) / "out"
    bad["path over PATH_MAX"] = base.joinpath(*["p" * 200] * 22)
    (base / "loop-a").symlink_to(base / "loop-b")
    (base / "loop-b").symlink_to(base / "loop-a")
    bad["symlink loop"] = base / "loop-a"
    bad["under a symlink loop"] = base / "loop-a" / "sub"
    (base / "dangling").symlink_to(base / "nowhere" / "at-all")
    bad["dangling symlink"] = base / "dangling"
    bad["under a dangling symlink"] = base / "dangling" / "sub"
    bad["under /dev/null"] = Path("/dev/null/out")
    locked = base / "locked"
    locked.mkdir()
    immutable = _chattr("+i", locked)
    if not immutable:
        locked.chmod(0o555)
    if _unwritable(locked):
        bad["immutable folder" if immutable else "read-only folder"] = locked
        bad["under an immutable folder" if immutable else "under a read-only folder"] = locked / "new" / "deeper"
    else:
        print("filesystem situations: this machine cannot build an unwritable folder (root, no chattr): left out")
    kernel = Path("/sys/pftlab-hostile")
    if not kernel.exists() and _unwritable(Path("/sys")):
        bad["a folder the kernel refuses (/sys)"] = kernel / "out"
    (base / "real-dir").mkdir()
    (base / "link-to-dir").symlink_to(base / "real-dir")
    good = {
        "fresh nested unicode": base / "good" / "ünï 😀" / "x y",
        "existing empty folder": base / "real-dir",
        "symlink to a folder": base / "link-to-dir" / "new",
        "relative path": Path("rel") / "out",
    }
    try:
        yield {**{f"bad: {k}": v for k, v in bad.items()}, **{f"good: {k}": v for k, v in good.items()}}
    finally:
        if immutable:
            _chattr("-i", locked)
        locked.chmod(0o755)


def fs_commands(rundir: Path) -> dict[str, tuple[list[str], bool, bool]]:
    """name: (argv with OUT where the output path goes, uses the cache, only validates)."""
    return {
        "run --check": (["run", QS, "--check", "--out", "OUT"], True, True),
        "run --seeds --check": (["run", QS, "--check", "--seeds", "0", "1", "--out", "OUT"], True, True),
        "data show --check": (
            ["data", "show", "digits-quick", "--size", "quick", "--check", "--out", "OUT/h.png"],
            True,
            True,
        ),
        "analyze curves --check": (["analyze", "curves", QS, "--check", "--out", "OUT"], True, True),
        "analyze flooding --check": (["analyze", "flooding", QS, "--check", "--out", "OUT"], True, True),
        "analyze distortion --check": (["analyze", "distortion", str(rundir), "--check", "--out", "OUT"], False, True),
        "theory onestep --check": (["theory", "onestep", "--check", "--out", "OUT"], False, True),
        "theory sweep --check": (
            ["theory", "sweep", "--check", "--lambdas", "1", "--steps", "1", "--out", "OUT"],
            False,
            True,
        ),
        "theory threshold --check": (["theory", "threshold", "--check", "--grid", "20", "--out", "OUT"], False, True),
        "theory relu --check": (["theory", "relu", "--check", "--n-train", "10", "--out", "OUT"], False, True),
        "study --check": (
            ["study", "--quick", "--benchmarks", "digits-quick", "--seeds", "0", "--check", "--out", "OUT"],
            True,
            True,
        ),
        "bench --quick": (["bench", "--quick", "--out", "OUT"], True, False),
        "flower export": (["flower", "export", QS, "--out", "OUT"], False, False),
    }


def test_unwritable_output_and_cache_folders_are_refused_before_any_work(
    work: Path, tmp_path: Path, situations: dict[str, Path]
) -> None:
    rundir = write_rundir(tmp_path / "rundir")
    commands = fs_commands(rundir)
    tally = Tally("filesystem")
    cache = Path(os.environ["PFTLAB_CACHE"])
    watched = [tmp_path / "fs", work, cache]

    @hostile(260)
    @given(
        st.sampled_from(sorted(situations)),
        st.sampled_from(sorted(commands)),
        st.sampled_from(["out", "cache"]),
        st.sampled_from(["", "sub", "a/b"]),
    )
    def one(situation: str, command: str, role: str, tail: str) -> None:
        argv, uses_cache, check_only = commands[command]
        target = situations[situation] / tail if tail else situations[situation]
        is_bad = situation.startswith("bad:")
        if role == "cache" and not uses_cache:
            role = "out"
        if not is_bad and not check_only:
            return  # a good folder would start real work: bench and flower export only take bad ones here
        out = str(target) if role == "out" else str(work / "fresh-out")
        before = {str(w): tree(w) for w in watched}
        with env(PFTLAB_CACHE=str(target) if role == "cache" else str(cache)):
            code, err, tb = call([a.replace("OUT", out) for a in argv])
        found = problem(code, err, tb)
        if not found and is_bad and code != 2:
            found = f"exit {code}: an unwritable {role} folder was accepted"
        if not found and not is_bad and code != 0:
            found = f"a good {role} folder was refused: {err.strip()}"
        after = {str(w): tree(w) for w in watched}
        if after != before:
            changed = {k: sorted(after[k] ^ before[k])[:3] for k in after if after[k] != before[k]}
            found = f"{found or 'ok'}; wrote or removed files: {changed}"
        tally.add(f"{situation} as {role} of {command} (+{tail!r})", found, code)

    one()
    tally.report(minimum=200)


# ---------------------------------------------------------------- the file system failing at run time


def test_filesystem_errors_at_run_time_end_in_one_line_and_bugs_keep_their_traceback(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after every check passed (disk full, folder made read-only meanwhile, ...).

    The failure is planted in `os.fsync`, which every atomic write calls after writing its temporary file:
    the file system's errors arrive there (ENOSPC, EDQUOT, EIO), and the temporary must not be left behind.
    Every user-side errno is tried on the first write of `analyze distortion`; then generated cases fail the
    first, second or third write of other commands. ENOENT, an OSError without errno and other exceptions
    stand for bugs: they must reach the caller with their traceback and a note saying it is a bug.
    """
    rundir = write_rundir(tmp_path / "rundir")
    real_fsync = os.fsync
    commands = {
        "analyze distortion": ["analyze", "distortion", str(rundir), "--out", "OUT"],
        "theory onestep": ["theory", "onestep", "--d", "6", "--C", "2", "--out", "OUT"],
    }
    bugs = ["ENOENT", "no errno", "RuntimeError", "KeyError"]
    tally = Tally("runtime-fs")
    counter = iter(range(10**9))

    def attempt(command: str, failure: int | str, nth: int) -> None:
        out = tmp_path / "outs" / f"o{next(counter)}"
        calls = iter(range(10**9))
        fired: list[bool] = []

        def failing(fd: int) -> None:
            if next(calls) < nth:
                return real_fsync(fd)
            fired.append(True)
            if failure == "RuntimeError":
                raise RuntimeError("a bug")
            if failure == "KeyError":
                raise KeyError("a bug")
            if failure == "no errno":
                raise OSError("an OSError without errno")
            code = errno.ENOENT if failure == "ENOENT" else int(failure)
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "fsync", failing)
        try:
            code, err, tb = call([a.replace("OUT", str(out)) for a in commands[command]])
        finally:
            monkeypatch.setattr(os, "fsync", real_fsync)
        name = errno.errorcode.get(failure, failure) if isinstance(failure, int) else failure
        case = f"{command}: write {nth} fails with {name}"
        leftovers = [p for p in tree(out) if p.endswith(".tmp")]
        if not fired:  # the command wrote fewer files than nth + 1: nothing failed
            found = problem(code, err, tb) or (None if code == 0 else f"exit {code} with nothing failing")
            tally.add(case, found, code)
        elif isinstance(failure, int):
            found = problem(code, err, tb) or (None if code == 2 else f"exit {code}: the failure went unnoticed")
            tally.add(case, found or (f"temporary files left: {leftovers}" if leftovers else None), code)
        else:  # a bug: the exception reaches the caller with its traceback and a note saying it is a bug
            found = None if tb and "this is a bug in pftlab" in tb else f"no bug note: code {code}, {tb[-300:]!r}"
            tally.add(case, found, None)

    for failure in [*sorted(FILESYSTEM_ERRNOS), *bugs]:
        attempt("analyze distortion", failure, 0)

    @hostile(12)
    @given(
        st.sampled_from(sorted(commands)),
        st.one_of(st.sampled_from(sorted(FILESYSTEM_ERRNOS)), st.sampled_from(bugs)),
        st.integers(0, 2),
    )
    def one(command: str, failure: int | str, nth: int) -> None:
        attempt(command, failure, nth)

    one()
    assert BUG_NOTE.startswith("pftlab: internal error")
    tally.report(minimum=30)


# ---------------------------------------------------------------- nesting


@st.composite
def nested_case(draw: st.DrawFn, cfgdir: Path, counter: Iterator[int]) -> list[str]:
    depth = draw(st.sampled_from([17, 33, 100, 333, 999, 1000, 1001, 3000, 20_000, 200_000]))
    form = draw(
        st.sampled_from(
            [
                "array",
                "inline",
                "dotted",
                "inline-dotted",
                "headers",
                "set-array",
                "set-dotted",
                "set-inline",
                "set-inline-dotted",
            ]
        )
    )
    where = draw(st.sampled_from(["x", "data.domains", "method.ft.lr", "search.ft.lr", "runtime"]))
    cmd = draw(st.sampled_from([["run"], ["analyze", "curves"], ["analyze", "flooding"]]))
    if form.startswith("set"):
        value = {
            "set-array": "[" * depth + "1" + "]" * depth,
            "set-inline": "{a = " * depth + "1" + "}" * depth,
            "set-dotted": "1",
            "set-inline-dotted": "{a" + ".k" * depth + " = 1}",
        }[form]
        key = where + (".k" * depth if form == "set-dotted" else "")
        return [*cmd, QS, "--check", "--out", "out", "--set", f"{key}={value}"]
    path = cfgdir / f"n{next(counter)}.toml"
    if form == "array":
        text = f"{where} = " + "[" * depth + "1" + "]" * depth
    elif form == "inline":
        text = f"{where} = " + "{a = " * depth + "1" + "}" * depth
    elif form == "dotted":
        text = f"{where}" + ".k" * depth + " = 1"
    elif form == "inline-dotted":
        text = f"{where} = {{a" + ".k" * depth + " = 1}"
    else:
        text = "[" + where + ".t" * depth + "]\nv = 1"
    path.write_text("[data]\nbenchmark = 'digits-quick'\n" * (where != "x" and form != "headers") + text + "\n")
    return [*cmd, str(path), "--check", "--out", "out"]


def test_deeply_nested_values_are_refused_in_one_line(work: Path, tmp_path: Path) -> None:
    cfgdir = tmp_path / "nested"
    cfgdir.mkdir()
    tally = Tally("nesting")
    counter = iter(range(10**9))

    @hostile(90)
    @given(nested_case(cfgdir, counter))
    def one(argv: list[str]) -> None:
        code, err, tb = call(argv)
        found = problem(code, err, tb) or (None if code == 2 else "a value nested that deep was accepted")
        if tree(work):
            found = f"{found or 'ok'}; wrote {sorted(tree(work))[:3]}"
        tally.add(
            repr(argv)[:200] + (Path(argv[-4]).read_text()[:80] if argv[-4].endswith(".toml") else ""), found, code
        )

    one()
    tally.report(minimum=70)


def test_a_self_referencing_value_from_python_is_refused() -> None:
    from pftlab.core.errors import UserError
    from pftlab.experiment.config import from_dict

    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UserError, match="nested"):
        from_dict({"data": {"domains": loop}})


# ---------------------------------------------------------------- empty configs


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   \t\n# x\n\n", "\ufeff"])
@pytest.mark.parametrize("cmd", [["run"], ["analyze", "curves"], ["analyze", "flooding"], ["flower", "export"]])
def test_an_empty_config_file_is_refused(text: str, cmd: list[str], work: Path) -> None:
    path = work.parent / "empty.toml"
    path.write_text(text, encoding="utf-8")
    for extra in ([], ["--check"]):
        if cmd[0] == "flower" and extra:
            continue
        code, err, tb = call([*cmd, str(path), *extra, "--out", str(work.parent / "out")])
        assert problem(code, err, tb) is None and code == 2, (code, err, tb)
        assert "empty" in err or "not valid TOML" in err, err
    assert not tree(work) and not (work.parent / "out").exists()


# ---------------------------------------------------------------- method parameters


def _bounds(field: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in field.metadata:
        lo = getattr(m, "ge", getattr(m, "gt", lo))
        hi = getattr(m, "le", getattr(m, "lt", hi))
    return lo, hi


def edge_values(field: Any) -> list[Any]:
    """The field's bounds, just inside and just outside them, and values of the wrong kind."""
    lo, hi = _bounds(field)
    is_int = field.annotation is int
    step = 1 if is_int else 1e-9
    out: list[Any] = [0, -1, 1, 2**63, -(2**63), 10**400 if not is_int else 2**64, "x", True, [], 1e308, -1e308, 5e-324]
    for b in (lo, hi):
        if b is not None:
            out += [b, b - step, b + step, b * 10 if b else 1e6]
    return out


def param_fields() -> list[tuple[str, str, Any]]:
    return [(name, key, f) for name, m in METHODS.items() for key, f in m.Params.model_fields.items()]


@st.composite
def param_case(draw: st.DrawFn) -> list[str]:
    name, key, field = draw(st.sampled_from(param_fields()))
    if field.annotation in (int, float):
        value = draw(st.one_of(st.sampled_from(edge_values(field)), st.floats(-1e3, 1e3), st.integers(-10, 10**5)))
    elif field.annotation is str:
        value = draw(st.one_of(st.sampled_from(["", "all", "head", "backbone", "x" * 300, "a.b.c", "$x$"]), st.text()))
    else:
        value = draw(
            st.one_of(st.lists(st.floats(-10, 200), max_size=5), st.sampled_from([[], [0.0], [-1.0], [1e300]]))
        )
    text = json.dumps(value) if not isinstance(value, int) or abs(value) < 2**70 else str(value)
    epochs = draw(st.sampled_from([1, 2, 3, 15, 10_000]))
    rounds = draw(st.sampled_from([1, 100]))
    return [
        "run", QS, "--check", "--out", "out",
        "--set", f"personalize.methods={json.dumps([name])}",
        "--set", f"personalize.epochs={epochs}",
        "--set", f"federated.rounds={rounds}",
        "--set", f"method.{name}.{key}={text}",
    ]  # fmt: skip


def test_method_parameters_are_range_checked(work: Path) -> None:
    tally = Tally("method-params")

    @hostile(400)
    @given(param_case())
    def one(argv: list[str]) -> None:
        code, err, tb = call(argv)
        found = problem(code, err, tb)
        if tree(work):
            found = f"{found or 'ok'}; wrote {sorted(tree(work))[:3]}"
        tally.add(repr(argv[5:]), found, code)

    one()
    tally.report(minimum=250)


# ---------------------------------------------------------------- analyses: budgets before compute


@st.composite
def analysis_case(draw: st.DrawFn) -> list[str]:
    cmd = draw(st.sampled_from(["curves", "flooding"]))
    sets = [f"personalize.epochs={draw(st.sampled_from([1, 2, 3, 5, 15]))}"]
    sets.append(f"personalize.methods={json.dumps(draw(st.sampled_from([['ft'], ['lp'], ['ft', 'lp-ft']])))}")
    for _ in range(draw(st.integers(0, 3))):
        method, key, values = draw(
            st.sampled_from(
                [
                    ("lp-ft", "lp_epochs", [0, 1, 3, 5, 16, -1]),
                    ("lp-ft", "ft_lr", [1e-9, 0.01, 100, 101, 0]),
                    ("ft", "lr", [1e-9, 0.01, 100, 1e3, -1]),
                    ("sparse-ft", "sparsity", [0.0, 0.5, 0.999, 1.0, -0.1]),
                    ("sparse-ft", "lr", [0.01, 200]),
                    ("proximal-ft", "mu", [0.0, 1e6, 1e7, -1]),
                    ("proximal-ft", "bogus", [1]),
                ]
            )
        )
        sets.append(f"method.{method}.{key}={draw(st.sampled_from(values))}")
    argv = ["analyze", cmd, QS, "--check", "--out", "out", "--clients", str(draw(st.sampled_from([0, 1, 10**6])))]
    for s in sets:
        argv += ["--set", s]
    if cmd == "flooding":
        levels = draw(
            st.lists(
                st.sampled_from(["0", "0.1", "1", "100", "100.5", "1e300", "-0.5", "inf", "nan"]),
                min_size=1,
                max_size=4,
            )
        )
        argv += ["--levels", *levels]
    return argv


def test_analysis_budgets_are_checked_before_compute(work: Path) -> None:
    """Every variant an analysis trains has its parameters and epoch budget checked by --check."""
    from pftlab.analysis.curves import curve_jobs
    from pftlab.analysis.flooding import flooding_jobs
    from pftlab.experiment.config import load_config

    tally = Tally("analysis")

    @hostile(200)
    @given(analysis_case())
    def one(argv: list[str]) -> None:
        code, err, tb = call(argv)
        found = problem(code, err, tb)
        if code == 0:  # accepted: every job the analysis would train has a plan that fills the budget
            sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
            cfg = load_config(Path(QS), sets)
            jobs = (
                curve_jobs(cfg)
                if argv[1] == "curves"
                else flooding_jobs(cfg, [float(b) for b in argv[argv.index("--levels") + 1 :]])
            )
            for job in jobs:
                phases = job[2]
                if sum(p.epochs for p in phases) != cfg.personalize.epochs:
                    found = f"accepted, but {job[:2]} does not fill the budget"
        if tree(work):
            found = f"{found or 'ok'}; wrote {sorted(tree(work))[:3]}"
        tally.add(repr(argv[2:]), found, code)

    one()
    tally.report(minimum=120)


def test_the_budget_the_issue_found_is_refused_by_check(work: Path) -> None:
    """lp-ft is not in personalize.methods, so the config never checked its lp_epochs against the budget."""
    for cmd in ("curves", "flooding"):
        argv = ["analyze", cmd, QS, "--check", "--set", 'personalize.methods=["ft"]', "--set", "personalize.epochs=2"]
        code, err, _ = call(argv)
        assert code == 2 and "lp_epochs=5 exceeds the budget personalize.epochs=2" in err, err


def test_real_tiny_analyses_run_or_name_the_diverged_clients(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyses' training on a tiny federation (random global weights): edges of the budget, and divergence."""
    import torch

    import pftlab.analysis.common as common
    import pftlab.analysis.flooding as flooding
    from pftlab.data.benchmarks import build_federation
    from pftlab.evaluate.matrix import EvalPool
    from pftlab.models import build_model

    def tiny_setup(cfg: Any) -> common.Setup:
        fed = build_federation(cfg.data, cfg.seed)
        model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return common.Setup(cfg, fed, model, weights, EvalPool.of(fed))

    monkeypatch.setattr(common, "setup", tiny_setup)
    torch.set_num_threads(1)
    real_train = flooding.train

    def diverges_on(clients: set[int]) -> Callable[..., float]:
        def train(*args: Any, **kwargs: Any) -> float:
            if args[6] in clients:  # the client id
                raise FloatingPointError(f"client {args[6]}: training loss became nan in epoch 0")
            return float(real_train(*args, **kwargs))

        return train

    small = ["data.num_clients=3", "model.width=4", "model.hidden=8", "runtime.threads=1", "personalize.epochs=1"]
    cases: list[tuple[list[str], list[str], set[int], int, str]] = [
        (["flooding", "--levels", "0", "100"], ["method.lp-ft.lp_epochs=1"], set(), 0, ""),
        (["flooding", "--levels", "0.5"], ["method.lp-ft.lp_epochs=0"], {0}, 0, "1 of 2 clients diverged"),
        (["flooding", "--levels", "0.5"], ["method.lp-ft.lp_epochs=0"], {0, 1}, 2, "diverged on every client"),
    ]
    tally = Tally("analysis-real")
    for k, (cmd, sets, failing, expected, says) in enumerate(cases):
        monkeypatch.setattr(flooding, "train", diverges_on(failing) if failing else real_train)
        out = tmp_path / f"a{k}"
        argv = ["analyze", cmd[0], QS, *cmd[1:], "--out", str(out), "--clients", "2", "--no-progress"]
        for s in [*small, *sets]:
            argv += ["--set", s]
        code, err, tb = call(argv)
        found = problem(code, err, tb) if code == 2 or tb else None
        if code != expected or says not in err:
            found = f"exit {code} (expected {expected}, saying {says!r}): {err[-300:]}"
        if code == 2 and tree(out):
            found = f"refused but wrote {sorted(tree(out))}"
        tally.add(repr(argv), found, code)
    tally.report(minimum=3)


# ---------------------------------------------------------------- names matplotlib would interpret

HOSTILE_NAMES = [
    "$x$", "$\\frac$", "$", "$$", "a$b$c", "\\$", "$\\$", "cost $5 and $6", "$^$", "$_$", "_hidden", "__x",
    "%s %d", "{x}", "\\n", "tab\there", "new\nline", "nul\x00x", "\u202eRTL", "😀 emoji", "日本", "\\", "$\\mathrm{",
    "x" * 300, "   ", "-", "#", "\\textbf{x}", "$\\alpha$ and $", "\x7f",
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:Glyph")
def test_user_names_in_figures_are_drawn_literally(tmp_path: Path) -> None:
    """Client, domain and method names from the user's data, in every run figure: never parsed as mathtext."""
    from types import SimpleNamespace

    from pftlab.evaluate.metrics import accuracy_matrix, per_client
    from pftlab.report.plots import local_vs_global, matrices
    from pftlab.report.text import plain

    tally = Tally("names")
    counter = iter(range(10**9))

    @hostile(4)
    @given(st.lists(st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=8)), min_size=4, max_size=6))
    def one(names: list[str]) -> None:
        n = len(names)
        fed = SimpleNamespace(clients=[SimpleNamespace(client_id=i, domain=d) for i, d in enumerate(names)])
        sizes = np.full(n, 10)
        correct = {f"m{k}{name}": np.full((n, n), 5) for k, name in enumerate(names[:2])}
        values = {m: per_client(c, sizes) for m, c in correct.items()}
        accuracy = {m: accuracy_matrix(c, sizes) for m, c in correct.items()}
        k = next(counter)
        try:
            local_vs_global(values, tmp_path / f"lvg{k}.png")
            matrices(accuracy, fed, range(n), tmp_path / f"m{k}.png")  # type: ignore[arg-type]
            found = None
        except Exception as err:
            found = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:200] if str(err).strip() else ''}"
        tally.add(repr(names), found, 0)

    one()
    for k in range(0, len(HOSTILE_NAMES), 15):  # and every listed name, in two figures
        names = HOSTILE_NAMES[k : k + 15]
        fed = SimpleNamespace(clients=[SimpleNamespace(client_id=i, domain=d) for i, d in enumerate(names)])
        accuracy = {names[0]: np.full((len(names), len(names)), 50.0)}
        try:
            matrices(accuracy, fed, range(len(names)), tmp_path / f"all{k}.png")  # type: ignore[arg-type]
            found = None
        except Exception as err:
            found = f"{type(err).__name__}: {str(err).strip()[-200:]}"
        tally.add(f"all listed names {k}..{k + len(names)}", found, 0)
    assert plain("a$b") == "a\\$b" and plain("_x") == " _x"
    tally.report(minimum=4)


def test_hostile_method_names_in_a_run_directory_are_drawn_literally(work: Path, tmp_path: Path) -> None:
    tally = Tally("names-distortion")
    for k, name in enumerate(["$x$", "$\\frac$", "a$b$c", "_hidden", "$\\alpha$ and $", "\\$"]):
        rundir = write_rundir(tmp_path / f"r{k}", methods=[name, "ft"])
        out = tmp_path / f"o{k}"
        code, err, tb = call(["analyze", "distortion", str(rundir), "--out", str(out)])
        found = problem(code, err, tb) or (None if code == 0 else f"refused: {err.strip()}")
        tally.add(repr(name), found, code)
    tally.report(minimum=6)


# ---------------------------------------------------------------- user data: tables


CELLS = ["", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e308", "5e-324", "abc", "1,5", " 1 ", "0x10", "1_000",
         '"', "\x00", "\n", "True", "1e-400", "-0", "+1", "٣", "１"]  # fmt: skip


ORDINARY = ["north", "south", "east", "west", "h1", "h2"]
ODD_NAMES = ["1", "02", "3.0", " 4", "+5", "a", "A", "Ä", "A\u0308", "1.0"]  # "1.0" is "1", "A\u0308" is "Ä"


def pick(rnd: random.Random, usual: Any, *unusual: Any) -> Any:
    """`usual` nine times in ten, else one of `unusual`: most cases must reach the later stages."""
    return usual if rnd.random() < 0.9 or not unusual else rnd.choice(unusual)


@st.composite
def table_case(draw: st.DrawFn, folder: Path, counter: Iterator[int]) -> tuple[Path, list[str]]:
    """A CSV table (sometimes damaged) and the `--set`s that read it; hypothesis draws the seed of its choices."""
    rnd = random.Random(draw(st.integers(0, 2**63)))
    n_clients = pick(rnd, rnd.randint(2, 5), 0, 1, 12)
    pool = rnd.choice([ORDINARY, HOSTILE_NAMES, ODD_NAMES, ORDINARY[:2] + HOSTILE_NAMES[:4]])
    names = [pool[i % len(pool)] + ("" if i < len(pool) else f"-{i}") for i in range(n_clients)]
    labels = pick(
        rnd, ["0", "1", "2"], ["yes", "no"], ["$y$", "$\\frac$", "_z"], ["1", "02", "3.0"], ["1", "01", "1.0"], ["x"]
    )
    n_classes = pick(rnd, rnd.randint(2, 3), 1)
    n_features = pick(rnd, rnd.randint(1, 3), 0, 40)
    per_client = pick(rnd, rnd.choice([12, 20, 30]), 0, 1, 2, 3, 5)
    header = ["client", "label", *[f"f{j}" for j in range(n_features)]]
    rng = np.random.default_rng(rnd.randrange(2**16))
    scale = rng.choice([1.0, 1e300, 1e-300, 0.0], size=n_features) if rnd.random() < 0.2 else np.ones(n_features)
    rows: list[list[str]] = []
    for c, name in enumerate(names):
        for i in range(per_client):
            feats = rng.normal(size=n_features) * scale
            rows.append([name, labels[(c + i) % min(n_classes, len(labels))], *[repr(float(v)) for v in feats]])
    for _ in range(pick(rnd, 0, 1, 1, 2, 3)):  # damage cells or the header
        what = rnd.choice(["cell", "cell", "header", "dup-header", "short-row", "long-row", "drop-col"])
        if what == "cell" and rows:
            r, c = rnd.randrange(len(rows)), rnd.randrange(len(header))
            rows[r][c] = rnd.choice(CELLS)
        elif what == "header":
            at = rnd.randrange(len(header))
            header[at] = rnd.choice(["", "$f$", "client ", "LABEL", "ü", "\ufeffclient", "x" * 500])
        elif what == "dup-header" and len(header) > 2:
            header[-1] = header[rnd.randrange(len(header) - 1)]
        elif what == "short-row" and rows:
            rows[rnd.randrange(len(rows))].pop()
        elif what == "long-row" and rows:
            rows[rnd.randrange(len(rows))].append("9")
        elif what == "drop-col" and len(header) > 1:
            k = rnd.randrange(len(header))
            header.pop(k)
            for row in rows:
                if len(row) > k:
                    row.pop(k)
    buf = io.StringIO()
    csv.writer(buf, lineterminator=pick(rnd, "\n", "\r\n", "\r")).writerows([header, *rows])
    text = buf.getvalue()
    encoding = pick(rnd, "utf-8", "utf-8-sig", "latin-1", "utf-16", "binary", "truncate", "trailing-blank")
    if encoding == "binary":
        data = rnd.randbytes(rnd.randint(1, 64)) + text.encode("utf-8", "surrogatepass")
    elif encoding == "truncate":
        raw = text.encode("utf-8", "surrogatepass")
        data = raw[: rnd.randint(0, len(raw))]
    elif encoding == "trailing-blank":
        data = (text + "\n\n ,\n").encode()
    else:
        data = text.encode(encoding, "replace") if encoding == "latin-1" else text.encode(encoding, "surrogatepass")
    suffix = pick(rnd, ".csv", ".CSV", ".txt", ".parquet", "")
    path = folder / f"t{next(counter)}{suffix}"
    path.write_bytes(data)
    sets = [f"data.path={toml_str(str(path))}"]
    columns = pick(rnd, None, [], ["f0"], ["label"], ["client"], ["nope"], ["f0", "f0"])
    if columns is not None:
        sets.append(f"data.feature_columns={json.dumps(columns)}")
    client_column = pick(rnd, None, "label", "f0", "nope", "$f$")
    if client_column is not None:
        sets.append(f"data.client_column={toml_str(client_column)}")
    test_fraction = pick(rnd, None, 0.01, 0.5, 0.6)
    if test_fraction is not None:
        sets.append(f"data.test_fraction={test_fraction}")
    if not pick(rnd, True, False):
        sets.append("data.standardize=false")
    return path, sets


def run_data_show(benchmark: str, sets: list[str], out: Path) -> tuple[int | None, str, str]:
    argv = ["data", "show", benchmark, "--out", str(out / "h.png")]
    for s in sets:
        argv += ["--set", s]
    return call(argv)


def data_outcome(code: int | None, err: str, tb: str, out: Path) -> str | None:
    found = problem(code, err, tb)
    written = tree(out)
    if code == 0 and written != {"h.png"}:
        found = f"{found or 'ok'}; exit 0 but wrote {sorted(written)[:3]}"
    if code != 0 and written:
        found = f"{found or 'refused'}; wrote {sorted(written)[:3]}"
    return found


def test_user_tables_decode_or_are_refused_in_one_line(work: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    tally = Tally("user-tables")
    counter = iter(range(10**9))
    outs = iter(range(10**9))

    @hostile(64)
    @given(table_case(folder, counter))
    def one(case: tuple[Path, list[str]]) -> None:
        path, sets = case
        out = tmp_path / "outs" / f"o{next(outs)}"
        code, err, tb = run_data_show("table", sets, out)
        tally.add(f"{path.read_bytes()[:160]!r} {sets[1:]}", data_outcome(code, err, tb, out), code)
        if os.environ.get("HOSTILE_DEBUG"):
            print("TABLE", code, err.strip()[:200])

    one()
    tally.report(minimum=50)


# ---------------------------------------------------------------- user data: image folders


def _image(rnd: random.Random, path: Path, rng: np.random.Generator) -> None:
    from PIL import Image

    kinds = ["jpg", "L", "RGBA", "P", "I;16", "1", "gif-anim", "empty", "text", "truncated", "huge-aspect", "tiff-F"]
    kind = pick(rnd, "png", *kinds)
    w, h = pick(rnd, (8, 8), (1, 1), (3, 40), (16, 12))
    pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    if kind == "png":
        img.save(path.with_suffix(pick(rnd, ".png", ".PNG", ".Png")))
    elif kind == "jpg":
        img.save(path.with_suffix(".jpg"))
    elif kind in ("L", "RGBA", "P", "1"):
        img.convert(kind).save(path.with_suffix(".png"))
    elif kind == "I;16":
        Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(path.with_suffix(".png"))
    elif kind == "gif-anim":
        frames = [img, Image.fromarray(255 - pixels)]
        frames[0].save(path.with_suffix(".gif"), save_all=True, append_images=frames[1:])
    elif kind == "empty":
        path.with_suffix(".png").write_bytes(b"")
    elif kind == "text":
        path.with_suffix(".png").write_text("not an image")
    elif kind == "truncated":
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        path.with_suffix(".png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "huge-aspect":
        Image.fromarray(rng.integers(0, 256, size=(1, 2000), dtype=np.uint8)).save(path.with_suffix(".png"))
    else:
        Image.fromarray(pixels[..., 0].astype(np.float32)).save(path.with_suffix(".tif"))


FOLDER_NAMES = ["a", "b", "1", "01", "$x$", "_u", "ü", "😀", " sp ", ".hidden", "x" * 200, "$\\frac$", "-", "a b"]


@st.composite
def image_case(draw: st.DrawFn, folder: Path, counter: Iterator[int]) -> tuple[Path, list[str]]:
    rnd = random.Random(draw(st.integers(0, 2**63)))
    root = folder / f"i{next(counter)}"
    root.mkdir()
    rng = np.random.default_rng(rnd.randrange(2**16))
    pool = rnd.choice(
        [
            ["north", "south", "east"],
            FOLDER_NAMES,
            FOLDER_NAMES[4:],
            ["$\\frac$", "a$b$c", "n"],
            ["1", "2", "03"],
            ["1", "01", "2"],
        ]
    )
    clients = pool[: pick(rnd, rnd.randint(2, 3), 0, 1)]
    class_pool = pick(rnd, ["cat", "dog", "owl"], ["1", "01", "1.0"], ["$x$", "_u", "$\\frac$"], FOLDER_NAMES[8:])
    for client in clients:
        for cls in class_pool[: pick(rnd, 2, 0, 1, 3)]:
            where = root / client / cls
            where.mkdir(parents=True, exist_ok=True)
            for i in range(pick(rnd, 6, 0, 1, 2, 5)):
                _image(rnd, where / f"img{i}", rng)
    for _ in range(pick(rnd, 0, 1, 2)):  # odd things beside the images
        odd = rnd.choice(["file-at-top", "nested", "loop", "dangling", "notes"])
        if odd == "file-at-top":
            (root / "README.png").write_bytes(b"\x89PNG")
        elif odd == "nested" and clients:
            (root / clients[0] / "deep" / "deeper").mkdir(parents=True, exist_ok=True)
        elif odd == "loop" and clients:
            with contextlib.suppress(OSError):
                (root / clients[0] / "loop").symlink_to(root / clients[0] / "loop")
        elif odd == "dangling":
            with contextlib.suppress(OSError):
                (root / "gone").symlink_to(root / "nowhere")
        elif odd == "notes":
            (root / "notes.txt").write_text("x")
    sets = [f"data.benchmark={toml_str('image-folder')}", f"data.path={toml_str(str(root))}"]
    sets.append(f"data.image_size={pick(rnd, 8, 4, 16)}")
    if not pick(rnd, True, False):
        sets.append("data.channels=1")
    if not pick(rnd, True, False):
        sets += ['data.layout="domain/class"', f"data.clients_per_domain={pick(rnd, 2, 1, 5, 100)}"]
    return root, sets


def test_user_image_folders_decode_or_are_refused_in_one_line(work: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    tally = Tally("user-images")
    counter = iter(range(10**9))
    outs = iter(range(10**9))

    @hostile(45)
    @given(image_case(folder, counter))
    def one(case: tuple[Path, list[str]]) -> None:
        root, sets = case
        out = tmp_path / "outs" / f"o{next(outs)}"
        code, err, tb = run_data_show("image-folder", sets, out)
        tally.add(f"{sorted(tree(root))[:12]} {sets[2:]}", data_outcome(code, err, tb, out), code)
        if os.environ.get("HOSTILE_DEBUG"):
            print("IMAGES", code, err.strip()[:200])

    one()
    tally.report(minimum=35)


# ---------------------------------------------------------------- the installed entry point, once per kind


ENTRY = """
import contextlib, io, json, os, sys
from pathlib import Path
import pftlab.cli as cli
tmp = Path(sys.argv[1])
results = {}
err = io.StringIO()
with contextlib.redirect_stderr(err):  # a user's mistake: one line, exit 2
    results["symlink loop"] = [cli.main(["theory", "onestep", "--out", str(tmp / "l1" / "out")]), err.getvalue()]
saved = os.dup(1)
r, w = os.pipe()
os.close(r)  # `pftlab methods | head -0`: stdout's reader left before we wrote
os.dup2(w, 1)
err = io.StringIO()
with contextlib.redirect_stderr(err):
    results["reader gone"] = [cli.main(["methods"]), err.getvalue()]
os.dup2(saved, 1)
sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
(tmp / "results.json").write_text(json.dumps(results))
def boom(*args):
    raise ZeroDivisionError("planted")
cli._methods = boom  # a bug: uncaught, so the interpreter prints its traceback and exits with 1
raise SystemExit(cli.main(["methods"]))
"""


def test_entry_point_keeps_the_promise(tmp_path: Path) -> None:
    """In a fresh process: a user's mistake is one line and exit 2; a reader that left is quiet (141); a bug's
    traceback is printed by the interpreter, ending in the note that says it is a bug."""
    (tmp_path / "l1").symlink_to(tmp_path / "l2")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "PFTLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, str(tmp_path)], capture_output=True, text=True, timeout=120, env=env_vars
    )
    results = json.loads((tmp_path / "results.json").read_text())
    code, err = results["symlink loop"]
    assert problem(code, err, "") is None and code == 2 and "symbolic link loop" in err, err
    assert results["reader gone"] == [141, ""], "quiet, as a shell pipe does"
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ZeroDivisionError: planted" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("pftlab: internal error: this is a bug")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l1", "l2", "results.json"]


def test_the_probe_leaves_nothing_and_names_the_reason(tmp_path: Path) -> None:
    from pftlab.core.args import check_writable
    from pftlab.core.errors import UserError

    target = tmp_path / "a" / "b" / "c"
    assert check_writable(target, "--out") == target
    assert not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match=r"--out .* cannot be written: .*ENOTDIR"):
        check_writable(tmp_path / "f" / "x", "--out")
    with pytest.raises(UserError, match="ENAMETOOLONG"):
        check_writable(tmp_path / ("n" * 300), "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
