"""LP-FT as Kumar et al. ran it: the probe solved to convergence, then gentle fine-tuning.

LP is multinomial logistic regression on cached features, fitted by full-batch L-BFGS with an
l2 penalty; FT then trains everything with BatchNorm statistics frozen and a learning rate
below plain FT's. The LP epochs count against the budget like plain LP-FT's, so both leave FT
the same number of epochs.
"""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.lpft import check_lp_epochs
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lp_epochs: int = Field(5, ge=0, le=10_000, description="budget epochs charged to LP; the rest is FT")
    lp_max_iter: int = Field(200, ge=1, le=100_000, description="L-BFGS iterations at most")
    lp_l2: float = Field(1e-3, ge=0, le=1e3, description="l2 penalty of the logistic regression")
    ft_lr: float = Field(0.001, gt=0, le=100)


METHOD = Method(
    "lp-ft-kumar",
    "LP by L-BFGS logistic regression to convergence, then FT with BatchNorm frozen and a small lr",
    Params,
    lambda p, budget: single(
        Phase("head", p.lp_epochs, 1.0, solver="lbfgs", max_iter=p.lp_max_iter, l2=p.lp_l2),
        Phase("all", budget.epochs - p.lp_epochs, p.ft_lr, freeze_norm=True),
    ),
    check_lp_epochs,
)
