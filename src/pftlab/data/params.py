"""Keys shared by the benchmarks that partition a pool of samples by label."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.schema import Strict


class PartitionParams(Strict):
    """Label-skew keys shared by every benchmark that partitions a pool of samples."""

    num_clients: int = Field(10, ge=2, le=100_000)
    partition: Literal["iid", "dirichlet", "pathological"] = "dirichlet"
    alpha: float = Field(0.5, gt=0, le=1e6, description="Dirichlet concentration; large is close to IID")
    classes_per_client: int = Field(2, ge=1, le=100_000, description="for partition = 'pathological'")
    min_client_size: int = Field(20, ge=3, le=10_000_000, description="before the train / val / test split")
