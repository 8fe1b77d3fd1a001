"""Proximal FT: FT plus FedProx's term mu/2 ||theta - theta_global||^2, which holds the weights near the start."""

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    mu: float = Field(0.1, ge=0, le=1e6, description="strength of the pull toward the global weights")


METHOD = Method(
    "proximal-ft",
    "FT with a proximal term mu/2 ||theta - theta_global||^2",
    Params,
    lambda p, budget: single(Phase("all", budget.epochs, p.lr, proximal_mu=p.mu)),
)
