"""With the offline data alone, every published study cell's federation is rebuilt exactly: the same
partition hash (a sha256 over every client's samples, splits and domain) as its summary.json records.

Whatever pftlab learns to read (official archives, new benchmarks, fetch, augmentation off by
default), the study's existing benchmarks must see the same clients, bit for bit.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import from_dict

RUNS = Path(__file__).parents[2] / "docs" / "study" / "runs"
DATA = Path(__file__).parents[2].parent / "shared" / "data"
CELLS = sorted(p.parent for p in RUNS.glob("*/seed0/summary.json"))
SLOW = {"cifar10-dirichlet", "cifar10c", "digits"}  # decoding CIFAR-10 / rendering SynthDigits: minutes (-m slow)
PARAMS = [pytest.param(c, id=c.parent.name, marks=[pytest.mark.slow] if c.parent.name in SLOW else []) for c in CELLS]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"offline datasets not found at {DATA}")
@pytest.mark.parametrize("cell", PARAMS)
def test_a_published_cell_gets_the_same_federation(cell: Path) -> None:
    config = tomllib.loads((cell / "config.toml").read_text())
    published = json.loads((cell / "summary.json").read_text())
    cfg = from_dict({"seed": config["seed"], "data": config["data"]})
    assert build_federation(cfg.data, cfg.seed).partition_hash == published["partition_hash"]


def test_every_benchmark_of_the_study_has_a_published_cell() -> None:
    assert [c.parent.name for c in CELLS] == sorted(
        [
            "cifar10-dirichlet",
            "cifar10c",
            "colored-mnist",
            "digits",
            "digits-quick",
            "fmnist-dirichlet",
            "heart",
            "mnist-writers",
        ]
    )
