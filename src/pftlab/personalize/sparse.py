"""Sparse FT: only the weights most relevant to the local loss are updated.

SNIP scores |dL/dw * w| are summed over the client's training data at the global weights; a
global top-k over all parameters keeps the (1 - sparsity) share; the gradients (and any
momentum or weight decay) of the rest are masked, their values kept, not zeroed.
"""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    sparsity: float = Field(0.9, ge=0, lt=1, description="fraction of weights frozen")


METHOD = Method(
    "sparse-ft",
    "FT of the top (1 - sparsity) weights by SNIP score; the rest frozen",
    Params,
    lambda p, budget: single(Phase("all", budget.epochs, p.lr, sparsity=p.sparsity)),
)
