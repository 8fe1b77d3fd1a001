"""The global checkpoint, cached by the hash of everything that determines it.

Same partition, model (its identity: class, structure, source, initial weights), global-stage
config, seed and compute setting (threads, device, precision, torch): the global model is loaded,
not retrained. The file records the key it was trained for; a file that does not load, fails its
checksum, or was trained for another key (a checkpoint copied over another) is rebuilt. The
stage's counts and its training time live in the file's metadata, so a reused checkpoint still
reports them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from torch import nn

from pftlab.core.errors import CorruptFile
from pftlab.core.io import cache_dir, config_hash, load_weights, save_weights
from pftlab.core.weights import Weights
from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import Config
from pftlab.federated.rounds import StageStats, run_global_stage
from pftlab.models.identity import compute_identity, model_identity

# 2: named CNN blocks; 3: algorithms beyond FedAvg, dropout, stage counts; 4: SCAFFOLD momentum steps;
# 5: channels-last training (other rounding); 6: model identity, compute setting, robust global stage
FORMAT = 6


def checkpoint_key(fed: FederatedData, cfg: Config, model: nn.Module) -> str:
    """What the global model depends on; `model` must still hold its initial weights."""
    return config_hash(
        {
            "format": FORMAT,
            "partition": fed.partition_hash,
            "model": cfg.model.model_dump(mode="json"),
            "model_identity": model_identity(model),
            "compute": compute_identity(model),
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

    The stage's counts: `stage_stats(path)`; the seconds its training took: `stage_seconds(path)`.
    """
    key = checkpoint_key(fed, cfg, model)
    path = cache_dir() / "global" / f"{key}.safetensors"
    if path.is_file() and _trained_for(path, key):
        try:
            weights = load_weights(path)
        except (CorruptFile, SafetensorError, OSError, ValueError):
            weights = {}
        if _fits(weights, model):
            model.load_state_dict(weights)
            return weights, path, True
    t0 = time.perf_counter()
    weights, stats = run_global_stage(model, fed, cfg.federated, cfg.seed, on_round, head)
    meta = {
        "key": key,
        "federated": json.dumps(cfg.federated.model_dump(mode="json"), sort_keys=True),
        "stats": json.dumps(stats.as_dict(), sort_keys=True),
        "seconds": f"{time.perf_counter() - t0:.3f}",
    }
    save_weights(path, weights, metadata=meta)
    return weights, path, False


def weights_metadata(path: Path) -> dict[str, str]:
    """The metadata a safetensors file carries ({} when it is missing or unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return {}


def _trained_for(path: Path, key: str) -> bool:
    """Whether the file says it was trained for `key`: another config's checkpoint copied over
    this one has the right shapes and a valid checksum, but not this key."""
    return weights_metadata(path).get("key") == key


def stage_stats(path: Path) -> dict[str, int]:
    """The counts the global stage that wrote this checkpoint recorded (StageStats as a dict)."""
    return StageStats(**json.loads(weights_metadata(path)["stats"])).as_dict()


def stage_seconds(path: Path) -> float:
    """The seconds the global stage that wrote this checkpoint took to train (NaN if not recorded)."""
    try:
        return float(weights_metadata(path).get("seconds", "nan"))
    except ValueError:
        return float("nan")
