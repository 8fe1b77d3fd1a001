"""The training layer: a phase of training, the one loop that runs phases, and the batched engine.

Both the global stage's local updates (`pftlab.federated`) and every personalization recipe
(`pftlab.personalize`) are phases of this one loop, so they see the same data order and budget.
"""

from pftlab.training.config import OptimizerConfig
from pftlab.training.phase import Phase

__all__ = ["OptimizerConfig", "Phase"]
