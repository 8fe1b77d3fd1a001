"""Coverage of sampled evaluation on mnist-writers (539 writers, 15,003 test images).

FT personalizes a seeded subset of the writers' models (all of them with --models 0); each model
is scored on every pooled test image once (the full matrix, per image). Then many draws of the
sample are replayed from those hits at the sizes given, and each draw's estimates and 95%
intervals are held against the full-matrix values of the same models. Prints, per metric, the
coverage, the mean and largest deviation in standard errors, and worst's mean gap.

    PFTLAB_DATA=../shared/data python benchmarks/sampled_coverage.py --models 120 --draws 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pftlab.data.benchmarks import build_federation
from pftlab.evaluate.matrix import EvalPool, hits_per_image
from pftlab.evaluate.metrics import summarize
from pftlab.evaluate.sampled import draw_sample, estimates, interval, scores_from_hits
from pftlab.evaluate.scoring import domain_numbers
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import set_threads
from pftlab.models import build_model
from pftlab.personalize import personalize_client, recipe

CONFIG = Path(__file__).parents[1] / "configs" / "benchmarks" / "mnist-writers.toml"


def full_correct(hits: np.ndarray, sizes: np.ndarray, ok: np.ndarray) -> np.ndarray:
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    correct = np.add.reduceat(hits.astype(np.int64), bounds[:-1], axis=1)
    correct[~ok] = -1
    return correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=120, help="personalized models (0 = every writer)")
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--sizes", default="2000x64,1000x32,500x16", help="images x clients, comma-separated")
    parser.add_argument("--method", default="ft")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--hits", type=Path, default=None, help="keep (or reuse) the models' hits in this .npz")
    args = parser.parse_args()

    cfg = load_config(CONFIG)
    set_threads(cfg.runtime.threads)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    pool = EvalPool.of(fed)
    sizes, domains, n = pool.sizes, domain_numbers(fed), fed.num_clients
    chosen = np.arange(n)
    if args.models:
        chosen = np.sort(np.random.default_rng(0).choice(n, size=args.models, replace=False))
    ok = np.zeros(n, bool)
    ok[chosen] = True
    global_hits = hits_per_image(model, pool)
    if args.hits and args.hits.is_file():
        hits = np.load(args.hits)["hits"]
    else:
        hits = np.zeros((n, int(sizes.sum())), np.uint8)
        t0 = time.perf_counter()
        spec, params = recipe(args.method), cfg.method_params(args.method)
        for i in chosen:
            c = fed.clients[i]
            w = personalize_client(
                model, weights, spec, params, cfg.personalize, c.train, cfg.seed, c.client_id, "head"
            )
            model.load_state_dict(w)
            hits[i] = hits_per_image(model, pool)
        print(
            f"{len(chosen)} {args.method} models scored on {hits.shape[1]} images in {time.perf_counter() - t0:.0f} s"
        )
        if args.hits:
            np.savez_compressed(args.hits, hits=hits, global_hits=global_hits)
    full = summarize(full_correct(hits, sizes, ok), sizes, digits=10, domains=domains)
    hardness = np.add.reduceat(global_hits.astype(np.int64), np.concatenate([[0], np.cumsum(sizes)[:-1]])) / sizes
    report: dict[str, dict[str, dict[str, float]]] = {}
    for size in args.sizes.split(","):
        m, k = (int(v) for v in size.split("x"))
        inside: dict[str, list[bool]] = {}
        dev: dict[str, list[float]] = {}
        gaps: list[float] = []
        for draw in range(args.draws):
            sample = draw_sample(sizes, domains, m, k, seed=1000 + draw, hardness=hardness)
            _, ests = estimates(scores_from_hits(hits, sample, ok), sample)
            for metric, est in ests.items():
                se, lo, hi = interval(est, sample.fraction)
                inside.setdefault(metric, []).append(lo - 1e-6 <= full[metric] <= hi + 1e-6)
                if se > 0 and est.gap == 0:
                    dev.setdefault(metric, []).append(abs(est.value - full[metric]) / se)
            gaps.append(ests["worst"].gap)
        cost = (m + k * sizes.mean()) / sizes.sum()
        print(f"\n{m} images x {k} clients: each model scores {100 * cost:.0f}% of the pool's images")
        report[size] = {}
        for metric in sorted(inside):
            row = {"coverage": float(np.mean(inside[metric]))}
            if metric in dev:
                row |= {"mean_dev_se": float(np.mean(dev[metric])), "max_dev_se": float(np.max(dev[metric]))}
            report[size][metric] = row
            print(f"  {metric:<20} " + "  ".join(f"{key} {value:.3f}" for key, value in row.items()))
        print(f"  worst: mean gap {np.mean(gaps):.2f} points (full worst {full['worst']:.2f})")
        report[size]["worst"]["mean_gap"] = float(np.mean(gaps))
    if args.out:
        args.out.write_text(json.dumps({"models": len(chosen), "draws": args.draws, "sizes": report}, indent=2))


if __name__ == "__main__":
    main()
