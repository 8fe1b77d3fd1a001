"""A real Flower deployment on 127.0.0.1 for the tests: one SuperLink, one SuperNode per client.

Every process runs in its own session and is killed, with everything below it (SuperExec,
ClientApp and ServerApp processes start their own sessions), when the `deployment` block ends.
Telemetry is off, FLWR_HOME is a temporary folder, every process uses one thread.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pftlab.experiment.config import load_config
from pftlab.integrations.flower.app import export

BIN = Path(sys.executable).parent
# A last resort against a hang: every wait below polls for an event (a file, a log line, a process state, an
# answer) and returns as soon as it holds; this only bounds a wait that would otherwise never end. It is far
# beyond what any step takes on a loaded machine, so load makes the tests slower, never makes them fail.
GUARD = 1200.0
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


def with_home(home: Path) -> list[int]:
    """Every live process whose environment has FLWR_HOME=home: what a deployment started, orphans included."""
    tag = f"FLWR_HOME={home}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with suppress(OSError, IndexError):
            state = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in "ZX" and tag in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def kill_home(home: Path, seconds: float = GUARD) -> list[int]:
    """SIGKILL every process with FLWR_HOME=home until none is left; what is still alive after `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := with_home(home)) and time.monotonic() < deadline:
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return left


def kill_tree(p: subprocess.Popen) -> None:
    """SIGKILL a started process, its group and everything below it (as if its machine died)."""
    for pid in [*descendants(p.pid), p.pid]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=GUARD)


@contextmanager
def processes() -> Iterator[list[subprocess.Popen]]:
    """Started processes, each in its own group; every group is killed on the way out."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for p in started:
            kill_tree(p)


def start(started: list[subprocess.Popen], cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("wb")
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    started.append(p)
    return p


def wait_healthy(
    port: int, seconds: float = GUARD, ca: Path | None = None, superlink: subprocess.Popen | None = None
) -> None:
    """Until the SuperLink's HTTP API answers (the Control API takes runs only then); fails at once if the
    SuperLink process exited, and after `seconds` only as a last resort."""
    import httpx

    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}/health"
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if superlink is not None and superlink.poll() is not None:
            pytest.fail(f"the SuperLink on port {port} exited ({superlink.returncode}) before it answered")
        try:
            if httpx.get(url, timeout=10, verify=verify).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the SuperLink on port {port} did not answer within {seconds:.0f} s")


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA's certificate: what SuperNodes and `flwr` trust
    cert: Path  # the SuperLink's certificate, for 127.0.0.1 and localhost, signed by the CA
    key: Path  # its private key


def make_certificates(folder: Path) -> Certificates:
    """A throw-away CA and a SuperLink certificate signed by it (SAN: IP 127.0.0.1, DNS localhost)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=1),
    }

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder(issuer_name=name("pftlab test CA"), subject_name=name("pftlab test CA"), **valid)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(issuer_name=ca_cert.subject, subject_name=name("127.0.0.1"), **valid)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    out.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out.key.chmod(0o600)
    return out


@dataclass
class Deployment:
    """What `deployment` started: the SuperLink's port, the SuperNodes (node k serves client k), the logs."""

    tmp: Path
    env: dict[str, str]
    link: int
    logs: Path
    run_dir: Path
    started: list[subprocess.Popen]
    tls: Certificates | None = None
    heartbeat: float | None = None  # seconds between the SuperNodes' heartbeats; None: Flower's default
    nodes: list[subprocess.Popen] = field(default_factory=list)
    watched: list[subprocess.Popen] = field(default_factory=list)  # must not exit while the run goes on

    def kill(self, p: subprocess.Popen) -> None:
        """SIGKILL a SuperNode and its SuperExec and ClientApp processes: its machine died."""
        self.watched.remove(p)
        kill_tree(p)

    def supernode(self, name: str, partition: Path, *args: str) -> subprocess.Popen:
        """A SuperNode dialing the SuperLink; `args` as given (default: --insecure, or the test CA with TLS)."""
        security = list(args) or (["--root-certificates", str(self.tls.ca)] if self.tls else ["--insecure"])
        program = (
            [str(BIN / "flower-supernode")]
            if self.heartbeat is None
            else [sys.executable, str(Path(__file__).with_name("slow_heartbeat_supernode.py")), str(self.heartbeat)]
        )
        cmd = [
            *program, *security, "--superlink", f"127.0.0.1:{self.link}",
            "--port", str(free_port()), "--node-config", f'partition-file="{partition}"',
        ]  # fmt: skip
        return start(self.started, cmd, self.env, self.logs / f"{name}.log")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def all_logs(self) -> str:
        return "\n".join(
            f"== {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in sorted(self.logs.glob("*.log"))
        )

    def flwr(self, *args: str, timeout: float = GUARD) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "flwr"), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def submit(self, *run_config: str) -> str:
        """`flwr run` the exported App (with `-c` overrides); the run id."""
        overrides = [a for kv in run_config for a in ("-c", kv)]
        done = self.flwr("run", str(self.tmp / "export" / "app"), "test", "--format", "json", *overrides)
        assert done.returncode == 0 and json.loads(done.stdout)["success"], done.stdout + done.stderr
        return str(json.loads(done.stdout)["run-id"])

    def wait(self, until: Callable[[], bool], what: str, seconds: float = GUARD) -> None:
        """Poll `until` every 0.2 s; fail with every log as soon as a watched process exited, or if `until` still
        does not hold after `seconds` (a last resort against a hang)."""
        deadline = time.monotonic() + seconds
        while not until():
            dead = [p.args for p in self.watched if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"no {what} after {seconds:.0f} s (exited early: {dead})\n{self.all_logs()}")
            time.sleep(0.2)

    def wait_summary(self, seconds: float = GUARD) -> dict:
        path = self.run_dir / "summary.json"
        self.wait(path.is_file, path.name, seconds)
        return json.loads(path.read_text())

    def status(self, run_id: str, seconds: float = GUARD) -> str:
        """The run's status once it has finished (`finished:completed` when the ServerApp returned); polled, with
        `seconds` only as a last resort (then the status as it is)."""
        deadline = time.monotonic() + seconds
        while True:
            done = self.flwr("ls", "test", "--run-id", run_id, "--format", "json")
            runs = json.loads(done.stdout).get("runs", []) if done.returncode == 0 else []
            text = runs[0]["status"] if runs else f"flwr ls failed: {done.stdout}{done.stderr}"
            if text.startswith("finished") or time.monotonic() > deadline:
                return text
            time.sleep(1)


def write_connection(home: Path, link: int, tls: Certificates | None) -> None:
    """FLWR_HOME/config.toml with the SuperLink connection "test" (the default) for `flwr`."""
    security = f'root-certificates = "{tls.ca}"' if tls else "insecure = true"
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{link}"\n{security}\n'
    )


def superlink_command(link: int, tls: Certificates | None, *args: str) -> list[str]:
    security = (
        ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
        if tls
        else ["--insecure"]
    )
    return [
        str(BIN / "flower-superlink"), *security, "--host", "127.0.0.1", "--port", str(link),
        "--disable-runtime-dependency-installation", *args,
    ]  # fmt: skip


@contextmanager
def deployment(
    tmp: Path,
    overrides: list[str],
    *,
    round_timeout: float = GUARD,
    tls: Certificates | None = None,
    heartbeat: float | None = None,
) -> Iterator[Deployment]:
    """Export the config, start a SuperLink (TLS with `tls`) and one SuperNode per client; kill them all after.

    The ServerApp's round-timeout and nodes-timeout are GUARD by default: a round ends as soon as every node
    answered and discovery as soon as every node joined, so on a healthy deployment they are last resorts
    that a slow (loaded) machine never reaches; a test of a dead node passes a shorter `round_timeout`.
    `heartbeat`: the SuperNodes' heartbeat interval (tests/integrations/slow_heartbeat_supernode.py).
    """
    cfg = load_config(QUICKSTART, overrides)
    run_dir = tmp / "run"
    partitions = export(cfg, tmp / "export", run_dir, round_timeout=round_timeout, nodes_timeout=GUARD)
    home, logs = tmp / "flwr-home", tmp / "logs"
    home.mkdir()
    logs.mkdir()
    env, link = flower_env(home), free_port()
    write_connection(home, link, tls)
    with processes() as started:
        d = Deployment(tmp, env, link, logs, run_dir, started, tls, heartbeat)
        superlink = start(started, superlink_command(link, tls), env, logs / "superlink.log")
        d.nodes = [d.supernode(f"supernode{k}", path) for k, path in enumerate(partitions)]
        d.watched = [superlink, *d.nodes]
        try:
            wait_healthy(link, ca=tls.ca if tls else None, superlink=superlink)
            yield d
        finally:  # what a node that exited by itself left behind (its SuperExec) is no longer below it
            kill_home(home)
