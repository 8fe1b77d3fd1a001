"""scripts/study_state.sh: an unfinished cell crosses machines whole, without finished cells' checkpoints."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "study_state.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("xz") is None, reason="needs bash and xz")


def state(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False)


def make_study(root: Path) -> None:
    """Seed 0 finished (manifest.json; run.json names checkpoint a; its .results kept), seed 1
    unfinished (.results, checkpoint b), seed 2 rerun with more methods (an old run.json naming c,
    a .results, no manifest): a and only a may go."""
    ckpts = root / "cache" / "global"
    ckpts.mkdir(parents=True)
    for name in "abc":
        (ckpts / f"{name}.safetensors").write_bytes(name.encode() * 100)
    for seed, ckpt, finished in ((0, "a", True), (1, None, False), (2, "c", False)):
        cell = root / "runs" / "bench" / f"seed{seed}"
        cell.mkdir(parents=True)
        if ckpt:
            run = {"global_checkpoint": f"runs/study/cache/global/{ckpt}.safetensors", "seconds": {}}
            (cell / "run.json").write_text(json.dumps(run, indent=1))
        if finished:
            (cell / "manifest.json").write_text("{}")
        (cell / ".results" / "ft-h").mkdir(parents=True)
        (cell / ".results" / "ft-h" / "chunk-0.json").write_text(json.dumps({"seed": seed}))
        (cell / ".results" / "ft-h" / "chunk-1.json.tmp").write_text("half-written")


def test_save_keeps_unfinished_cells_and_their_checkpoints_and_load_restores_them(tmp_path: Path) -> None:
    make_study(tmp_path / "study")
    saved = state("save", tmp_path / "study", tmp_path / "out" / "u.tar.xz")
    assert saved.returncode == 0, saved.stderr
    assert "2 unfinished cell(s) and 2 global checkpoint(s)" in saved.stdout
    with tarfile.open(tmp_path / "out" / "u.tar.xz") as tar:
        files = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert files == [
        "cache/global/b.safetensors",
        "cache/global/c.safetensors",
        "runs/bench/seed1/.results/ft-h/chunk-0.json",
        "runs/bench/seed2/.results/ft-h/chunk-0.json",
    ]
    loaded = state("load", tmp_path / "out" / "u.tar.xz", tmp_path / "resumed")
    assert loaded.returncode == 0, loaded.stderr
    for rel in files:
        assert (tmp_path / "resumed" / rel).read_bytes() == (tmp_path / "study" / rel).read_bytes()


def test_save_and_load_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "study" / "runs" / "bench" / "seed0").mkdir(parents=True)
    nothing = state("save", tmp_path / "study", tmp_path / "u.tar.xz")
    assert nothing.returncode == 2 and "no unfinished cell" in nothing.stderr
    assert not (tmp_path / "u.tar.xz").exists()
    not_study = state("save", tmp_path, tmp_path / "u.tar.xz")
    assert not_study.returncode == 2 and "STUDY_DIR is the --out of pftlab study" in not_study.stderr
    missing = state("load", tmp_path / "none.tar.xz", tmp_path / "x")
    assert missing.returncode == 2 and "not found" in missing.stderr
    usage = state("copy")
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")


FAKE_STUDY = """
import json, pathlib, sys, time
root = pathlib.Path(sys.argv[1])
results = root / "runs" / "bench" / "seed0" / ".results" / "ft-h"
results.mkdir(parents=True, exist_ok=True)
def seal(k):
    tmp = results / f"chunk-{k}.json.tmp"
    tmp.write_text(json.dumps({"chunk": k}))
    tmp.rename(results / f"chunk-{k}.json")
def wait_for(name):
    while not (root / name).exists():
        time.sleep(0.05)
seal(0)
wait_for("go")
seal(1)
wait_for("finish")
seal(2)
"""


def saved_chunks(file: Path) -> list[str]:
    """The chunk files in a saved state, or none while it is not there (or is being replaced)."""
    try:
        with tarfile.open(file) as tar:
            return sorted(Path(m.name).name for m in tar.getmembers() if m.isfile())
    except (FileNotFoundError, tarfile.TarError, EOFError):
        return []


def wait_until(condition: object, what: str, limit_s: float = 120.0) -> None:
    """Poll a state; the limit is only a last guard against a hang, never what a result depends on."""
    assert callable(condition)
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def start_fake_study(root: Path) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True)
    # Its own session, like `setsid scripts/decisive_study.sh`: the watch pauses its process group.
    return subprocess.Popen([sys.executable, "-c", FAKE_STUDY, str(root)], start_new_session=True)


def watch_a_study_to_its_end(
    tmp_path: Path, every: int, pairs: list[Path], while_it_runs: Callable[[], None] = lambda: None
) -> tuple[int, str]:
    """Watch a fake study (tmp_path/study) saving every EVERY seconds, do WHILE_IT_RUNS, let the
    study finish, and return the watch's status and output (stderr included)."""
    study = start_fake_study(tmp_path / "study")
    argv = ["bash", str(SCRIPT), "watch", str(study.pid), str(every), *map(str, pairs)]
    watch = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert watch.stdout is not None
        assert "watching process" in watch.stdout.readline()  # it has the study's group before the study ends
        while_it_runs()
        (tmp_path / "study" / "go").touch()
        (tmp_path / "study" / "finish").touch()
        # Never left paused: a study the watch forgot to resume (SIGCONT) would not get here.
        assert study.wait(timeout=120) == 0
        stdout, _ = watch.communicate(timeout=120)
    finally:
        study.kill()
        watch.kill()
    return watch.returncode, stdout


def test_watch_saves_while_the_study_runs_and_leaves_it_running(tmp_path: Path) -> None:
    out = tmp_path / "out" / "u.tar.xz"

    def saves_follow_the_study() -> None:
        wait_until(lambda: "chunk-0.json" in saved_chunks(out), "the first save")
        (tmp_path / "study" / "go").touch()
        wait_until(lambda: "chunk-1.json" in saved_chunks(out), "a save of what the study computed since")

    # A second study not begun yet (no runs/): skipped, not an error.
    pairs = [tmp_path / "study", out, tmp_path / "later", tmp_path / "l.tar.xz"]
    # Every second, not back to back: between saves the study runs freely, however loaded the machine.
    status, stdout = watch_a_study_to_its_end(tmp_path, 1, pairs, saves_follow_the_study)
    assert status == 0, stdout
    assert "saved at" in stdout and "last save done" in stdout
    assert saved_chunks(out) == ["chunk-0.json", "chunk-1.json", "chunk-2.json"]
    assert not (tmp_path / "l.tar.xz").exists()


def test_watch_saves_once_more_when_the_study_ends(tmp_path: Path) -> None:
    # Saving every 10^6 s: the only save is the last one, after the study has ended.
    status, stdout = watch_a_study_to_its_end(tmp_path, 1_000_000, [tmp_path / "study", tmp_path / "u.tar.xz"])
    assert status == 0
    assert "saved at" not in stdout and "last save done" in stdout
    assert saved_chunks(tmp_path / "u.tar.xz") == ["chunk-0.json", "chunk-1.json", "chunk-2.json"]


def test_watch_refuses_what_it_cannot_watch(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    no_process = state("watch", gone.pid, 60, tmp_path, tmp_path / "u.tar.xz")
    assert no_process.returncode == 2 and "no process" in no_process.stderr
    bad_pid = state("watch", "abc", 60, tmp_path, tmp_path / "u.tar.xz")
    assert bad_pid.stderr.startswith("study_state: PID must be a process id")
    assert "SECONDS must be a whole number" in state("watch", 1, "40m", tmp_path, tmp_path / "u.tar.xz").stderr
    assert state("watch", 1, 60, tmp_path).stderr.startswith("usage:")
    # A study in the watch's own process group: pausing it would pause the watch. Both run in a
    # session of their own, so that a watch which did pause its group would stop only itself
    # (and time out here), not the tests.
    watch = f'bash "{SCRIPT}" watch $pid 0 "{tmp_path}" "{tmp_path}/u.tar.xz"'
    both = f"sleep 1000 & pid=$!; {watch}; rc=$?; kill $pid; exit $rc"
    group = subprocess.Popen(
        ["bash", "-c", both], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = group.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of the group outlives the test
            os.killpg(group.pid, signal.SIGKILL)
    assert group.returncode == 2 and "start the study with setsid" in stderr


def stand_in_tar(tmp_path: Path, body: str) -> dict[str, str]:
    """An environment whose `tar` runs BODY first (a record, a wait) and then the real tar."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "tar").write_text(f'#!/bin/bash\n{body}\nexec {shutil.which("tar")} "$@"\n')
    (shim / "tar").chmod(0o755)
    return {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}


def process_state(pid: int) -> str:
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()


def test_watch_pauses_the_whole_group_while_it_saves(tmp_path: Path) -> None:
    """Like decisive_study.sh running pftlab: the work is done by a child in the leader's group."""
    root = tmp_path / "study"
    root.mkdir()
    seen = tmp_path / "seen"
    script = f'{sys.executable} -c "$1" "$2"; echo done'
    study = subprocess.Popen(["bash", "-c", script, "study", FAKE_STUDY, str(root)], start_new_session=True)
    env = stand_in_tar(tmp_path, f'ps -o stat= -g {study.pid} >> "{seen}"; echo --- >> "{seen}"')
    out = tmp_path / "u.tar.xz"
    argv = ["bash", str(SCRIPT), "watch", str(study.pid), "1", str(root), str(out)]
    watch = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: "chunk-0.json" in saved_chunks(out), "a save")
        (root / "go").touch()
        (root / "finish").touch()
        assert study.wait(timeout=120) == 0
        watch.wait(timeout=120)
    finally:
        study.kill()
        watch.kill()
    blocks = [b.split() for b in seen.read_text().split("---") if b.strip()]
    # Every save while the study ran saw both its processes (bash and python) stopped (T).
    assert blocks and all(st[0] in "TZ" for b in blocks for st in b), blocks[:5]
    assert len(blocks[0]) == 2


@pytest.mark.parametrize("signal_to_watch", [signal.SIGTERM, signal.SIGKILL])
def test_a_watch_ended_during_a_save_leaves_the_study_running(tmp_path: Path, signal_to_watch: int) -> None:
    """TERM is acted on at once (the EXIT trap resumes the study); after KILL, which no trap sees,
    the watch's guard resumes it."""
    study = start_fake_study(tmp_path / "study")
    saving, release = tmp_path / "saving", tmp_path / "release"
    env = stand_in_tar(tmp_path, f'touch "{saving}"; while [[ ! -e "{release}" ]]; do sleep 0.05; done')
    argv = ["bash", str(SCRIPT), "watch", str(study.pid), "0", str(tmp_path / "study"), str(tmp_path / "u.tar.xz")]
    watch = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(saving.exists, "a save to begin")
        wait_until(lambda: process_state(study.pid).startswith("T"), "the study to be paused")
        os.kill(watch.pid, signal_to_watch)
        watch.wait(timeout=120)
        wait_until(lambda: not process_state(study.pid).startswith("T"), "the study to run again")
    finally:
        release.touch()
        study.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watch.pid, signal.SIGKILL)


def test_watch_says_when_a_save_fails_and_ends_with_status_1(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    status, stdout = watch_a_study_to_its_end(
        tmp_path, 1_000_000, [tmp_path / "study", tmp_path / "a-file" / "u.tar.xz"]
    )
    assert status == 1
    assert f"saving {tmp_path / 'study'} failed" in stdout
