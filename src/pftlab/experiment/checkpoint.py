"""The global checkpoint, cached by the hash of everything that determines it.

Same partition, model, global-stage config and seed: the global model is loaded, not retrained.
A cache file that does not load or does not fit the model is rebuilt. The stage's counts (rounds
skipped, updates rejected, clients dropped) live in the file's metadata, so a reused checkpoint
still reports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from torch import nn

from pftlab.core.io import cache_dir, config_hash, load_weights, save_weights
from pftlab.core.weights import Weights
from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import Config
from pftlab.federated.rounds import StageStats, run_global_stage

# 2: named CNN blocks; 3: algorithms beyond FedAvg, dropout, stage counts; 4: SCAFFOLD momentum steps;
# 5: channels-last training (other rounding)
FORMAT = 5


def checkpoint_key(fed: FederatedData, cfg: Config) -> str:
    return config_hash(
        {
            "format": FORMAT,
            "partition": fed.partition_hash,
            "model": cfg.model.model_dump(mode="json"),
            "federated": cfg.federated.model_dump(mode="json"),
            "seed": cfg.seed,
        }
    )


def _fits(weights: Weights, model: nn.Module) -> bool:
    expected = model.state_dict()
    return weights.keys() == expected.keys() and all(weights[k].shape == v.shape for k, v in expected.items())


def global_model(
    model: nn.Module,
    fed: FederatedData,
    cfg: Config,
    on_round: Callable[[int, float], None] | None = None,
    head: str = "head",
) -> tuple[Weights, Path, bool]:
    """(weights, cache path, reused?) of the global stage; `model` ends holding the weights.

    The stage's counts: `stage_stats(path)`.
    """
    key = checkpoint_key(fed, cfg)
    path = cache_dir() / "global" / f"{key}.safetensors"
    if path.is_file():
        try:
            weights = load_weights(path)
        except (SafetensorError, OSError, ValueError):
            weights = {}
        if _fits(weights, model):
            model.load_state_dict(weights)
            return weights, path, True
    weights, stats = run_global_stage(model, fed, cfg.federated, cfg.seed, on_round, head)
    meta = {
        "key": key,
        "federated": json.dumps(cfg.federated.model_dump(mode="json"), sort_keys=True),
        "stats": json.dumps(stats.as_dict(), sort_keys=True),
    }
    save_weights(path, weights, metadata=meta)
    return weights, path, False


def stage_stats(path: Path) -> dict[str, int]:
    """The counts the global stage that wrote this checkpoint recorded (StageStats as a dict)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return StageStats(**json.loads(meta["stats"])).as_dict()
