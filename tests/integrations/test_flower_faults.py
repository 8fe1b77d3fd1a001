"""Flower faults on a real deployment: a SuperNode killed mid-round, and TLS with generated certificates.

Each test starts a SuperLink and three SuperNodes on 127.0.0.1 (tests/integrations/flower_cluster.py)
and kills every process it started, whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="Flower is not installed: pip install 'pftlab[flower]'")

from tests.integrations.flower_cluster import (
    BIN,
    GUARD,
    TINY,
    deployment,
    flower_env,
    free_port,
    kill_home,
    make_certificates,
    processes,
    start,
    superlink_command,
    wait_healthy,
    write_connection,
)

from pftlab.integrations.flower.partition import load_client

pytestmark = pytest.mark.flower

# A message takes a healthy node about 10 s here (ClientApp start-up), a minute on a heavily loaded 2-core
# machine; a dead node costs one round-timeout. The round-timeout is the one time that decides anything in
# these tests (a healthy node slower than it would count as dead), so it is several times that minute.
# Its SuperNodes send a heartbeat every HEARTBEAT s, so the SuperLink cannot take the killed node for
# offline (after two missed heartbeats) before the round-timeout ends: it stays a silent node.
ROUND_TIMEOUT = 120.0
HEARTBEAT = 600.0


@pytest.mark.long
def test_a_supernode_killed_mid_round_does_not_stop_the_run(tmp_path: Path) -> None:
    """SIGKILL the SuperNode of client 1 (and its ClientApp) once it has received round 1's train message.

    Round 1 goes on with clients 0 and 2 after one round-timeout; client 1 is not asked again;
    personalization and cross-site evaluation cover clients 0 and 2; the run finishes; flower.json
    and summary.json name client 1, its node and the round.

    Every wait is for an event (the node's log line, summary.json, the run's status), with GUARD as a last
    resort only; the time is reported, not judged.
    """
    t0 = time.perf_counter()
    victim = 1
    with deployment(tmp_path, TINY, round_timeout=ROUND_TIMEOUT, heartbeat=HEARTBEAT) as d:
        run_id = d.submit()
        node = d.nodes[victim]
        # the node logs each message it takes: the second train message is round 1's
        d.wait(lambda: d.log(f"supernode{victim}").count("Receiving: train message") >= 2, "round 1 on node 1")
        d.kill(node)
        killed_at = time.perf_counter()
        summary = d.wait_summary()
        status = d.status(run_id)
        assert status == "finished:completed", status + d.all_logs()
    seconds, after_kill = time.perf_counter() - t0, time.perf_counter() - killed_at

    run_dir = tmp_path / "run"
    flower = json.loads((run_dir / "flower.json").read_text())
    survivors = [0, 2]
    silent = [e for e in flower["missing"] if e["client"] != victim and "no reply within round-timeout" in e["why"]]
    assert not silent, f"a healthy node took longer than the {ROUND_TIMEOUT:.0f} s round-timeout: {silent}"
    assert [r["missing"] for r in flower["rounds"]] == [[], [victim]]
    assert not flower["rounds"][1]["skipped"] and flower["rounds"][1]["train_loss"] is not None
    assert flower["missing_in_personalization"] == [victim] and flower["missing_in_evaluation"] == []
    first = flower["missing"][0]
    assert (first["client"], first["message"], first["round"]) == (victim, "train", 1)
    assert first["node"] == flower["nodes"][str(victim)] and "no reply within round-timeout" in first["why"]
    assert {e["client"] for e in flower["missing"]} == {victim}

    missing = summary["missing_clients"]
    assert missing["rounds"] == {"1": [victim]} and missing["matrix"] == [victim]
    assert missing["personalization"] == [victim] and missing["matrix_clients"] == survivors
    assert missing["first_missed"][str(victim)]["round"] == 1

    # the metrics are those of the clients that answered, over their own test splits
    parts = sorted((tmp_path / "export").glob("clients/*"))
    assert summary["num_clients"] == 2
    assert summary["test_sizes"] == [len(load_client(parts[c])[0].test) for c in survivors]
    for metrics in summary["methods"].values():
        for key in ("local", "global", "global_balanced", "worst"):
            assert 0 <= metrics[key] <= 100, (key, metrics)
    header = (run_dir / "matrices" / "lp-ft.csv").read_text().splitlines()[0]
    assert header.split(",")[1:] == ["client0", "client2"]
    matrix = np.loadtxt(run_dir / "matrices" / "lp-ft.csv", delimiter=",", skiprows=1, usecols=(1, 2))
    assert matrix.shape == (2, 2)
    assert abs(np.diag(matrix).mean() - summary["methods"]["lp-ft"]["local"]) < 1e-3
    clients_csv = (run_dir / "clients.csv").read_text().splitlines()
    assert sorted({int(row.split(",")[1]) for row in clients_csv[1:]}) == survivors
    # the dead node cost one round-timeout, not one per message: it stayed silent for one (round 1's train
    # message) and was not asked again (personalization), which flower.json records message by message
    victim_events = [(e["message"], e["round"], e["why"]) for e in flower["missing"]]
    assert len(victim_events) == 2, victim_events
    assert victim_events[0][:2] == ("train", 1) and "no reply within round-timeout" in victim_events[0][2]
    assert victim_events[1][:2] == ("train.personalize", None) and "not asked" in victim_events[1][2]
    assert not kill_home(tmp_path / "flwr-home", 0), "a process outlived the deployment"
    print(f"killed-node run: {seconds:.0f} s in all, {after_kill:.0f} s after the kill")


@pytest.mark.long
def test_tls_between_superlink_and_supernodes(tmp_path: Path) -> None:
    """A run over TLS with a CA the test makes completes; a SuperNode without the CA, or insecure, is refused."""
    t0 = time.perf_counter()
    certs = make_certificates(tmp_path / "tls")
    overrides = [*TINY, "federated.rounds=1"]
    with deployment(tmp_path, overrides, tls=certs) as d:
        part = tmp_path / "export" / "clients" / "client0.safetensors"
        # trusts only the system CAs: the SuperLink's certificate does not verify
        no_ca = d.supernode("no-ca", part, "--max-retries", "1", "--max-wait-time", "5")
        # plain HTTP to the HTTPS port
        plain = d.supernode("insecure", part, "--insecure", "--max-retries", "1", "--max-wait-time", "5")
        run_id = d.submit()
        summary = d.wait_summary()
        status = d.status(run_id)
        assert status == "finished:completed", status + d.all_logs()
        for p in (no_ca, plain):
            p.wait(timeout=GUARD)  # they give up by themselves (--max-retries 1); GUARD only against a hang
        no_ca_log, plain_log, link_log = d.log("no-ca"), d.log("insecure"), d.log("superlink")
    # Flower's exit code 305: the SuperNode could not connect to the SuperLink
    assert no_ca.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in no_ca_log, no_ca_log[-3000:]
    assert plain.returncode != 0 and "Exit Code: 305" in plain_log, plain_log[-3000:]
    assert "Uvicorn running on https://127.0.0.1" in link_log
    assert link_log.count("/v1/fleet/register-node") == 3, "only the three SuperNodes with the CA joined"
    assert summary["num_clients"] == 3 and "missing_clients" not in summary
    assert not kill_home(tmp_path / "flwr-home", 0), "a process outlived the deployment"
    print(f"TLS run: {time.perf_counter() - t0:.0f} s")


def node_key(path: Path) -> None:
    """An EC P-384 key pair in OpenSSH format, as `ssh-keygen -t ecdsa -b 384 -N '' -f PATH` writes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    path.write_bytes(private)
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.with_suffix(".pub").write_bytes(public)


def test_supernode_authentication_admits_registered_nodes_only(tmp_path: Path) -> None:
    """`--enable-supernode-auth` (TLS required): a node whose public key `flwr supernode register` gave joins;
    a node with an unknown key is refused (Flower's exit code 305). No run: joining is what is tested."""
    t0 = time.perf_counter()
    certs = make_certificates(tmp_path / "tls")
    home, logs = tmp_path / "flwr-home", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    env, link = flower_env(home), free_port()
    write_connection(home, link, certs)
    node_key(tmp_path / "known")
    node_key(tmp_path / "stranger")
    try:
        with processes() as started:
            superlink = start(
                started, superlink_command(link, certs, "--enable-supernode-auth"), env, logs / "superlink.log"
            )
            wait_healthy(link, ca=certs.ca, superlink=superlink)
            flwr = [str(BIN / "flwr"), "supernode"]
            done = subprocess.run(
                [*flwr, "register", str(tmp_path / "known.pub"), "test", "--format", "json"],
                env=env, capture_output=True, text=True, timeout=GUARD,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            node_id = str(json.loads(done.stdout)["node-id"])
            nodes = {}
            # the stranger gives up after one retry (it is refused whatever the load); the registered node keeps
            # Flower's default retries, so that a slow answer on a loaded machine cannot make it give up
            retries = {"known": [], "stranger": ["--max-retries", "1", "--max-wait-time", "5"]}
            for name in ("known", "stranger"):
                cmd = [
                    str(BIN / "flower-supernode"), "--root-certificates", str(certs.ca),
                    "--superlink", f"127.0.0.1:{link}", "--port", str(free_port()),
                    "--auth-supernode-private-key", str(tmp_path / name), *retries[name],
                ]  # fmt: skip
                nodes[name] = start(started, cmd, env, logs / f"{name}.log")
            nodes["stranger"].wait(timeout=GUARD)
            stranger = (logs / "stranger.log").read_text(errors="replace")
            assert nodes["stranger"].returncode != 0 and "Failed to activate SuperNode" in stranger, stranger
            deadline = time.monotonic() + GUARD  # a last resort: the loop ends when the node is online or exited
            while True:
                done = subprocess.run(
                    [*flwr, "ls", "test", "--format", "json"], env=env, capture_output=True, text=True, timeout=GUARD
                )
                listed = {n["node-id"]: n["status"] for n in json.loads(done.stdout).get("nodes", [])}
                if listed.get(node_id) == "online" or nodes["known"].poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert listed == {node_id: "online"}, (listed, (logs / "known.log").read_text(errors="replace"))
            assert nodes["known"].poll() is None
    finally:
        left = kill_home(home)
    assert not left, "a process outlived the test"
    print(f"SuperNode authentication: {time.perf_counter() - t0:.0f} s")
