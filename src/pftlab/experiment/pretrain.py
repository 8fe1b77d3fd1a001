"""`pftlab pretrain CONFIG --out PATH`: a model trained centrally on data no client holds, for `model.init`.

Whether LP-FT's advantage needs good features before federated training is a question the
study could not ask with a CNN trained from scratch. This trains the config's `[model]` on the
pooled train and validation splits of the `[pretrain.data]` federation (e.g. Fashion-MNIST for
the digit benchmarks; any benchmark whose inputs have the run's shape) for `pretrain.epochs`
through the one training loop, reports its accuracy on that federation's pooled test splits,
and writes the weights (safetensors, with the settings in its metadata). The result is cached
by the hash of everything that makes it (the pretrain table, the model, the seed, the data's
content hash), so asking again reuses it once it verifies.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from pftlab.core.compute import resolve as resolve_compute
from pftlab.core.compute import using
from pftlab.core.errors import CorruptFile
from pftlab.core.io import cache_dir, config_hash, load_weights, save_weights
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import Dataset
from pftlab.evaluate.matrix import accuracy
from pftlab.experiment.checkpoint import weights_metadata
from pftlab.experiment.config import Config
from pftlab.models import build_model, resolve_name
from pftlab.training.config import OptimizerConfig
from pftlab.training.loop import train
from pftlab.training.phase import Phase

FORMAT = 1  # bump when a change of code changes the weights pretrain makes


def pooled(datasets: list[Dataset]) -> Dataset:
    first = datasets[0]
    return Dataset(
        np.concatenate([d.x for d in datasets]), np.concatenate([d.y for d in datasets]), first.num_classes, "pooled"
    )


def pretrain(cfg: Config, out: Path, say: Any = print) -> dict[str, Any]:
    """Train (or reuse) the pretrained weights and write them to `out`; what was done, for the caller."""
    p = cfg.pretrain
    compute = resolve_compute(cfg.runtime.device, cfg.runtime.precision)
    fed = build_federation(p.data, cfg.seed)
    data = pooled([c.train for c in fed.clients] + [c.val for c in fed.clients])
    test = pooled([c.test for c in fed.clients])
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    key = config_hash(
        {
            "format": FORMAT,
            "pretrain": cfg.resolved().get("pretrain", p.model_dump(mode="json")),
            "model": cfg.model.model_dump(mode="json"),
            "seed": cfg.seed,
            "data": fed.partition_hash,
            "precision": compute.precision,
        }
    )
    cached = cache_dir() / "pretrain" / f"{key}.safetensors"
    meta = weights_metadata(cached)
    if meta.get("key") == key:
        try:
            weights = load_weights(cached)
            save_weights(out, weights, metadata=meta)
            say(f"reused the verified pretrained weights {cached.name[:16]}")
            return {**json.loads(meta["record"]), "reused": True, "out": str(out)}
        except (CorruptFile, OSError, ValueError):
            pass  # damaged: trained again
    name = resolve_name(cfg.model.name, fed.input_shape)
    say(
        f"pretraining {name} on {p.data.benchmark} ({len(data):,} images, {fed.num_classes} classes) "
        f"for {p.epochs} epochs on {compute.device}"
    )
    t0 = time.perf_counter()
    with using(compute):
        model = model.to(compute.device)
        optim = OptimizerConfig(momentum=p.momentum, batch_size=p.batch_size)
        phases = [Phase(train="all", epochs=p.epochs, lr=p.lr)]
        done = lambda e, loss: say(f"  epoch {e}/{p.epochs}: training loss {loss:.3f} ({time.strftime('%H:%M:%S')})")  # noqa: E731
        loss = train(model, phases, data, optim, cfg.seed, "pretrain", 0, on_epoch=done)
        test_accuracy = accuracy(model, test)
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    record = {
        "benchmark": p.data.benchmark,
        "images": len(data),
        "classes": fed.num_classes,
        "input_shape": list(fed.input_shape),
        "epochs": p.epochs,
        "last_epoch_loss": round(loss, 4),
        "test_accuracy": round(test_accuracy, 2),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    meta = {"key": key, "record": json.dumps(record, sort_keys=True)}
    save_weights(cached, weights, metadata=meta)
    save_weights(out, weights, metadata=meta)
    return {**record, "reused": False, "out": str(out)}
