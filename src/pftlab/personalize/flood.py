"""FT with loss flooding (Ishida et al. 2020): minimise |L - b| + b, so the training loss hovers at b.

The analysis uses it as a control: methods compared at the same local loss.
"""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    level: float = Field(0.5, ge=0, le=100, description="the flood level b")


METHOD = Method(
    "flood-ft",
    "FT with loss flooding at level b (gradient ascent below b)",
    Params,
    lambda p, budget: single(Phase("all", budget.epochs, p.lr, flood=p.level)),
)
