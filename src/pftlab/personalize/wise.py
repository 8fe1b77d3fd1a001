"""WiSE-FT (Wortsman et al. 2022): FT, then interpolate the weights: (1 - alpha) * global + alpha * fine-tuned."""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, Plan, Run, interpolate
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    alpha: float = Field(0.5, ge=0, le=1, description="0 = the global model, 1 = FT")


METHOD = Method(
    "wise-ft",
    "FT, then weight interpolation with the global model by alpha",
    Params,
    lambda p, budget: Plan((Run((Phase("all", budget.epochs, p.lr),)),), interpolate(p.alpha)),
)
