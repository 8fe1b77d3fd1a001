"""digits: domain shift, the Digit-5 benchmark with what is available offline, all at 32x32 RGB.

Domains: MNIST (grey, resized 28 -> 32), MNIST-M (the 21,001-image subset), USPS (16 -> 32) and
SynthDigits (rendered from fonts by pftlab.data.sources.synth_digits, as the original was made);
SVHN is not available offline and is left out. Each domain gives `clients_per_domain` clients of
`samples_per_client` images drawn from its train and test files pooled; within a domain the
labels are split IID, or by Dirichlet(alpha) with partition = "dirichlet".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark, idx_files
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool, partition_pool
from pftlab.data.params import PartitionParams
from pftlab.data.sources import mnist, mnist_m, usps
from pftlab.data.sources.synth_digits import synth_digits
from pftlab.data.transforms import resize, subsample, to_rgb

Domain = Literal["mnist", "mnist-m", "usps", "synth"]
SYNTH_POOL = 12_000  # synthetic images rendered (once, cached) to draw from


class Params(Strict):
    domains: list[Domain] = Field(default=["mnist", "mnist-m", "usps", "synth"], min_length=1, max_length=4)
    clients_per_domain: int = Field(2, ge=1, le=1000)
    samples_per_client: int = Field(1_000, ge=10, le=9_000)
    partition: Literal["iid", "dirichlet"] = "iid"
    alpha: float = Field(0.5, gt=0, le=1e6, description="label skew within a domain, for partition = 'dirichlet'")


def domain_pool(name: str) -> Dataset:
    """All images of one domain, 32x32 RGB in [0, 1]."""
    if name == "usps":
        d = usps()
        return Dataset(to_rgb(resize(d.x, 32)), d.y, 10, name)
    if name == "synth":
        return synth_digits(SYNTH_POOL, seed=0)
    source = mnist if name == "mnist" else mnist_m
    train, test = source("train"), source("test")
    x = np.concatenate([train.x, test.x])
    return Dataset(to_rgb(resize(x, 32)), np.concatenate([train.y, test.y]), 10, name)


def pools(p: Params, seed: int) -> list[ClientPool]:
    out = []
    for name in p.domains:
        d = domain_pool(name)
        keep = subsample(len(d), p.clients_per_domain * p.samples_per_client, numpy_rng(seed, "subsample", name))
        split = (
            PartitionParams(num_clients=p.clients_per_domain, partition=p.partition, alpha=p.alpha, min_client_size=3)
            if p.clients_per_domain > 1
            else None
        )
        parts = partition_pool(d.y[keep], split, seed) if split else [np.arange(len(keep))]
        for k, idx in enumerate(parts):
            domain = name if p.clients_per_domain == 1 else f"{name}/{k}"
            out.append(ClientPool(d.subset(keep[idx]), domain, keep[idx]))
    return out


BENCHMARK = Benchmark(
    "digits",
    "covariate (a domain per client)",
    "Digit-5 without SVHN: MNIST, MNIST-M, USPS and rendered SynthDigits at 32x32 RGB",
    Params,
    pools,
    quick={"clients_per_domain": 1, "samples_per_client": 200},
    files=(*idx_files("mnist"), "mnist_m_subset.tar.gz", "usps/usps.mat"),
    size=lambda p: (
        f"{len(p.domains) * p.clients_per_domain} clients, "
        f"{len(p.domains) * p.clients_per_domain * p.samples_per_client:,} samples"
    ),
)
