"""Named benchmarks: a source, a partition and a shift, turned into a FederatedData.

A benchmark is a function (DataConfig, seed) -> FederatedData registered in BENCHMARKS; adding
one is adding an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pftlab.data import partition as part
from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.data.shifts import apply_domain
from pftlab.data.sources import sklearn_digits
from pftlab.errors import UserError
from pftlab.experiment.config import DataConfig
from pftlab.io import config_hash, sha256_hex
from pftlab.seeding import numpy_rng


@dataclass(frozen=True)
class Benchmark:
    build: Callable[[DataConfig, int], FederatedData]
    shift: str
    description: str


def partition_pool(labels: np.ndarray, cfg: DataConfig, seed: int) -> list[np.ndarray]:
    """The configured partitioner over a pool of labels."""
    rng = numpy_rng(seed, "partition")
    if cfg.partition == "iid":
        return part.iid(labels, cfg.num_clients, rng, cfg.min_client_size)
    if cfg.partition == "dirichlet":
        return part.dirichlet(labels, cfg.num_clients, cfg.alpha, rng, cfg.min_client_size)
    return part.pathological(labels, cfg.num_clients, cfg.classes_per_client, rng, cfg.min_client_size)


def federate(pool: Dataset, cfg: DataConfig, seed: int, name: str, description: str) -> FederatedData:
    """Partition a pool, split each client into train / val / test, apply each client's domain."""
    owned = partition_pool(pool.y, cfg, seed)
    clients, index_record = [], []
    for cid, indices in enumerate(owned):
        rng = numpy_rng(seed, "split", cid)
        splits = part.split_indices(indices, pool.y, cfg.val_fraction, cfg.test_fraction, rng)
        domain = cfg.domains[cid % len(cfg.domains)] if cfg.domains else ""
        shift_rng = numpy_rng(seed, "domain", cid)
        datasets = []
        for split in splits:
            ds = pool.subset(split)
            if domain:
                ds = Dataset(apply_domain(domain, ds.x, shift_rng), ds.y, ds.num_classes, ds.name, ds.meta)
            datasets.append(ds)
        clients.append(ClientData(cid, *datasets, domain=domain))
        index_record.append(
            {"train": splits[0].tolist(), "val": splits[1].tolist(), "test": splits[2].tolist(), "domain": domain}
        )
    content = {
        "pool": sha256_hex(pool.x.tobytes() + pool.y.tobytes()),
        "clients": index_record,
        "seed": seed,
    }
    return FederatedData(
        name, clients, pool.num_classes, pool.input_shape, config_hash(content), index_record, description
    )


def digits_quick(cfg: DataConfig, seed: int) -> FederatedData:
    return federate(
        sklearn_digits(),
        cfg,
        seed,
        "digits-quick",
        "scikit-learn digits (8x8): label skew by the partitioner, feature shift by a domain per client",
    )


BENCHMARKS: dict[str, Benchmark] = {
    "digits-quick": Benchmark(
        digits_quick,
        shift="label (partitioner) + feature (domain per client)",
        description="scikit-learn's bundled digits; embedded, needs no download",
    ),
}


def build_federation(cfg: DataConfig, seed: int) -> FederatedData:
    if cfg.benchmark not in BENCHMARKS:
        raise UserError(f"unknown benchmark {cfg.benchmark!r}; allowed: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[cfg.benchmark].build(cfg, seed)
