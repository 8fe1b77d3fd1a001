"""How a client's model is chosen among its candidates (grid points): on validation data only.

Two rules, both computed from the same candidates in one run:
- `local`: the candidate with the best accuracy on the client's own validation split. It is
  what a client alone can do, and it favours local accuracy: the study measures local and
  global accuracy together.
- `cross-site`: federated cross-site validation. Each candidate is also scored on the other
  clients' validation splits (a fixed pool of at most `pool_images` of them, spread evenly over
  the clients, so the cost grows linearly with clients), and the choice maximises
  (1 - weight) * own validation accuracy + weight * the mean over the other clients of its
  accuracy on their validation images (each other client counts once, as in global_balanced).

Test data plays no part in either rule. With weight 0 the cross-site rule is the local rule.
A run reports the first rule's choice under the method's own name and each further rule's under
`<method>@<rule>` (pftlab.evaluate.choice.named).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from pftlab.core.compute import autocast, on_device
from pftlab.core.schema import Strict
from pftlab.data.dataset import ClientData, Dataset

Rule = Literal["local", "cross-site"]
RULES: tuple[Rule, ...] = ("local", "cross-site")
SEPARATOR = "@"


class ChoiceConfig(Strict):
    """The [choice] table: which rules choose each client's grid point, and what cross-site weighs."""

    rules: list[Rule] = Field(
        default=["local"],
        min_length=1,
        max_length=len(RULES),
        description="local: own validation split; cross-site: also the other clients' (the first rule's "
        "choice is reported under the method's name, others as <method>@<rule>)",
    )
    weight: float = Field(0.5, ge=0, le=1, description="cross-site: the other clients' share of the objective")
    pool_images: int = Field(
        2048, ge=1, le=10_000_000, description="cross-site: validation images of all clients scored, spread evenly"
    )

    @field_validator("rules")
    @classmethod
    def _no_repeats(cls, rules: list[Rule]) -> list[Rule]:
        if len(set(rules)) != len(rules):
            raise ValueError("rules must not repeat")
        return rules


def named(method: str, rule: str, rules: list[Rule]) -> str:
    """The name a rule's choice is reported under: the first rule's is the method's own."""
    return method if rule == rules[0] else f"{method}{SEPARATOR}{rule}"


@dataclass(frozen=True)
class ValidationPool:
    """Up to `pool_images` validation images of all clients, the same number from each (fewer where a
    client has fewer), with the client each came from."""

    x: torch.Tensor
    y: torch.Tensor
    owner: torch.Tensor
    sizes: np.ndarray  # images per client in the pool (0: none)

    @classmethod
    def of(cls, clients: list[ClientData], pool_images: int, seed: int) -> ValidationPool:
        return cls.gather([c.val for c in clients], cls.picks([len(c.val) for c in clients], pool_images, seed))

    @staticmethod
    def picks(val_sizes: list[int], pool_images: int, seed: int) -> list[np.ndarray]:
        """Which validation images of each client (by index) the pool holds, fixed by the seed: all a
        server needs to know is the clients' split sizes (Flower's cross-site round)."""
        per_client = max(1, pool_images // max(len(val_sizes), 1))
        rng = np.random.default_rng([seed, 0x5E1EC7])
        return [np.sort(rng.permutation(n)[:per_client]) for n in val_sizes]

    @classmethod
    def gather(cls, vals: list[Dataset], picks: list[np.ndarray]) -> ValidationPool:
        """The pool of `picks[i]` images of each client's validation split `vals[i]`."""
        xs, ys, owners, sizes = [], [], [], []
        for i, (val, take) in enumerate(zip(vals, picks, strict=True)):
            xs.append(val.x[take])
            ys.append(val.y[take])
            owners.append(np.full(len(take), i))
            sizes.append(len(take))
        return cls(
            on_device(torch.from_numpy(np.concatenate(xs))),
            on_device(torch.from_numpy(np.concatenate(ys))),
            on_device(torch.from_numpy(np.concatenate(owners))),
            np.array(sizes),
        )

    @torch.no_grad()
    def accuracies(self, model: nn.Module, batch_size: int = 2048) -> np.ndarray:
        """The model's accuracy (%) on each client's pooled validation images (NaN: none pooled)."""
        model.eval()
        with autocast():
            logits = torch.cat([model(self.x[i : i + batch_size]) for i in range(0, len(self.y), batch_size)])
        hits = (logits.argmax(1) == self.y).to(torch.int64)
        counts = torch.zeros(len(self.sizes), dtype=torch.int64, device=hits.device).index_add_(0, self.owner, hits)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = 100.0 * counts.cpu().numpy() / self.sizes
        return out


def others_mean(accuracies: np.ndarray, client: int) -> float:
    """Mean over the other clients (those with pooled images) of a model's validation accuracy."""
    others = np.delete(accuracies, client)
    others = others[~np.isnan(others)]
    return float(others.mean()) if len(others) else float("nan")


def objective(rule: Rule, own: float, others: float, weight: float) -> float:
    """What a rule maximises: own validation accuracy, or its weighted mean with the others'."""
    if rule == "local" or weight == 0 or np.isnan(others):
        return own
    return (1 - weight) * own + weight * others


__all__ = ["RULES", "SEPARATOR", "ChoiceConfig", "Rule", "ValidationPool", "named", "objective", "others_mean"]
