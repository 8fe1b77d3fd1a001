"""Fixtures of tests/data. A file server on 127.0.0.1 for the download tests: Range requests, and faults on demand.

Serves `root`'s files by path. `faults[path]` changes how one path answers: `"404"`, a number n
(`("drop", n)`: send n bytes of the body then close the connection; `("stall", n)`: send n bytes
then wait, sending nothing, until the test sets `release`), `("truncate", n)` (serve only the
first n bytes as if that were the whole file), `("ignore-range",)` (answer 200 with the whole
file even when asked for a range). A fault applies once, then the path is served normally.
Every request's path and Range header is recorded in `requests`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@dataclass
class FileServer:
    root: Path
    url: str = ""
    faults: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            state.requests.append((path, self.headers.get("Range")))
            fault = state.faults.pop(path, ())
            file = state.root / path
            if fault[:1] == ("404",) or not file.is_file():
                self.send_error(404, "Not Found")
                return
            data = file.read_bytes()
            if fault[:1] == ("truncate",):
                data = data[: fault[1]]
            start = 0
            ranged = self.headers.get("Range")
            if ranged and fault[:1] != ("ignore-range",):
                start = int(ranged.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault[:1] in (("drop",), ("stall",)):
                self.wfile.write(body[: fault[1]])
                self.wfile.flush()
                if fault[0] == "stall":
                    state.release.wait(120)  # the client gives up long before; then this connection is dead
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(root: Path) -> Iterator[FileServer]:
    """A FileServer on a free port of 127.0.0.1, stopped (stalled handlers released) on exit."""
    state = FileServer(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve_files() -> Callable[[Path], AbstractContextManager[FileServer]]:
    """`with serve_files(root) as server:` a FileServer on 127.0.0.1 (see the module docstring)."""
    return serve


def _tar_gz(path: Path, folder: str, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def make_tiny_cifar(root: Path, monkeypatch: pytest.MonkeyPatch, n: int = 12) -> dict[str, np.ndarray]:
    """cifar-10-binary.tar.gz and cifar-100-binary.tar.gz in the official layout with n random images,
    pinned in the catalog as if official. CIFAR-10: the last 2 images are the test batch, the others
    spread over the 5 train batches; CIFAR-100: the last quarter is test.bin."""
    from pftlab.data.sources import catalog

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    fine, coarse = (np.arange(n) * 7 % 100).astype(np.uint8), (np.arange(n) % 20).astype(np.uint8)

    def records(idx: Any, *label_cols: np.ndarray) -> bytes:
        return b"".join(bytes([int(c[i]) for c in label_cols]) + images[i].tobytes() for i in idx)

    names = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
    batches = {
        f"data_batch_{k + 1}.bin": records(part, labels) for k, part in enumerate(np.array_split(range(n - 2), 5))
    }
    root.mkdir(parents=True, exist_ok=True)
    _tar_gz(
        root / "cifar-10-binary.tar.gz",
        "cifar-10-batches-bin",
        {**batches, "test_batch.bin": records(range(n - 2, n), labels), "batches.meta.txt": names},
    )
    cut = n - n // 4
    _tar_gz(
        root / "cifar-100-binary.tar.gz",
        "cifar-100-binary",
        {
            "train.bin": records(range(cut), coarse, fine),
            "test.bin": records(range(cut, n), coarse, fine),
            "fine_label_names.txt": "\n".join(f"fine{i}" for i in range(100)).encode(),
            "coarse_label_names.txt": "\n".join(f"coarse{i}" for i in range(20)).encode(),
        },
    )
    for name in ("cifar-10-binary.tar.gz", "cifar-100-binary.tar.gz"):
        f = root / name
        pinned = ((hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_size),)
        monkeypatch.setitem(catalog.REMOTES, name, catalog.Remote(name, (), pinned))
    return {"images": images, "labels": labels, "fine": fine, "coarse": coarse}


@pytest.fixture
def tiny_cifar() -> Callable[..., dict[str, np.ndarray]]:
    """`tiny_cifar(root, monkeypatch, n=12)`: see make_tiny_cifar."""
    return make_tiny_cifar
