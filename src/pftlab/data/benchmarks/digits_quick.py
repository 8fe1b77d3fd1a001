"""digits-quick: scikit-learn's bundled 8x8 digits (embedded, no download), label skew plus a domain per client."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool, shard_pool
from pftlab.data.params import PartitionParams
from pftlab.data.shifts import apply_domain
from pftlab.data.sources import sklearn_digits

DomainName = Literal["clean", "rotate", "invert", "noise", "blur", "low-contrast"]


class Params(PartitionParams):
    domains: list[DomainName] = Field(
        default=["clean", "rotate", "invert", "noise", "blur"],
        max_length=1000,
        description="feature shift: client c sees its digits through domains[c % len(domains)]; [] for none",
    )


def pools(p: Params, seed: int) -> list[ClientPool]:
    domain_of = [p.domains[c % len(p.domains)] for c in range(p.num_clients)] if p.domains else None
    out = []
    for c, pool in enumerate(shard_pool(sklearn_digits(), p, seed, domain_of)):
        d = pool.data
        if pool.domain:
            d = Dataset(apply_domain(pool.domain, d.x, numpy_rng(seed, "domain", c)), d.y, d.num_classes, d.name)
        out.append(ClientPool(d, pool.domain, pool.source_index))
    return out


BENCHMARK = Benchmark(
    "digits-quick",
    "label + feature (domains)",
    "scikit-learn's bundled 8x8 digits; embedded, needs no download",
    Params,
    pools,
    quick={"num_clients": 4},
    size=lambda p: f"{p.num_clients} clients, 1,797 samples",
)
