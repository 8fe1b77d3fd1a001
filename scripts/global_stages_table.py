"""Global model and LP-FT local / global accuracy after each global-stage algorithm, and the baselines.

Usage: OMP_NUM_THREADS=1 .venv/bin/python scripts/global_stages_table.py [CONFIG] [--set KEY=VALUE ...] [--stages a,b]

Global stages run through the ordinary pipeline (run_experiment, methods = [lp-ft]); FedPer,
FedRep and Ditto train from the same initial model for the same rounds, and each client's
personalized model is scored with the same cross-client matrix and metrics.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from pftlab.data.benchmarks import build_federation
from pftlab.evaluate.matrix import EvalPool, correct_row
from pftlab.evaluate.metrics import summarize
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment, set_threads
from pftlab.models import build_model
from pftlab.personalize.baselines import BASELINES, run_baseline

ALGORITHMS = ["fedavg", "fedprox", "scaffold", "fedavgm", "fedadam", "fedbabu"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/quickstart.toml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--stages", default=",".join([*ALGORITHMS, *BASELINES]), help="comma-separated subset")
    args = parser.parse_args(argv)
    config, stages = Path(args.config), args.stages.split(",")
    overrides = [*args.set, "runtime.progress=false", 'personalize.methods=["lp-ft"]']
    rows = []
    out = Path(tempfile.mkdtemp(prefix="pftlab-global-stages-"))
    for algorithm in (a for a in ALGORITHMS if a in stages):
        cfg = load_config(config, [*overrides, f'federated.algorithm="{algorithm}"'])
        t0 = time.perf_counter()
        summary = run_experiment(cfg, out / algorithm, Console(quiet=True))
        g, lpft = summary["methods"]["global-model"], summary["methods"]["lp-ft"]
        rows.append((algorithm, g["local"], g["global"], lpft["local"], lpft["global"], time.perf_counter() - t0))
    cfg = load_config(config, overrides)
    set_threads(cfg.runtime.threads)
    fed = build_federation(cfg.data, cfg.seed)
    pool = EvalPool.of(fed)
    for name in (b for b in BASELINES if b in stages):
        t0 = time.perf_counter()
        model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
        personal, _ = run_baseline(name, model, fed, cfg)
        hits = []
        for _, weights in personal:
            model.load_state_dict(weights)
            hits.append(correct_row(model, pool))
        m = summarize(np.stack(hits), pool.sizes)
        rows.append((name, float("nan"), float("nan"), m["local"], m["global"], time.perf_counter() - t0))
    print(f"{config} {' '.join(overrides)}")
    print("| stage | global model local | global model global | personalized local | personalized global | s |")
    print("|---|---|---|---|---|---|")
    for name, gl, gg, pl, pg, secs in rows:
        first = "–" if gl != gl else f"{gl:.2f}"
        second = "–" if gg != gg else f"{gg:.2f}"
        kind = "LP-FT after " if name in ALGORITHMS else "baseline "
        print(f"| {kind}{name} | {first} | {second} | {pl:.2f} | {pg:.2f} | {secs:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
