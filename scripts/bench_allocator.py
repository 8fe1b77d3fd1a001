"""Evaluation time with glibc's default allocator settings against pftlab's (pftlab.core.allocator).

mallopt settings are per process, so each side runs in its own subprocess doing the same work:
the features of every pooled test image of a benchmark for one freshly built model, repeated.
Prints each side's seconds per evaluation and the ratio default / pftlab (above 1: pftlab faster).

    PFTLAB_DATA=../shared/data python scripts/bench_allocator.py [--benchmark mnist-writers] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORK = """
import json, sys, time, torch
from pftlab.core.allocator import keep_freed_memory
from pftlab.experiment.config import load_config
from pftlab.data.benchmarks import build_federation
from pftlab.models import build_model
from pftlab.evaluate.matrix import EvalPool, pool_features
side, bench, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
note = keep_freed_memory() if side == "pftlab" else "glibc defaults"
torch.set_num_threads(0 or len(__import__("os").sched_getaffinity(0)))
cfg = load_config(None, [f"data.benchmark={bench}"])
fed = build_federation(cfg.data, cfg.seed)
model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
pool = EvalPool.of(fed)
pool_features(model, pool)  # warm-up
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); pool_features(model, pool); times.append(time.perf_counter() - t0)
print(json.dumps({"note": note, "images": len(pool.x), "times": times}))
"""


def run(side: str, bench: str, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WORK, side, bench, str(repeats)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench_allocator: the {side} run failed: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="mnist-writers")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the two sides this many times")
    args = ap.parse_args()
    best = {"default": [], "pftlab": []}
    for _ in range(args.rounds):
        for side in best:
            r = run(side, args.benchmark, args.repeats)
            best[side] += r["times"]
            print(f"{side:8s} {r['note']}: {r['images']} images, " + " ".join(f"{t:.3f}" for t in r["times"]) + " s")
    med = {k: sorted(v)[len(v) // 2] for k, v in best.items()}
    print(
        f"median s per evaluation: default {med['default']:.3f}, pftlab {med['pftlab']:.3f}; "
        f"ratio default / pftlab {med['default'] / med['pftlab']:.2f}"
    )


if __name__ == "__main__":
    main()
