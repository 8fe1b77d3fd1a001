"""FT: every parameter trained on the client's data for the whole budget."""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)


METHOD = Method(
    "ft",
    "fine-tune all parameters on local data",
    Params,
    lambda p, budget: single(Phase("all", budget.epochs, p.lr)),
)
