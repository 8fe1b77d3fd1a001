"""One experiment end to end: federation -> global model -> personalization x clients -> matrices.

Each step is a plain function call; this file only wires them and reports progress.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from pftlab import __version__
from pftlab.data.benchmarks import build_federation
from pftlab.evaluate.distortion import KEYS as DISTORTION_KEYS
from pftlab.evaluate.distortion import distortion, no_distortion
from pftlab.evaluate.matrix import EvalPool, accuracy, correct_row_from_features, pool_features
from pftlab.experiment.config import Config
from pftlab.experiment.results import write_results
from pftlab.federated.checkpoint import global_model
from pftlab.models import build_model, head_module
from pftlab.personalize import METHODS, personalize_client

ModelFn = Callable[[tuple[int, ...], int], nn.Module]


def set_threads(threads: int) -> int:
    """Torch intra-op threads: the configured number, or every core this process may use."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def no_distortion_arrays(n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, v) for k, v in no_distortion().items()}


def personalize_all(
    model: nn.Module,
    global_weights: dict[str, torch.Tensor],
    fed: Any,
    cfg: Config,
    method: str,
    pool: EvalPool,
    global_features: torch.Tensor,
    advance: Callable[[], None] = lambda: None,
    head: str = "head",
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, np.ndarray]]:
    """correct[i, j] for one method, what each client chose from its search grid, and its feature distortion.

    Every client is personalized from the global weights with each grid point; the point with
    the best accuracy on the client's own validation split is kept (the first on ties). Test
    data plays no part in the choice.
    """
    spec = METHODS[method]
    candidates = cfg.search_grid(method)
    rows, chosen, distortions = [], [], []
    for client in fed.clients:
        best: tuple[float, Any, dict[str, torch.Tensor]] | None = None
        for params in candidates:
            weights = personalize_client(
                model, global_weights, spec, params, cfg.personalize, client.train, cfg.seed, client.client_id, head
            )
            val = accuracy(model, client.val) if len(candidates) > 1 else float("nan")
            if best is None or val > best[0]:
                best = (val, params, weights)
        val, params, weights = best  # type: ignore[misc]
        model.load_state_dict(weights)
        head_net = head_module(model, head)
        if spec.backbone_frozen(params, cfg.personalize):
            rows.append(correct_row_from_features(head_net, pool, global_features))
            distortions.append(no_distortion())
        else:
            features = pool_features(model, pool, head)
            rows.append(correct_row_from_features(head_net, pool, features))
            distortions.append(distortion(features, global_features, pool.owner, client.client_id))
        if len(candidates) > 1:
            chosen.append({"client": client.client_id, "params": params.model_dump(mode="json"), "val_accuracy": val})
        advance()
    return np.stack(rows), chosen, {k: np.array([d[k] for d in distortions]) for k in DISTORTION_KEYS}


def run_experiment(
    cfg: Config,
    out: Path,
    console: Console | None = None,
    model_fn: ModelFn | None = None,
    head: str = "head",
) -> dict:
    """Run the whole pipeline and write the run directory; return the summary.

    `model_fn(input_shape, num_classes)` replaces the configured model with any torch module
    whose last layer is the submodule named `head`.
    """
    console = console or Console(stderr=True)
    threads = set_threads(cfg.runtime.threads)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fed = build_federation(cfg.data, cfg.seed)
    timings["data"] = time.perf_counter() - t0

    make = model_fn or (lambda shape, classes: build_model(cfg.model, shape, classes, cfg.seed))
    model = make(fed.input_shape, fed.num_classes)
    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not cfg.runtime.progress,
    )
    with progress if cfg.runtime.progress else nullcontext():
        t0 = time.perf_counter()
        task = progress.add_task(f"global ({cfg.federated.algorithm})", total=cfg.federated.rounds, info="")
        weights, ckpt, reused = global_model(
            model, fed, cfg, lambda r, loss: progress.update(task, advance=1, info=f"train loss {loss:.3f}")
        )
        if reused:
            progress.update(task, completed=cfg.federated.rounds, info=f"reused {ckpt.name[:12]}")
        timings["global"] = time.perf_counter() - t0

        pool = EvalPool.of(fed)
        global_features = pool_features(model, pool, head)
        global_row = correct_row_from_features(head_module(model, head), pool, global_features)
        correct = {"global-model": np.tile(global_row, (fed.num_clients, 1))}
        searched: dict[str, list[dict[str, Any]]] = {}
        distortions: dict[str, dict[str, np.ndarray]] = {"global-model": no_distortion_arrays(fed.num_clients)}
        for method in cfg.personalize.methods:
            t0 = time.perf_counter()
            task = progress.add_task(f"personalize {method}", total=fed.num_clients, info="")
            correct[method], chosen, distortions[method] = personalize_all(
                model,
                weights,
                fed,
                cfg,
                method,
                pool,
                global_features,
                lambda t=task: progress.update(t, advance=1),
                head,
            )
            timings[method] = time.perf_counter() - t0
            if chosen:
                searched[method] = chosen

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt, out / ".global.safetensors.tmp")
    os.replace(out / ".global.safetensors.tmp", out / "global.safetensors")
    run_info = {
        "pftlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "global_checkpoint": str(ckpt),
        "global_checkpoint_reused": reused,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    return write_results(out, cfg, fed, correct, pool.sizes, run_info, searched, distortions)
