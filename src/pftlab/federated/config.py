"""The [federated] table: the global stage's algorithm, rounds and the clients' local optimizer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pftlab.training.config import OptimizerConfig

# The defaults of the robust global stage, from honest runs of every benchmark (all algorithms and
# baselines on heart and digits-quick, fedavg at default size, five algorithms at quick size): an
# update's norm reached at most 17.7 times the round's scale (the median, floored at 1% of the
# weights' norm; FedRep; 8 for the other algorithms in stable training), and no parameter of a
# trained model exceeded 1.6 in magnitude, while diverging runs passed 1e4 a round before overflowing.
MAX_UPDATE_NORM = 100.0
MAX_WEIGHT = 1e4


class FederatedConfig(OptimizerConfig):
    """The global stage; the optimizer keys are the clients' local optimizer."""

    algorithm: str = Field("fedavg", description="a registered global-stage algorithm (pftlab.federated.ALGORITHMS)")
    rounds: int = Field(30, ge=0, le=100_000)
    clients_per_round: int = Field(0, ge=0, le=100_000, description="0 = every client every round")
    local_epochs: int = Field(1, ge=1, le=10_000)
    lr: float = Field(0.05, gt=0, le=100)
    dropout: float = Field(0.0, ge=0, le=1, description="probability that a sampled client drops out of a round")
    prox_mu: float = Field(0.01, ge=0, le=1e6, description="fedprox: mu/2 ||w - w_global||^2 in the local loss")
    server_lr: float = Field(
        0.0, ge=0, le=100, description="scaffold, fedavgm, fedadam: server step size; 0 = 1 (fedadam: 0.01)"
    )
    server_momentum: float = Field(0.9, ge=0, lt=1, description="fedavgm: momentum of the server update")
    beta1: float = Field(0.9, ge=0, lt=1, description="fedadam: first-moment decay")
    beta2: float = Field(0.99, ge=0, lt=1, description="fedadam: second-moment decay")
    tau: float = Field(1e-3, gt=0, le=10, description="fedadam: adaptivity (added to the root of the second moment)")
    max_update_norm: float = Field(
        MAX_UPDATE_NORM,
        ge=0,
        le=1e12,
        description=(
            "bound on a client update's L2 norm (its change of the shared floating-point weights) as a multiple"
            " of the round's median over its finite updates, that median taken as at least 1% of the global"
            " weights' norm; judged only in a round with >= 3 finite updates; 0 disables, else >= 1"
        ),
    )
    outlier_updates: Literal["reject", "clip"] = Field(
        "reject",
        description="an update over max_update_norm: 'reject' leaves it out of its round, 'clip' scales it to it",
    )
    max_weight: float = Field(
        MAX_WEIGHT,
        ge=0,
        le=1e30,
        description=(
            "the global stage stops with an error when a parameter of the aggregated model exceeds this in"
            " magnitude (any non-finite weight always stops it); 0 disables the bound"
        ),
    )
    aggregate: Literal["mean", "median", "trimmed-mean"] = Field(
        "mean",
        description=(
            "how client weights are combined: the sample-weighted mean, or the unweighted coordinate-wise median"
            " or trimmed mean (robust to a few Byzantine clients; unweighted, since a client's sample count is"
            " its own claim)"
        ),
    )
    trim: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description=(
            "trimmed-mean: fraction of the round's clients dropped from each end per coordinate (rounded up,"
            " so > 0 always drops at least one; at least one value, two for an even count, is kept)"
        ),
    )

    @model_validator(mode="after")
    def _scaffold_sgd(self) -> FederatedConfig:
        if self.algorithm == "scaffold" and self.optimizer != "sgd":
            raise ValueError("config: federated.optimizer: scaffold's control variates need 'sgd' local steps")
        return self

    @model_validator(mode="after")
    def _update_bound(self) -> FederatedConfig:
        if 0 < self.max_update_norm < 1:
            raise ValueError(
                f"config: federated.max_update_norm = {self.max_update_norm:g}: give 0 (off) or a multiple >= 1 of"
                " the round's median update norm (below 1 the median client itself would be out of scale)"
            )
        return self
