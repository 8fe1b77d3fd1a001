"""A phase of training: which parameters train, for how many epochs, how, with which extra loss terms.

The one training loop (`pftlab.training.loop.train`) runs a list of phases; the global stage's
local updates and every personalization recipe are phases of that loop, so they see the same
data order and epoch budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Phase:
    train: str  # "all", "head", or the name of a submodule whose parameters train (surgical)
    epochs: int
    lr: float
    proximal_mu: float = 0.0  # + mu/2 ||theta - theta_start||^2 over the trained parameters
    sparsity: float = 0.0  # fraction of trained weights frozen: the lowest SNIP scores |dL/dw * w|
    flood: float | None = None  # loss flooding level b: minimise |loss - b| + b
    solver: Literal["sgd", "lbfgs"] = "sgd"  # lbfgs: full batch, run to convergence (max_iter steps)
    max_iter: int = 200
    l2: float = 0.0  # lbfgs: l2 penalty on the trained weights
    freeze_norm: bool = False  # BatchNorm layers stay in eval mode: running statistics frozen
