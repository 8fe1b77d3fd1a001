"""Named benchmarks: a source, a partition and a shift, turned into per-client pools.

A benchmark is one file here defining `Params` (its keys of the [data] table, with defaults
for the default size), `QUICK` (the keys a `size = "quick"` run changes) and a function
(params, seed) -> list[ClientPool]; registering it is one line below. A benchmark from another
package is added with `register_benchmark` or the `pftlab.benchmarks` entry point group.
"""

from __future__ import annotations

from typing import Any

from pftlab.core.registry import Registry, caller_package
from pftlab.data.augment import augment_of, prepare
from pftlab.data.benchmarks import (
    celeba,
    chexpert,
    cifar10c,
    cifar100c,
    colored_mnist,
    digits,
    digits_quick,
    domainnet,
    heart,
    hf_dataset,
    label_shift,
    mnist_writers,
    office_home,
    pacs,
    user_data,
)
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.dataset import FederatedData
from pftlab.data.federate import federate

BENCHMARKS: Registry[Benchmark] = Registry("benchmark", "pftlab.benchmarks", Benchmark)
for _b in (
    digits_quick.BENCHMARK,
    cifar10c.BENCHMARK,
    cifar100c.BENCHMARK,
    digits.BENCHMARK,
    colored_mnist.BENCHMARK,
    celeba.BENCHMARK,
    chexpert.BENCHMARK,
    label_shift.CIFAR,
    label_shift.FMNIST,
    mnist_writers.BENCHMARK,
    heart.BENCHMARK,
    pacs.BENCHMARK,
    office_home.BENCHMARK,
    domainnet.BENCHMARK,
    user_data.FOLDER,
    user_data.TABLE,
    hf_dataset.BENCHMARK,
):
    BENCHMARKS.register(_b)


def register_benchmark(benchmark: Benchmark, *, origin: str | None = None, replace: bool = False) -> Benchmark:
    """Make a benchmark available as `data.benchmark` (from a plugin's code)."""
    return BENCHMARKS.register(benchmark, origin or caller_package(), replace=replace)


def build_federation(data_cfg: Any, seed: int) -> FederatedData:
    """The federation a [data] table describes."""
    bench = BENCHMARKS[data_cfg.benchmark]
    params = data_cfg.params()
    pools = bench.pools(params, seed)
    fed = federate(
        bench.name,
        bench.description,
        pools,
        data_cfg.val_fraction,
        data_cfg.test_fraction,
        seed,
        data_cfg.swap_pairs,
        _how_to_grow(params),
    )
    return prepare(fed, data_cfg.normalize, augment_of(data_cfg.augment, data_cfg.crop_padding))


def _how_to_grow(params: Any) -> str:
    """The config keys that give a client more samples, for the message refusing a client too small to split."""
    if hasattr(params, "path"):
        return "add samples to it under data.path"
    keys = [
        f"raise data.{k}"
        for k in ("samples_per_client", "min_client_size", "min_samples", "samples")
        if hasattr(params, k)
    ]
    if hasattr(params, "num_clients"):
        keys.append("lower data.num_clients")
    return " or ".join(keys)
