"""pftlab: personalized fine-tuning in heterogeneous federated learning.

The public API, importable from `pftlab`:

- `Config`, `load_config`: the experiment config (a TOML file, validated).
- `run(config, out) -> Results`: the whole pipeline; `Results.load(run_dir)` reads a finished run.
- `Method`, `Phase`, `Plan`, `Run`, `single`, `Baseline`: personalization methods as data.
- `Algorithm`, `ClientUpdate`: a global-stage algorithm; `ModelSpec`, `ModelConfig`: a model;
  `Benchmark`, `ClientPool`, `Dataset`, `FederatedData`: a dataset; `Strict`: the base of every Params.
- `register_method`, `register_model`, `register_algorithm`, `register_benchmark`: add your own
  (or declare them under the entry point groups `pftlab.methods`, `pftlab.models`,
  `pftlab.algorithms`, `pftlab.benchmarks` of your package).
- `METHODS`, `MODELS`, `ALGORITHMS`, `BENCHMARKS`: the registries.

Names are loaded on first use, so `import pftlab` (and the CLI's start) stays fast.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# OpenMP's default active wait spins a thread while it waits for work; with a core taken by another
# process, torch's 2-thread CPU work then ran 25-60x slower than alone (docs/engine.md, "Threads on a
# shared CPU"). A passive wait sleeps instead. It must be set before torch loads its OpenMP runtime,
# so here, before any of pftlab's modules import torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from pftlab.core.errors import UserError
    from pftlab.core.schema import Strict
    from pftlab.data.benchmarks import BENCHMARKS, register_benchmark
    from pftlab.data.benchmarks.base import Benchmark
    from pftlab.data.dataset import Dataset, FederatedData
    from pftlab.data.federate import ClientPool
    from pftlab.experiment.api import Results, run
    from pftlab.experiment.config import Config, load_config
    from pftlab.federated import ALGORITHMS, Algorithm, ClientUpdate, register_algorithm
    from pftlab.models import MODELS, ModelConfig, ModelSpec, register_model
    from pftlab.personalize import METHODS, Baseline, Method, Plan, Run, register_method, single
    from pftlab.training.phase import Phase

_WHERE = {
    "UserError": "pftlab.core.errors",
    "BENCHMARKS": "pftlab.data.benchmarks",
    "register_benchmark": "pftlab.data.benchmarks",
    "Benchmark": "pftlab.data.benchmarks.base",
    "ClientPool": "pftlab.data.federate",
    "Dataset": "pftlab.data.dataset",
    "FederatedData": "pftlab.data.dataset",
    "Strict": "pftlab.core.schema",
    "ModelConfig": "pftlab.models",
    "Results": "pftlab.experiment.api",
    "run": "pftlab.experiment.api",
    "Config": "pftlab.experiment.config",
    "load_config": "pftlab.experiment.config",
    "ALGORITHMS": "pftlab.federated",
    "Algorithm": "pftlab.federated",
    "ClientUpdate": "pftlab.federated",
    "register_algorithm": "pftlab.federated",
    "MODELS": "pftlab.models",
    "ModelSpec": "pftlab.models",
    "register_model": "pftlab.models",
    "METHODS": "pftlab.personalize",
    "Baseline": "pftlab.personalize",
    "Method": "pftlab.personalize",
    "Plan": "pftlab.personalize",
    "Run": "pftlab.personalize",
    "register_method": "pftlab.personalize",
    "single": "pftlab.personalize",
    "Phase": "pftlab.training.phase",
}

__all__ = [
    "ALGORITHMS",
    "BENCHMARKS",
    "METHODS",
    "MODELS",
    "Algorithm",
    "Baseline",
    "Benchmark",
    "ClientPool",
    "ClientUpdate",
    "Config",
    "Dataset",
    "FederatedData",
    "Method",
    "ModelConfig",
    "ModelSpec",
    "Phase",
    "Plan",
    "Results",
    "Run",
    "Strict",
    "UserError",
    "__version__",
    "load_config",
    "register_algorithm",
    "register_benchmark",
    "register_method",
    "register_model",
    "run",
    "single",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562)."""
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pftlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
