"""colored-mnist: concept shift through a spurious colour, the stand-in for CelebA / CheXpert.

As in Arjovsky et al. (2019): the label is binary (digit >= 5), flipped for `label_noise` of the
samples, so the digit's shape predicts it only that well; the digit is drawn in red (label 0's
colour) or green (label 1's). Client c matches colour to label for exactly
round(correlations[c % len] * n) of its n samples, so the colour-label correlation is a client
property: 0.9 makes colour a strong shortcut, 0.5 uninformative, 0.1 a reversed one. Every
client draws its digits from the same pool (P(x) family shared); only the colour rule differs.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark, idx_files
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool
from pftlab.data.sources import mnist
from pftlab.data.transforms import subsample


class Params(Strict):
    num_clients: int = Field(10, ge=2, le=1000)
    samples_per_client: int = Field(1_000, ge=20, le=35_000)
    correlations: list[float] = Field(
        default=[0.9, 0.8, 0.9, 0.8, 0.1],
        min_length=1,
        max_length=1000,
        description="P(colour = label's colour), cycled over clients; below 0.5 is a reversed correlation",
    )
    label_noise: float = Field(0.25, ge=0, lt=0.5)

    @field_validator("correlations")
    @classmethod
    def _in_unit_interval(cls, values: list[float]) -> list[float]:
        if any(not 0 <= c <= 1 for c in values):
            raise ValueError("each correlation must lie in [0, 1]")
        return values


def exact_share(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask with exactly round(share * n) True entries at random places."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(share * n)]] = True
    return mask


def colour(x: np.ndarray, colour_of: np.ndarray) -> np.ndarray:
    """Grey (N, 1, H, W) to (N, 3, H, W): the digit in the red (0) or green (1) channel."""
    out = np.zeros((len(x), 3, *x.shape[2:]), dtype=np.float32)
    out[np.arange(len(x)), colour_of] = x[:, 0]
    return out


def pools(p: Params, seed: int) -> list[ClientPool]:
    train, test = mnist("train"), mnist("test")
    x = np.concatenate([train.x, test.x])
    digits = np.concatenate([train.y, test.y])
    order = subsample(len(digits), p.num_clients * p.samples_per_client, numpy_rng(seed, "subsample"))
    order = numpy_rng(seed, "deal").permutation(order)
    out = []
    for c in range(p.num_clients):
        idx = np.sort(order[c * p.samples_per_client : (c + 1) * p.samples_per_client])
        rng = numpy_rng(seed, "colour", c)
        y = (digits[idx] >= 5).astype(np.int64)
        y = np.where(exact_share(len(y), p.label_noise, rng), 1 - y, y)
        rho = p.correlations[c % len(p.correlations)]
        colour_of = np.where(exact_share(len(y), rho, rng), y, 1 - y)
        data = Dataset(colour(x[idx], colour_of), y, 2, "colored-mnist", {"colour": colour_of, "correlation": rho})
        out.append(ClientPool(data, f"rho={rho:g}", idx))
    return out


BENCHMARK = Benchmark(
    "colored-mnist",
    "concept (spurious colour)",
    "MNIST digits, binary label (digit >= 5) with 25% label noise, coloured red / green with a per-client correlation",
    Params,
    pools,
    quick={"num_clients": 4, "samples_per_client": 200, "correlations": [0.9, 0.8, 0.9, 0.1]},
    files=idx_files("mnist"),
    size=lambda p: f"{p.num_clients} clients, {p.num_clients * p.samples_per_client:,} samples",
)
