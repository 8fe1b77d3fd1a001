"""From per-client pools to a FederatedData: label-stratified train / val / test splits and a content hash.

A benchmark decides which samples each client holds and how they are shifted (a ClientPool
per client); this module does what every benchmark shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pftlab.core.errors import UserError
from pftlab.core.io import config_hash, sha256_hex
from pftlab.core.seeding import numpy_rng
from pftlab.data import partition as part
from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.data.params import PartitionParams


@dataclass(frozen=True)
class ClientPool:
    """All of one client's samples (already shifted), its domain, and where they came from."""

    data: Dataset
    domain: str = ""
    source_index: np.ndarray | None = None


def partition_pool(labels: np.ndarray, p: PartitionParams, seed: int) -> list[np.ndarray]:
    """The configured label partition of a pool of samples."""
    rng = numpy_rng(seed, "partition")
    if p.partition == "iid":
        return part.iid(labels, p.num_clients, rng, p.min_client_size)
    if p.partition == "dirichlet":
        return part.dirichlet(labels, p.num_clients, p.alpha, rng, p.min_client_size)
    return part.pathological(labels, p.num_clients, p.classes_per_client, rng, p.min_client_size)


def swap_labels(pool: ClientPool, num_classes: int, pairs: int, rng: np.random.Generator) -> ClientPool:
    """Concept shift: the client swaps the labels of `pairs` random class pairs (P(x) unchanged)."""
    if 2 * pairs > num_classes:
        raise UserError(f"data.swap_pairs={pairs} needs {2 * pairs} classes; this benchmark has {num_classes}")
    perm = np.arange(num_classes)
    chosen = rng.choice(num_classes, size=2 * pairs, replace=False)
    perm[chosen[0::2]], perm[chosen[1::2]] = chosen[1::2], chosen[0::2]
    d = pool.data
    meta = {**d.meta, "label_permutation": perm.tolist()}
    return ClientPool(Dataset(d.x, perm[d.y], d.num_classes, d.name, meta), pool.domain, pool.source_index)


def _at_least(x: float) -> float:
    """`x` rounded up to two significant digits (a fraction quoted in a message that must suffice)."""
    factor = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / factor - 1e-9) * factor:.2g}")


def check_splits(
    sizes: Sequence[tuple[int, int, int]],
    domains: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    more: str = "",
) -> None:
    """Refuse (one line) a federation where a client has no train or no test sample: nothing could train or score it.

    `sizes` holds each client's (train, val, test) sizes; `more` says which config keys give a client
    more samples, if any. The message names the first such client, its sizes, how many clients fail,
    and the settings that would give every client both.
    """
    bad = [cid for cid, (train, _, test) in enumerate(sizes) if not (train and test)]
    if not bad:
        return
    cid = bad[0]
    train, val, test = sizes[cid]
    n = train + val + test
    who = f"client {cid}" + (f" ({domains[cid]!r})" if domains[cid] else "")
    others = f" (and {len(bad) - 1} other client{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    grow = f" or give clients more samples ({more})" if more else ""
    if n < 2:
        fix = f"give it at least 2 samples{f' ({more})' if more else ''}"
    elif not test:
        need = _at_least(1.0 / min(sum(s) for s in sizes if sum(s) >= 2))  # round(n * f) >= 1 for every client
        fix = f"raise data.test_fraction (now {test_fraction:g}) to at least {need:g}{grow}"
    else:
        fix = f"lower data.val_fraction + data.test_fraction (now {val_fraction + test_fraction:g}){grow}"
    raise UserError(
        f"{who}{others} has {n} sample{'s' if n != 1 else ''}, split into {train} train / {val} val / {test} test; "
        f"every client needs at least one train and one test sample: {fix}"
    )


def federate(
    name: str,
    description: str,
    pools: list[ClientPool],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    swap_pairs: int = 0,
    more: str = "",
) -> FederatedData:
    """Split every client's pool into train / val / test (stratified by label) and hash the result.

    Every client is checked before anything is trained (`check_splits`); `more` names the config keys
    that give clients more samples, for that message.
    """
    if len(pools) < 2:
        raise UserError(f"a federation needs at least 2 clients, got {len(pools)}")
    num_classes = pools[0].data.num_classes
    every = [
        part.split_indices(
            np.arange(len(pool.data)), pool.data.y, val_fraction, test_fraction, numpy_rng(seed, "split", cid)
        )
        for cid, pool in enumerate(pools)
    ]
    sizes = [(len(train), len(val), len(test)) for train, val, test in every]
    check_splits(sizes, [pool.domain for pool in pools], val_fraction, test_fraction, more)
    clients, record = [], []
    for cid, (pool, splits) in enumerate(zip(pools, every, strict=True)):
        if swap_pairs:  # after the split, so a concept shift leaves every split's inputs as they were
            pool = swap_labels(pool, num_classes, swap_pairs, numpy_rng(seed, "swap", cid))
        d = pool.data
        train, val, test = splits
        clients.append(ClientData(cid, d.subset(train), d.subset(val), d.subset(test), domain=pool.domain))
        entry = {
            "domain": pool.domain,
            "sha256": sha256_hex(np.ascontiguousarray(d.x).tobytes() + d.y.tobytes()),
            **{k: s.tolist() for k, s in zip(("train", "val", "test"), splits, strict=True)},
        }
        if pool.source_index is not None:
            entry["source_index"] = pool.source_index.tolist()
        if "label_permutation" in d.meta:
            entry["label_permutation"] = d.meta["label_permutation"]
        record.append(entry)
    shape = tuple(pools[0].data.input_shape)
    content = {"name": name, "clients": record, "seed": seed}
    return FederatedData(name, clients, num_classes, shape, config_hash(content), record, description)


def shard_pool(
    pool: Dataset, p: PartitionParams, seed: int, domain_of: Sequence[str] | None = None
) -> list[ClientPool]:
    """Partition one pool over clients by label (iid / dirichlet / pathological)."""
    parts = partition_pool(pool.y, p, seed)
    return [ClientPool(pool.subset(idx), domain_of[c] if domain_of else "", idx) for c, idx in enumerate(parts)]
