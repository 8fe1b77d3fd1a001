"""`pftlab data fetch NAME...`: the files a benchmark or a source needs, downloaded into the data root.

A name is a benchmark (`mnist-writers`: MNIST's training files and QMNIST's metadata) or a
source from the catalog (`mnist`, `cifar100`, ...). Every file goes to the path the loaders read
under the target folder (`$PFTLAB_DATA` by default); a file already there that verifies is kept.
A mirror (`--mirror URL` or `$PFTLAB_MIRROR`) serves the same relative paths as the data root
(`URL/mnist/train-images-idx3-ubyte.gz`) and is tried instead of the official locations. Files
that cannot be fetched are listed with what to download and where to put it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pftlab.core.errors import UserError
from pftlab.data.benchmarks import BENCHMARKS
from pftlab.data.download import DownloadError, Progress, download
from pftlab.data.sources.catalog import ALTERNATIVES, MANUAL, REMOTES, SOURCES, Remote

MIRROR_ENV = "PFTLAB_MIRROR"


@dataclass
class Plan:
    """What fetching some names means: files to download, and what must be got by hand."""

    remotes: list[Remote] = field(default_factory=list)
    manual: dict[str, str] = field(default_factory=dict)  # path -> what to do

    @property
    def size(self) -> int:
        return sum(r.size for r in self.remotes)


def names() -> list[str]:
    """Every name `fetch` knows: the catalog's sources and the benchmarks that read files."""
    return [*SOURCES, *(n for n, b in BENCHMARKS.items() if b.files and n not in SOURCES)]


def plan(requested: Iterable[str]) -> Plan:
    """The files behind the requested names, each once, in order; a name fetch does not know is a UserError."""
    out = Plan()
    seen: set[str] = set()

    def add(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        if path in REMOTES:
            out.remotes.append(REMOTES[path])
        elif path in ALTERNATIVES:
            for alt in ALTERNATIVES[path]:
                add(alt)
        elif path in MANUAL:
            out.manual[path] = MANUAL[path]

    for name in requested:
        if name in SOURCES:
            for r in SOURCES[name].files:
                add(r.path)
        elif name in BENCHMARKS and BENCHMARKS[name].files:
            for path in BENCHMARKS[name].files:
                add(path)
        elif name in BENCHMARKS:
            raise UserError(f"benchmark {name!r} reads no dataset files (it is embedded or reads data.path)")
        else:
            raise UserError(f"unknown dataset {name!r}; fetch knows {', '.join(names())}")
    return out


def urls_for(remote: Remote, mirror: str | None) -> tuple[str, ...]:
    if mirror:
        return (mirror.rstrip("/") + "/" + remote.path,)
    return remote.urls


def fetch(
    requested: Iterable[str],
    to: Path,
    mirror: str | None = None,
    timeout: float = 30.0,
    progress: Callable[[Remote], Progress | None] = lambda r: None,
    say: Callable[[str], None] = lambda line: None,
) -> Plan:
    """Download every fetchable file of the requested names into `to`; return the plan (with its manual part).

    Each URL of a file is tried in turn; the last error is raised when none gives the file.
    """
    work = plan(requested)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    for remote in work.remotes:
        target = to / remote.path
        last: UserError | None = None
        for url in urls_for(remote, mirror):
            try:
                download(url, target, dict(remote.accepted), timeout, progress(remote))
                last = None
                break
            except DownloadError as err:  # a refused or stalled server: try the next location
                say(f"{remote.path}: {err}")
                last = err
        if last is not None:
            raise last
    return work
