"""Process-integrated personalized FL baselines: personalization happens during federated training.

Each file holds one baseline (its Params and its Algorithm); `train_baseline` trains the
federation and returns every client's personalized weights, to be scored with the same
cross-client matrix as the post-hoc methods. They are registered in `pftlab.personalize.METHODS`
beside the recipes, with `integrated = True`.
"""

from __future__ import annotations

from pftlab.personalize.baselines import ditto, fedper, fedrep
from pftlab.personalize.baselines.base import Baseline, train_baseline

BUILTIN: tuple[Baseline, ...] = (fedper.BASELINE, fedrep.BASELINE, ditto.BASELINE)

__all__ = ["BUILTIN", "Baseline", "train_baseline"]
