"""An example pftlab plugin: a method, a model and a benchmark, registered through entry points.

Everything here uses pftlab's public API only (`import pftlab`); pftlab finds the three objects
below through the entry points declared in this package's pyproject.toml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from torch import nn

from pftlab import Benchmark, ClientPool, Dataset, Method, ModelConfig, ModelSpec, Phase, Strict, single
from pftlab.core.seeding import numpy_rng

__all__ = ["BENCHMARK", "METHOD", "MODEL"]


# --- a method: FT with the head frozen ---------------------------------------------------------


class FrozenHeadParams(Strict):
    lr: float = Field(0.01, gt=0, le=100, description="learning rate of the body")


METHOD = Method(
    "ft-frozen-head",
    "FT with the head frozen: the body adapts to the client, the global head stays",
    FrozenHeadParams,
    lambda p, budget: single(Phase("body", budget.epochs, p.lr)),
)


# --- a model: an MLP with tanh activations ------------------------------------------------------


class TanhMLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int) -> None:
        super().__init__()
        size = int(np.prod(input_shape))
        self.backbone = nn.Sequential(
            nn.Flatten(), nn.Linear(size, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.backbone(x))


def _build(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return TanhMLP(input_shape, num_classes, cfg.hidden)


MODEL = ModelSpec("tanh-mlp", "MLP with tanh activations (model.hidden units, two layers) and a linear head", _build)


# --- a benchmark: Gaussian blobs with a per-client input shift ------------------------------------


class BlobsParams(Strict):
    num_clients: int = Field(8, ge=2, le=1000)
    samples_per_client: int = Field(120, ge=20, le=100_000)
    dim: int = Field(10, ge=2, le=1000)
    classes: int = Field(4, ge=2, le=100)
    shift: float = Field(3.0, ge=0, le=100, description="size of each client's input offset (covariate shift)")


def _pools(p: BlobsParams, seed: int) -> list[ClientPool]:
    centers = numpy_rng(seed, "blobs-centers").normal(scale=1.0, size=(p.classes, p.dim))
    out = []
    for c in range(p.num_clients):
        rng = numpy_rng(seed, "blobs", c)
        offset = rng.normal(size=p.dim)
        offset *= p.shift / np.linalg.norm(offset)
        y = rng.integers(0, p.classes, size=p.samples_per_client)
        x = (centers[y] + 1.5 * rng.normal(size=(p.samples_per_client, p.dim)) + offset).astype(np.float32)
        out.append(ClientPool(Dataset(x, y.astype(np.int64), p.classes, f"blobs-{c}"), domain=f"offset{c}"))
    return out


BENCHMARK = Benchmark(
    "shifted-blobs",
    "covariate (per-client offset)",
    "Gaussian class blobs; each client's inputs shifted by its own random offset (from pftlab-example-plugin)",
    BlobsParams,
    _pools,
    quick={"num_clients": 4, "samples_per_client": 60},
    size=lambda p: f"{p.num_clients} clients x {p.samples_per_client} samples",
)
