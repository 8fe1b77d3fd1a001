"""Flower as pftlab's engine: a real SuperLink and SuperNodes on 127.0.0.1, and the simulation engine.

Every process these tests start runs in its own process group and is killed in a `finally`;
telemetry is off and FLWR_HOME is a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="Flower is not installed: pip install 'pftlab[flower]'")

import torch
from safetensors.torch import load_file

from pftlab.data.benchmarks import build_federation
from pftlab.errors import UserError
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment
from pftlab.integrations.flower.app import export
from pftlab.integrations.flower.partition import load_client
from pftlab.integrations.flower.steps import config_json

pytestmark = pytest.mark.flower

BIN = Path(sys.executable).parent
QUICKSTART = Path(__file__).parents[2] / "configs" / "quickstart.toml"
# 3 clients of the quick digits federation, 2 FedAvg rounds, LP-FT: a few seconds of compute.
TINY = [
    'data.size="quick"',
    "data.num_clients=3",
    "federated.rounds=2",
    'personalize.methods=["lp-ft"]',
    "personalize.epochs=2",
    "method.lp-ft.lp_epochs=1",
    "runtime.threads=1",
    "runtime.progress=false",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flower_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FLWR_HOME=str(home),
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        OMP_NUM_THREADS="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (SuperExec, ClientApp, Ray workers start their own sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def processes() -> Iterator[list[subprocess.Popen]]:
    """Started processes, each in its own group; every group is killed on the way out."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for p in started:
            for pid in [*descendants(p.pid), p.pid]:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def start(started: list[subprocess.Popen], cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("wb")
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    started.append(p)
    return p


def wait_healthy(port: int, seconds: float = 60) -> None:
    """Until the SuperLink's HTTP API answers (the Control API takes runs only then)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the SuperLink on port {port} did not answer within {seconds:.0f} s")


def wait_for(path: Path, procs: list[subprocess.Popen], logs: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_file():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            text = "\n".join(
                f"== {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in sorted(logs.glob("*.log"))
            )
            pytest.fail(f"no {path.name} after {seconds:.0f} s (exited early: {dead})\n{text}")
        time.sleep(0.5)


def run_deployment(tmp: Path, overrides: list[str], kill_client: int | None = None) -> tuple[dict, float]:
    """SuperLink + one SuperNode per exported client + `flwr run`; (summary.json, seconds)."""
    t0 = time.perf_counter()
    cfg = load_config(QUICKSTART, overrides)
    run_dir = tmp / "run"
    partitions = export(cfg, tmp / "export", run_dir, round_timeout=60.0, nodes_timeout=60.0)
    home, logs = tmp / "flwr-home", tmp / "logs"
    home.mkdir()
    logs.mkdir()
    env = flower_env(home)
    link = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    with processes() as started:
        start(
            started,
            [str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(link),
             "--disable-runtime-dependency-installation"],
            env, logs / "superlink.log",
        )  # fmt: skip
        for k, path in enumerate(partitions):
            start(
                started,
                [str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}",
                 "--port", str(free_port()), "--node-config", f'partition-file="{path}"'],
                env, logs / f"supernode{k}.log",
            )  # fmt: skip
        wait_healthy(link)
        submit = subprocess.run(
            [str(BIN / "flwr"), "run", str(tmp / "export" / "app"), "test", "--format", "json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert submit.returncode == 0 and json.loads(submit.stdout)["success"], submit.stdout + submit.stderr
        wait_for(run_dir / "summary.json", started, logs, 150)
    return json.loads((run_dir / "summary.json").read_text()), time.perf_counter() - t0


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
    assert seconds < 180, f"the deployment test took {seconds:.0f} s"


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
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from pftlab.integrations.flower.client_app import app as client_app
    from pftlab.integrations.flower.server_app import run_federation

    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr-home"))
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    cfg = load_config(QUICKSTART, TINY)
    expected = run_experiment(cfg, tmp_path / "in-process")

    run_config = {"config-json": config_json(cfg), "run-dir": str(tmp_path / "flower"), "round-timeout": 0.0}
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
    got = json.loads((tmp_path / "flower" / "summary.json").read_text())
    a = load_file(str(tmp_path / "in-process" / "global.safetensors"))
    b = load_file(str(tmp_path / "flower" / "global.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    accuracy_keys = ("local", "global", "global_balanced", "worst", "c_std", "average", "average3")
    for method in ("global-model", "lp-ft"):
        assert {k: got["methods"][method][k] for k in accuracy_keys} == {
            k: expected["methods"][method][k] for k in accuracy_keys
        }, method
    assert got["test_sizes"] == expected["test_sizes"] and got["partition_hash"] == expected["partition_hash"]
