"""Surgical FT (Lee et al. 2023): only one block trains; for input-level shift, the first block.

`block` names a submodule of the model: for the CNN backbone.block1, backbone.block2,
backbone.features or head.
"""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    block: str = Field("backbone.block1", min_length=1, max_length=200, description="the submodule that trains")


METHOD = Method(
    "surgical-ft",
    "FT of one block only (default: the first conv block)",
    Params,
    lambda p, budget: single(Phase(p.block, budget.epochs, p.lr)),
)
