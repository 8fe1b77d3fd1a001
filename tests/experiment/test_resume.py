"""Interruption and numeric faults: a killed run or sweep resumes to identical results; a NaN client is left out."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pftlab.core.sealed import write_sealed
from pftlab.experiment import runner
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment
from pftlab.study.sweep import run_time

# 6 clients in chunks of 2 (LP, head-only, in one): 7 chunk boundaries where a kill can land
SMALL = [
    "data.num_clients=6",
    "federated.rounds=10",
    "personalize.epochs=4",
    "method.lp-ft.lp_epochs=1",
    "runtime.batch_clients=2",
]


def _cmd(quickstart: Path, out: Path, *extra: str) -> list[str]:
    sets = [a for s in SMALL for a in ("--set", s)]
    main = "from pftlab.cli import main; raise SystemExit(main())"
    return [sys.executable, "-c", main, "run", str(quickstart), *sets, "--out", str(out), "--no-progress", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# A last resort against a run that hangs: the tests wait for events (files a run writes), never for a time,
# so a loaded machine only makes them slower; this is far beyond what any of these runs takes there.
GUARD = 1200.0


def _kill_when(cmd: list[str], ready: Callable[[], bool], log: Path) -> None:
    """Start the run and SIGKILL it as soon as `ready()` holds (polled every 10 ms).

    Only the event decides when the kill lands. The run ending before it, or a run that shows no such event
    within GUARD seconds (a hang), fails the test with the run's output: never a kill at a moment the clock chose.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + GUARD
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended (exit {proc.returncode}) before the moment to kill it\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no moment to kill the run within {GUARD:.0f} s: is it hung?\n{_tail(log)}")
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.is_file() else ""


@pytest.mark.long
def test_sigkill_at_several_moments_then_restart_gives_identical_results(
    quickstart: Path, tmp_path: Path, monkeypatch
) -> None:
    reference = tmp_path / "reference"
    subprocess.run(_cmd(quickstart, reference), env=_env(), check=True, capture_output=True)
    want = (reference / "summary.json").read_bytes()
    clients_csv = (reference / "clients.csv").read_bytes()
    cache = tmp_path / "fresh-cache"

    def chunks(out: Path, n: int):
        return lambda: len(list((out / ".results").rglob("chunk-*.json"))) >= n

    def global_stage_started(out: Path):
        # the run makes its directory once the data and the model are built, just before the global stage
        return out.is_dir

    def global_checkpoints() -> list[Path]:
        return list((cache / "global").glob("*.safetensors")) if (cache / "global").is_dir() else []

    moments = {  # name -> when to kill
        "early, while the global stage trains (fresh cache)": global_stage_started(tmp_path / "killed0"),
        "after 1 chunk of FT": chunks(tmp_path / "killed1", 1),
        "after FT and LP": chunks(tmp_path / "killed2", 4),
        "in the middle of LP-FT": chunks(tmp_path / "killed3", 5),
    }
    monkeypatch.setenv("PFTLAB_CACHE", str(cache))
    reused = 0
    for k, (name, when) in enumerate(moments.items()):
        out = tmp_path / f"killed{k}"
        _kill_when(_cmd(quickstart, out), when, tmp_path / f"killed{k}.log")
        assert not (out / "summary.json").exists(), f"killed {name}: the run must not look finished"
        if k == 0:  # the kill landed in the global stage: it had not saved its checkpoint
            assert not global_checkpoints(), "killed too late: the global stage had finished"
            assert not (out / ".results").exists()
        done = subprocess.run(_cmd(quickstart, out), env=_env(), check=True, capture_output=True, text=True)
        reused += "reused" in done.stdout + done.stderr
        assert (out / "summary.json").read_bytes() == want, f"killed {name}"
        assert (out / "clients.csv").read_bytes() == clients_csv
        assert (out / "manifest.json").is_file()  # written last: the folder is a finished, verifiable run
        assert not [p for p in out.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"
        assert len(global_checkpoints()) == 1, "the restart after the early kill trained and saved the global model"
    assert reused >= 3, "restarts after finished chunks must say what they reused"
    assert not list(cache.rglob("*.tmp*"))


@pytest.mark.long
def test_a_sweep_killed_in_its_second_seed_resumes_to_the_same_aggregate(quickstart: Path, tmp_path: Path) -> None:
    """`run --seeds 0 1`: killed once seed 0 is finished and seed 1 has a finished chunk, then restarted."""
    seeds = ["--seeds", "0", "1"]
    whole = tmp_path / "whole"
    subprocess.run(_cmd(quickstart, whole, *seeds), env=_env(), check=True, capture_output=True)
    out = tmp_path / "killed"
    _kill_when(
        _cmd(quickstart, out, *seeds),
        lambda: (out / "seed0" / "summary.json").exists() and any((out / "seed1" / ".results").rglob("chunk-*.json")),
        tmp_path / "killed.log",
    )
    assert (out / "seed0" / "summary.json").exists() and not (out / "aggregate.json").exists()
    done = subprocess.run(_cmd(quickstart, out, *seeds), env=_env(), check=True, capture_output=True, text=True)
    said = done.stdout + done.stderr
    assert "reused the finished run" in said and re.search(
        r"reused \d+ verified chunk", said
    )  # seed 0 whole, 1 in part
    for name in ("aggregate.json", "aggregate.md", "seed0/summary.json", "seed1/summary.json"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def test_a_finished_run_is_reused_and_fresh_recomputes(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, tiny)
    first = run_experiment(cfg, tmp_path / "run")
    stamp = (tmp_path / "run" / "run.json").stat().st_mtime_ns
    assert run_experiment(cfg, tmp_path / "run") == first
    assert (tmp_path / "run" / "run.json").stat().st_mtime_ns == stamp  # nothing rewritten
    assert run_experiment(cfg, tmp_path / "run", resume=False) == first
    assert (tmp_path / "run" / "run.json").stat().st_mtime_ns != stamp


def test_partial_chunks_are_reused_and_give_the_same_result(quickstart: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = load_config(quickstart, [*SMALL, "runtime.progress=false"])
    want = run_experiment(cfg, tmp_path / "whole")
    calls = []
    original = runner._run_chunk

    def crash_on_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the user presses Ctrl-C in the middle of the second method
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_chunk", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "cut")
    assert len(list((tmp_path / "cut" / ".results").rglob("chunk-*.json"))) == 3
    calls.clear()
    monkeypatch.setattr(runner, "_run_chunk", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    assert run_experiment(cfg, tmp_path / "cut") == want
    assert len(calls) == 7 - 3  # FT 3 chunks, LP 1 (head-only: one chunk), LP-FT 3; only unfinished ones ran
    info = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert info["resumed"]["reused_results"] == {"global": 1, "ft": 3} and info["resumed"]["seconds_unknown"] == []
    assert info["allocator"].startswith(("glibc malloc", "default"))  # recorded, whatever the platform
    # FT's time counts the three chunks computed before the interruption, not just this run's
    assert info["seconds"]["ft"] > info["resumed"]["seconds_this_run"]["ft"] + 0.01
    assert info["seconds"]["lp-ft"] == info["resumed"]["seconds_this_run"]["lp-ft"]


def test_a_finished_baseline_is_reused_after_an_interruption(
    quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch
) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["lp","fedper","fedrep"]', "runtime.progress=false"])
    want = run_experiment(cfg, tmp_path / "whole")
    import pftlab.experiment.runner

    calls: list[str] = []
    original = pftlab.experiment.runner.train_baseline

    def crash_on_second(spec, *args, **kwargs):  # a baseline's federated training
        calls.append(spec.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during FedRep's federated training
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(pftlab.experiment.runner, "train_baseline", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "cut")
    [saved] = (tmp_path / "cut" / ".results").glob("fed*/result.json")
    assert saved.parent.name.startswith("fedper-")
    record = json.loads(saved.read_text())
    assert record["payload"]["seconds"] > 0
    del record["payload"]["seconds"]  # as saved by a version that did not record the time
    write_sealed(saved, record["key"], record["payload"])
    calls.clear()
    assert run_experiment(cfg, tmp_path / "cut") == want
    assert calls == ["fedrep"]  # FedPer's saved result was reused, only FedRep trained again
    info = json.loads((tmp_path / "cut" / "run.json").read_text())
    # LP's one chunk was done too, and the global model was trained by the first run (its seconds count)
    assert info["resumed"]["reused_results"] == {"global": 1, "lp": 1, "fedper": 1}
    assert info["resumed"]["seconds_unknown"] == ["fedper"]
    assert run_time(tmp_path / "cut") is None and run_time(tmp_path / "whole") > 0  # the study leaves it out


def test_a_nan_client_is_left_out_and_named(quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch) -> None:
    cfg = load_config(quickstart, tiny)
    build = runner.build_federation

    def poisoned(data_cfg, seed):
        fed = build(data_cfg, seed)
        c = fed.clients[2]
        x = c.train.x.copy()
        x[0] = np.inf  # one sample of client 2 makes its loss non-finite
        clients = list(fed.clients)
        clients[2] = dataclasses.replace(c, train=dataclasses.replace(c.train, x=x))
        # the partition hash covers the data bytes: poisoned data is another federation (no cached global model)
        return dataclasses.replace(fed, clients=clients, partition_hash=fed.partition_hash + "-poisoned")

    monkeypatch.setattr(runner, "build_federation", poisoned)
    summary = run_experiment(cfg, tmp_path / "run")
    failed = summary["failed_clients"]
    for m in ("ft", "lp", "lp-ft"):  # the loop (FT, LP-FT) and the batched engine (LP) both stop it
        assert [f["client"] for f in failed[m]] == [2] and "nan" in failed[m][0]["reason"], m
    assert summary["methods"]["ft"]["failed"] == 1
    # the global stage rejected client 2's non-finite updates instead of averaging them in
    assert summary["global_stage"]["updates_rejected"] >= 1
    for m in ("ft", "lp", "lp-ft"):
        metrics = summary["methods"][m]
        assert all(np.isfinite(v) for v in metrics.values()), m
    rows = [r for r in (tmp_path / "run" / "clients.csv").read_text().splitlines() if r.startswith("ft,2,")]
    assert rows and "nan" in rows[0]
    json.loads((tmp_path / "run" / "summary.json").read_text())  # valid JSON: no bare NaN
