"""LP: linear probing, only the head trained, the backbone frozen (its features cached)."""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.1, gt=0, le=100)


METHOD = Method(
    "lp",
    "linear probing: train only the head on frozen global features",
    Params,
    lambda p, budget: single(Phase("head", budget.epochs, p.lr)),
)
