"""heart: UCI Heart Disease, one client per hospital (Cleveland 303, Hungary 294, Switzerland 123, VA 200 rows).

Tabular and naturally heterogeneous: different patient populations and very different
missingness (see pftlab.data.sources.heart_csv for how missing values are filled and flagged).
The label is disease present (num > 0). Features are standardised with the mean and std of all
920 rows pooled (a statistic a federation can compute with one secure-aggregation round), so no
client's scale leaks into another's split.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool
from pftlab.data.sources import heart
from pftlab.data.sources.heart_csv import HOSPITALS


class Params(Strict):
    standardize: bool = Field(True, description="z-score features with the pooled mean and std")


def pools(p: Params, seed: int) -> list[ClientPool]:
    hospitals = heart()
    x_all = np.concatenate([hospitals[h].x for h in HOSPITALS])
    mean, std = x_all.mean(0), x_all.std(0)
    std[std == 0] = 1.0
    out = []
    for h in HOSPITALS:
        d = hospitals[h]
        x = ((d.x - mean) / std).astype(np.float32) if p.standardize else d.x
        out.append(ClientPool(Dataset(x, d.y, 2, f"heart-{h}"), h, np.arange(len(d))))
    return out


BENCHMARK = Benchmark(
    "heart",
    "natural (hospitals)",
    "UCI Heart Disease from 4 hospitals, 13 features + missing indicators, disease yes / no",
    Params,
    pools,
    files=tuple(f"heart/processed.{h}.data" for h in ("cleveland", "hungarian", "switzerland", "va")),
    size=lambda p: "4 clients, 920 rows",
)
