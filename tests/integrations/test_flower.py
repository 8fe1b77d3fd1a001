"""Flower as pftlab's engine: a real SuperLink and SuperNodes on 127.0.0.1, and the simulation engine.

Every process these tests start runs in its own process group and is killed in a `finally`
(tests/integrations/flower_cluster.py); telemetry is off and FLWR_HOME is a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="Flower is not installed: pip install 'pftlab[flower]'")

import torch
from safetensors.torch import load_file
from tests.integrations.flower_cluster import GUARD, QUICKSTART, TINY, deployment, descendants

import pftlab
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment
from pftlab.integrations.flower.app import export
from pftlab.integrations.flower.partition import load_client
from pftlab.integrations.flower.steps import config_json

pytestmark = pytest.mark.flower


def run_deployment(tmp: Path, overrides: list[str]) -> tuple[dict, float]:
    """SuperLink + one SuperNode per exported client + `flwr run`; (summary.json, seconds).

    Waits for the run's files and status, not for a time: a loaded machine makes it slower, not fail."""
    t0 = time.perf_counter()
    with deployment(tmp, overrides) as d:
        run_id = d.submit()
        summary = d.wait_summary()
        assert d.status(run_id) == "finished:completed", d.all_logs()
    return summary, time.perf_counter() - t0


@pytest.mark.long
def test_deployment_engine_superlink_and_three_supernodes(tmp_path: Path) -> None:
    summary, seconds = run_deployment(tmp_path, TINY)
    run_dir = tmp_path / "run"
    assert summary["num_clients"] == 3
    assert set(summary["methods"]) == {"global-model", "lp-ft"}
    for metrics in summary["methods"].values():
        for key in ("local", "global", "global_balanced", "worst"):
            assert 0 <= metrics[key] <= 100, (key, metrics)
        assert metrics["worst"] <= metrics["global_balanced"] + 1e-9
        assert abs(metrics["average3"] - (metrics["local"] + metrics["global"] + metrics["worst"]) / 3) < 1e-3
    gm = summary["methods"]["global-model"]
    assert abs(gm["local"] - gm["global_balanced"]) < 1e-3  # one model: the same numbers over another index
    matrix = np.loadtxt(run_dir / "matrices" / "lp-ft.csv", delimiter=",", skiprows=1, usecols=range(1, 4))
    assert matrix.shape == (3, 3) and ((matrix >= 0) & (matrix <= 100)).all()
    assert abs(np.diag(matrix).mean() - summary["methods"]["lp-ft"]["local"]) < 1e-3
    # the matrix is over the nodes' own test splits: the exported partitions' test splits
    assert summary["test_sizes"] == [
        len(load_client(p)[0].test) for p in sorted((tmp_path / "export").glob("clients/*"))
    ]
    flower = json.loads((run_dir / "flower.json").read_text())
    assert [r["sampled"] for r in flower["rounds"]] == [[0, 1, 2], [0, 1, 2]]
    assert all(not r["missing"] for r in flower["rounds"])
    # how long it took is reported, not judged: the time depends on the machine and on what else runs on it
    stages = json.loads((run_dir / "run.json").read_text())["seconds"]
    print(f"deployment run: {seconds:.0f} s in all; ServerApp stages (s): {stages}")


def test_partition_file_round_trip(tmp_path: Path) -> None:
    cfg = load_config(QUICKSTART, TINY)
    paths = export(cfg, tmp_path)
    fed = build_federation(cfg.data, cfg.seed)
    for k, path in enumerate(paths):
        client, meta = load_client(path)
        assert client.client_id == k and meta["partition_hash"] == fed.partition_hash
        for split in ("train", "val", "test"):
            assert np.array_equal(getattr(client, split).x, getattr(fed.clients[k], split).x)
            assert np.array_equal(getattr(client, split).y, getattr(fed.clients[k], split).y)
    assert load_config(tmp_path / "config.toml").resolved() == cfg.resolved()
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a safetensors file"):
        load_client(tmp_path / "bad.safetensors")


def test_simulation_engine_matches_in_process_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same config and seed: Flower's simulation engine and `pftlab run` give bit-identical global weights.

    Both call the algorithm's local_update and server_round with the same data order and the
    clients in the same order, so the tolerance is zero; the personalized models match as well.
    """
    cfg = load_config(QUICKSTART, TINY)
    expected = run_experiment(cfg, tmp_path / "in-process")
    got = simulate(cfg, tmp_path, monkeypatch)
    a = load_file(str(tmp_path / "in-process" / "global.safetensors"))
    b = load_file(str(tmp_path / "flower" / "global.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    accuracy_keys = ("local", "global", "global_balanced", "worst", "c_std", "average", "average3")
    for method in ("global-model", "lp-ft"):
        assert {k: got["methods"][method][k] for k in accuracy_keys} == {
            k: expected["methods"][method][k] for k in accuracy_keys
        }, method
    assert got["test_sizes"] == expected["test_sizes"] and got["partition_hash"] == expected["partition_hash"]


def test_simulation_engine_chooses_by_both_rules_as_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cross-site rule on Flower (a validation round: every node scores the others' candidates on
    its share of the validation pool) keeps the points the in-process run keeps, with the same scores."""
    grid = ['personalize.methods=["ft","lp"]', "search.ft.lr=[0.0001, 0.05]", "search.lp.lr=[0.0001, 0.5]"]
    choice = ['choice.rules=["local","cross-site"]', "choice.pool_images=90", "choice.weight=0.9"]
    cfg = load_config(QUICKSTART, [*TINY, *grid, *choice, "federated.rounds=10"])
    expected = run_experiment(cfg, tmp_path / "in-process")
    got = simulate(cfg, tmp_path, monkeypatch)
    names = ["global-model", "ft", "ft@cross-site", "lp", "lp@cross-site"]
    assert set(got["methods"]) == set(expected["methods"]) == set(names)
    want = json.loads((tmp_path / "in-process" / "search.json").read_text())
    chosen = json.loads((tmp_path / "flower" / "search.json").read_text())
    assert set(chosen) == set(names[1:]) and all(len(chosen[n]) == 3 for n in chosen)
    assert [c["params"] for c in want["ft"]] != [c["params"] for c in want["ft@cross-site"]]  # the rules differ here
    for name in names[1:]:
        assert [c["params"] for c in chosen[name]] == [c["params"] for c in want[name]], name
        for c, w in zip(chosen[name], want[name], strict=True):
            assert c["val_accuracy"] == pytest.approx(w["val_accuracy"], abs=1e-9)
            if name.endswith("@cross-site"):
                assert c["val_others"] == pytest.approx(w["val_others"], abs=1e-9)
                assert c["objective"] == pytest.approx(w["objective"], abs=1e-9)
    for name in names:
        for key in ("local", "global", "global_balanced"):
            assert got["methods"][name][key] == pytest.approx(expected["methods"][name][key], abs=1e-9), (name, key)


def simulate(cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """`cfg` run on Flower's simulation engine (3 SuperNodes) into tmp_path/flower; its summary.json."""
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from pftlab.integrations.flower.client_app import app as client_app
    from pftlab.integrations.flower.server_app import run_federation

    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr-home"))
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    # no time limit decides anything: rounds wait for every reply (0: no round-timeout), and the nodes' discovery
    # (the query round, one Ray actor answering the nodes in turn) has GUARD as a last resort, not the default 120 s
    run_config = {
        "config-json": config_json(cfg),
        "run-dir": str(tmp_path / "flower"),
        "round-timeout": 0.0,
        "nodes-timeout": GUARD,
    }
    server, ray_processes = ServerApp(), []

    @server.main()
    def _main(grid, context) -> None:  # the run config `flwr run` would take from the exported app
        run_federation(grid, run_config)
        ray_processes.extend(descendants(os.getpid()))  # Ray's workers, still running here

    try:
        run_simulation(
            server, client_app, num_supernodes=3,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 1}},
        )  # fmt: skip
    finally:  # a Ray actor can outlive ray.shutdown() as an orphan
        for pid in ray_processes:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    got: dict = json.loads((tmp_path / "flower" / "summary.json").read_text())
    assert pftlab.Results.load(tmp_path / "flower").summary == got  # its files verify against its manifest
    return got
