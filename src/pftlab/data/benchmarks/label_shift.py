"""Label shift on real images: a subset of Fashion-MNIST or CIFAR-10 split over clients by Dirichlet(alpha).

Train and test files are pooled, `samples` of them drawn (seeded), then partitioned; every
client's test split follows its own label mix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field

from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark, idx_files
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool, shard_pool
from pftlab.data.params import PartitionParams
from pftlab.data.sources import cifar10, fashion_mnist
from pftlab.data.transforms import subsample


class Params(PartitionParams):
    num_clients: int = Field(20, ge=2, le=100_000)
    alpha: float = Field(0.3, gt=0, le=1e6)
    samples: int = Field(12_000, ge=20, le=70_000, description="drawn from train + test pooled")


def _pooled(source: Callable[[str], Dataset], name: str, p: Params, seed: int) -> list[ClientPool]:
    train, test = source("train"), source("test")
    x = np.concatenate([train.x, test.x])
    y = np.concatenate([train.y, test.y])
    keep = subsample(len(y), p.samples, numpy_rng(seed, "subsample"))
    pools = shard_pool(Dataset(x[keep], y[keep], train.num_classes, name), p, seed)
    return [ClientPool(c.data, c.domain, keep[c.source_index]) for c in pools]


def fmnist_pools(p: Params, seed: int) -> list[ClientPool]:
    return _pooled(fashion_mnist, "fashion-mnist", p, seed)


def cifar_pools(p: Params, seed: int) -> list[ClientPool]:
    return _pooled(cifar10, "cifar10", p, seed)


QUICK = {"num_clients": 5, "samples": 1_500}
FMNIST = Benchmark(
    "fmnist-dirichlet",
    "label (Dirichlet)",
    "Fashion-MNIST (28x28 grey), train + test pooled, Dirichlet label skew",
    Params,
    fmnist_pools,
    quick=QUICK,
    files=idx_files("fashion-mnist"),
    size=lambda p: f"{p.num_clients} clients, {p.samples:,} samples",
)
CIFAR = Benchmark(
    "cifar10-dirichlet",
    "label (Dirichlet)",
    "CIFAR-10 (32x32 RGB, JPEG copy), train + test pooled, Dirichlet label skew",
    Params,
    cifar_pools,
    quick=QUICK,
    files=("cifar10_jpeg.tar.gz",),
    size=lambda p: f"{p.num_clients} clients, {p.samples:,} samples",
)
