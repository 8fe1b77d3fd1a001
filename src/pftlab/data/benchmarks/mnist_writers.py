"""mnist-writers: natural partition, one client per NIST writer of the MNIST training set (QMNIST metadata).

539 writers, about 111 digits each; their series are two populations (0: Census Bureau
employees, 4: high-school students), recorded as each client's domain. `writers = 0` takes all.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark, idx_files
from pftlab.data.federate import ClientPool
from pftlab.data.sources import mnist, qmnist_writers

SERIES = {0: "census", 1: "census", 4: "students"}


class Params(Strict):
    writers: int = Field(0, ge=0, le=100_000, description="clients: a seeded sample of writers; 0 = all 539")
    min_samples: int = Field(10, ge=3, le=10_000, description="fewer digits: left out (none is; the smallest has 19)")


def pools(p: Params, seed: int) -> list[ClientPool]:
    images, meta = mnist("train"), qmnist_writers("train")
    ids, counts = np.unique(meta.writer, return_counts=True)
    ids = ids[counts >= p.min_samples]
    if p.writers:
        if p.writers > len(ids):
            raise UserError(f"data.writers={p.writers} but only {len(ids)} writers have >= {p.min_samples} digits")
        ids = np.sort(numpy_rng(seed, "writers").choice(ids, size=p.writers, replace=False))
    out = []
    for w in ids:
        idx = np.flatnonzero(meta.writer == w)
        series = SERIES.get(int(meta.series[idx[0]]), str(meta.series[idx[0]]))
        out.append(ClientPool(images.subset(idx), f"{series}", idx))
    return out


BENCHMARK = Benchmark(
    "mnist-writers",
    "natural (writers)",
    "MNIST training digits grouped by their NIST writer (QMNIST metadata): hundreds of small clients",
    Params,
    pools,
    quick={"writers": 20},
    files=(*idx_files("mnist", ("train",)), "qmnist/qmnist-train-labels.tsv.gz"),
    size=lambda p: f"{p.writers or 539} clients, ~111 samples each",
)
