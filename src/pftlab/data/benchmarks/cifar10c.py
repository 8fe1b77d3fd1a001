"""cifar10c: input-level covariate shift, CIFAR-10-C style, one corruption per client.

CIFAR-10 train + test are pooled, `num_clients * samples_per_client` images drawn (seeded) and
split over clients (IID labels by default, so the shift is the corruption alone). Client c sees
every one of its images through corruptions[c % len(corruptions)] at severity
severities[(c // len(corruptions)) % len(severities)]; the 15 corruptions and their strengths
are CIFAR-10-C's own (pftlab.data.corruptions), default severity 5 as in the study's CIFAR10-C.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.corruptions import CORRUPTIONS
from pftlab.data.corruptions import corrupt as apply_corruption
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool, shard_pool
from pftlab.data.params import PartitionParams
from pftlab.data.sources import cifar10
from pftlab.data.transforms import subsample

Corruption = Literal[CORRUPTIONS]  # type: ignore[valid-type]


class Params(PartitionParams):
    num_clients: int = Field(50, ge=2, le=10_000)
    partition: Literal["iid", "dirichlet", "pathological"] = "iid"
    samples_per_client: int = Field(300, ge=10, le=30_000)
    corruptions: list[Corruption] = Field(default=list(CORRUPTIONS), min_length=1, max_length=100)
    severities: list[Literal[1, 2, 3, 4, 5]] = Field(default=[5], min_length=1, max_length=5)


def corrupted_pools(train: Dataset, test: Dataset, p: Params, seed: int, name: str) -> list[ClientPool]:
    """Train + test pooled, subsampled, sharded, and each client's images corrupted (CIFAR-10-C and CIFAR-100-C)."""
    keep = subsample(len(train) + len(test), p.num_clients * p.samples_per_client, numpy_rng(seed, "subsample"))
    n_train, k = len(train), train.num_classes
    x = np.concatenate([train.x[keep[keep < n_train]], test.x[keep[keep >= n_train] - n_train]])
    y = np.concatenate([train.y[keep[keep < n_train]], test.y[keep[keep >= n_train] - n_train]])
    meta = {"classes": train.meta["classes"]} if "classes" in train.meta else {}
    out = []
    for c, pool in enumerate(shard_pool(Dataset(x, y, k, train.name), p, seed)):
        corruption = p.corruptions[c % len(p.corruptions)]
        severity = p.severities[(c // len(p.corruptions)) % len(p.severities)]
        d = pool.data
        shifted = apply_corruption(d.x, corruption, severity, numpy_rng(seed, "corrupt", c))
        domain = f"{corruption}-{severity}"
        out.append(ClientPool(Dataset(shifted, d.y, k, name, meta), domain, keep[pool.source_index]))
    return out


def pools(p: Params, seed: int) -> list[ClientPool]:
    return corrupted_pools(cifar10("train"), cifar10("test"), p, seed, "cifar10c")


BENCHMARK = Benchmark(
    "cifar10c",
    "covariate (a corruption per client)",
    "CIFAR-10 with one of the 15 CIFAR-10-C corruptions per client (severity 5 by default)",
    Params,
    pools,
    quick={"num_clients": 6, "samples_per_client": 120},
    files=("cifar10_jpeg.tar.gz",),
    size=lambda p: f"{p.num_clients} clients, {p.num_clients * p.samples_per_client:,} samples",
)
