"""cifar100c: CIFAR-100 with one CIFAR-10-C corruption per client (the study's CIFAR100-C).

As cifar10c, on the official CIFAR-100 binary archive (`pftlab data fetch cifar100`): train and
test pooled, `num_clients * samples_per_client` images drawn and split over clients (IID labels
by default), client c's images seen through corruptions[c % len] at a severity; CIFAR-100-C
uses CIFAR-10-C's corruption definitions and strengths. `labels = "coarse"` uses the 20
superclasses instead of the 100 classes (more samples per class on small clients).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.data.benchmarks import cifar10c
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.federate import ClientPool
from pftlab.data.sources import cifar100
from pftlab.data.sources.cifar_bin import CIFAR100_ARCHIVE


class Params(cifar10c.Params):
    samples_per_client: int = Field(500, ge=10, le=60_000)
    labels: Literal["fine", "coarse"] = "fine"


def pools(p: Params, seed: int) -> list[ClientPool]:
    coarse = p.labels == "coarse"
    return cifar10c.corrupted_pools(cifar100("train", coarse), cifar100("test", coarse), p, seed, "cifar100c")


BENCHMARK = Benchmark(
    "cifar100c",
    "covariate (a corruption per client)",
    "CIFAR-100 with one of the 15 CIFAR-10-C corruptions per client (severity 5 by default)",
    Params,
    pools,
    quick={"num_clients": 6, "samples_per_client": 200, "labels": "coarse"},
    files=(CIFAR100_ARCHIVE,),
    size=lambda p: f"{p.num_clients} clients, {p.num_clients * p.samples_per_client:,} samples",
)
