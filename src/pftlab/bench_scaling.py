"""`pftlab bench --scaling`: does the cost per client stay flat from 100 to 10,000 clients?

The same work per client at every N: 10 training, 2 validation and 5 test images (Fashion-MNIST
and MNIST test images, 20 classes; with more clients than images the images are reused, each
client a slice of one shared array), the small CNN from one FedAvg global model (2 rounds over
the 100-client federation, not timed), FT and LP-FT for 5 epochs, sampled evaluation
(`evaluate.sample_images`, `evaluate.sample_clients` below) and the summary with every stated
interval. Each N runs in its own child process, so its peak RSS is its own; the time is the
personalization, scoring and summary of both methods, after a warm-up on 8 clients.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pftlab.core.heartbeat import Heartbeat
from pftlab.core.io import config_hash, load_weights, save_weights
from pftlab.core.seeding import numpy_rng
from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.data.sources.idx import fashion_mnist, mnist
from pftlab.evaluate.intervals import resample_weights
from pftlab.evaluate.scoring import Scoring, domain_numbers
from pftlab.evaluate.summary import method_result, stated_errors
from pftlab.experiment.config import Config, from_dict
from pftlab.experiment.runner import personalize_all, set_threads
from pftlab.federated.rounds import run_global_stage
from pftlab.models import build_model

TRAIN, VAL, TEST = 10, 2, 5
CLIENTS = (100, 1_000, 10_000)
WARM_UP = 8  # clients personalized and scored before the clock starts, in every child
QUICK_CLIENTS = (10, 20, 40)
CONFIG: dict[str, Any] = {
    "federated": {"rounds": 2},
    "personalize": {"methods": ["ft", "lp-ft"], "epochs": 5},
    "method": {"lp-ft": {"lp_epochs": 2}},
    "evaluate": {"mode": "sampled", "sample_images": 100, "sample_clients": 4},
    "runtime": {"progress": False, "threads": 0},
}


def base_images(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """The shared image array: Fashion-MNIST's and MNIST's test images (labels 0-9 and 10-19), shuffled once."""
    if quick:
        rng = np.random.default_rng(0)
        return rng.uniform(0, 1, (600, 1, 28, 28)).astype(np.float32), rng.integers(0, 20, 600)
    a, b = fashion_mnist("test"), mnist("test")
    x = np.concatenate([a.x, b.x])
    y = np.concatenate([a.y, b.y + 10])
    order = numpy_rng(0, "scaling").permutation(len(y))
    return np.ascontiguousarray(x[order]), y[order]


def federation(n: int, x: np.ndarray, y: np.ndarray) -> FederatedData:
    """n clients of TRAIN + VAL + TEST images each, every split a view into the shared arrays."""
    per = TRAIN + VAL + TEST
    span = len(y) - per + 1
    clients = []
    for j in range(n):
        s = (j * per) % span

        def part(a: int, b: int, s: int = s) -> Dataset:
            return Dataset(x[s + a : s + b], y[s + a : s + b], 20)

        clients.append(ClientData(j, part(0, TRAIN), part(TRAIN, TRAIN + VAL), part(TRAIN + VAL, per)))
    key = config_hash({"scaling": n, "images": len(y), "per_client": per})
    return FederatedData("scaling", clients, 20, tuple(x.shape[1:]), key)


def config() -> Config:
    return from_dict(CONFIG)


def scaling_child(n: int, weights_path: str, quick: bool) -> dict[str, Any]:
    """In a child process: the timed work at n clients; seconds, per client, peak RSS (MiB)."""
    threads = set_threads(0)
    cfg = config()
    x, y = base_images(quick)
    fed = federation(n, x, y)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights = load_weights(Path(weights_path))
    model.load_state_dict(weights)
    warm = federation(WARM_UP, x, y)  # kernels and allocator warmed up on a few clients, not timed
    for method in cfg.personalize.methods:
        scoring = Scoring.make(warm, model, "head", "sampled", 20, 2, cfg.seed)
        personalize_all(model, weights, warm, cfg, method, scoring)
    model.load_state_dict(weights)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    ev = cfg.evaluate
    scoring = Scoring.make(fed, model, "head", "sampled", ev.sample_images, ev.sample_clients, cfg.seed)
    scores = {"global-model": scoring.global_row(model)}
    for method in cfg.personalize.methods:  # a line on stderr at least every 30 s: N = 10,000 takes half an hour
        beat = Heartbeat(lambda text: print(f"  {text}", file=sys.stderr, flush=True), f"{n}: {method} clients", n)
        scores[method] = personalize_all(model, weights, fed, cfg, method, scoring, beat.tick)[0]
    sizes = scoring.pool.sizes
    results = {m: method_result(s, sizes, domain_numbers(fed), scoring.sample) for m, s in scores.items()}
    means = {m: r.summary for m, r in results.items()}
    stated_errors(results, {}, resample_weights(n, ev.bootstrap, cfg.seed), scoring.sample, means)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "clients": n,
        "seconds": round(seconds, 3),
        "ms_per_client": round(1000 * seconds / n, 3),
        "peak_mib": round(peak, 1),
        "before_work_mib": round(before, 1),
        "threads": threads,
        "ft_global": means["ft"]["global"],
    }


def _child(n: int, weights: Path, quick: bool) -> dict[str, Any]:
    code = (
        "import json; from pftlab import bench_scaling as b; "
        f"print(json.dumps(b.scaling_child({n}, {str(weights)!r}, {quick})))"
    )
    # stdout carries the result; stderr (progress lines, or the error) goes straight to the user
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scaling child at {n} clients failed (exit {done.returncode}; its error is above)")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_scaling(say: Callable[[str], None] = print, quick: bool = False) -> dict[str, Any]:
    """Every N in its own child process; the ratios of time per client and of peak memory to the smallest N."""
    cfg = config()
    sizes = QUICK_CLIENTS if quick else CLIENTS
    set_threads(0)
    x, y = base_images(quick)
    fed = federation(sizes[0], x, y)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    say(f"global model: FedAvg, {cfg.federated.rounds} rounds over {sizes[0]} clients (not timed)")
    weights = run_global_stage(model, fed, cfg.federated, cfg.seed)[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "global.safetensors"
        save_weights(path, weights)
        for n in sizes:
            say(f"{n} clients: FT and LP-FT ({cfg.personalize.epochs} epochs), sampled evaluation, summary")
            row = _child(n, path, quick)
            say(f"  {row['seconds']:.1f} s, {row['ms_per_client']:.1f} ms per client, peak {row['peak_mib']:.0f} MiB")
            rows.append(row)
    first, last = rows[0], rows[-1]
    return {
        "per_client": {"train": TRAIN, "val": VAL, "test": TEST},
        "config": CONFIG,
        "quick": quick,
        "rows": rows,
        "time_per_client_ratio": round(last["ms_per_client"] / first["ms_per_client"], 3),
        "peak_memory_ratio": round(last["peak_mib"] / first["peak_mib"], 3),
        "largest_seconds": last["seconds"],
    }


def scaling_markdown(r: dict[str, Any]) -> str:
    lines = [
        "| clients | seconds | ms per client | peak RSS |",
        "|---|---|---|---|",
        *(
            f"| {row['clients']:,} | {row['seconds']:.1f} | {row['ms_per_client']:.1f} | {row['peak_mib']:.0f} MiB |"
            for row in r["rows"]
        ),
        "",
        f"- time per client, {r['rows'][-1]['clients']:,} vs {r['rows'][0]['clients']:,} clients: "
        f"**{r['time_per_client_ratio']}x** (target <= 1.5)",
        f"- peak memory, same: **{r['peak_memory_ratio']}x** (target <= 2)",
    ]
    return "\n".join(lines) + "\n"
