"""The [federated] table: the global stage's algorithm, rounds and the clients' local optimizer."""

from __future__ import annotations

from pydantic import Field, model_validator

from pftlab.training.config import OptimizerConfig


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

    @model_validator(mode="after")
    def _scaffold_sgd(self) -> FederatedConfig:
        if self.algorithm == "scaffold" and self.optimizer != "sgd":
            raise ValueError("config: federated.optimizer: scaffold's control variates need 'sgd' local steps")
        return self
