"""`pftlab bench`: the fixed workload through pftlab and through the usual loop, in one process.

Workload: Fashion-MNIST with Dirichlet(0.3) label skew over 50 clients (6,000 images), the
small CNN, a FedAvg global model (trained once, cached, not timed), then FT, LP and LP-FT for
15 epochs on every client and the full cross-client matrix of each. The reference
(`benchmarks/reference_loop.py`) does the same work the usual way; both use the same per-epoch
data order, so their metrics must agree. Memory is measured in child processes (peak RSS),
with 100 and with 1,000 clients holding the same data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pftlab.core.compute import Compute
from pftlab.core.compute import resolve as resolve_compute
from pftlab.core.compute import using as using_compute
from pftlab.core.errors import UserError
from pftlab.core.io import atomic_write_text, write_json
from pftlab.core.seeding import numpy_rng
from pftlab.core.threads import ENV as THREADS_ENV
from pftlab.core.weights import Weights
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.intervals import paired_interval
from pftlab.evaluate.metrics import summarize
from pftlab.evaluate.scoring import Scoring
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import Config, from_dict
from pftlab.experiment.runner import (
    HEAD_CHUNKS,
    apply_threads,
    client_chunks,
    personalize_all,
    personalize_chunk,
    set_threads,
)
from pftlab.models import build_model, features
from pftlab.personalize import recipe

METHODS = ("ft", "lp", "lp-ft")
WORKLOAD: dict[str, Any] = {
    "data": {"benchmark": "fmnist-dirichlet", "num_clients": 50, "samples": 6000},
    "federated": {"rounds": 10},
    "personalize": {"methods": list(METHODS), "epochs": 15},
    "runtime": {"progress": False},
}
# same total data over 100 or 1,000 clients; a narrower CNN so 1,000 x pool evaluations stay short
MEMORY: dict[str, Any] = {
    "data": {"benchmark": "fmnist-dirichlet", "partition": "iid", "samples": 24_000, "test_fraction": 0.1},
    "model": {"width": 8, "hidden": 32},
    "federated": {"rounds": 1},
    "personalize": {"methods": ["ft", "lp"], "epochs": 2},
    "runtime": {"progress": False},
}


class Quick(TypedDict):
    """QUICK's parts: the workload and memory configs, and the client counts of the two memory runs."""

    workload: dict[str, Any]
    memory: dict[str, Any]
    clients: tuple[int, int]


QUICK: Quick = {  # a smoke run of the same code path (tests): sklearn digits, seconds
    "workload": {
        "data": {"benchmark": "digits-quick", "num_clients": 6},
        "federated": {"rounds": 3},
        "personalize": {"methods": list(METHODS), "epochs": 3},
        "method": {"lp-ft": {"lp_epochs": 1}},
        "runtime": {"progress": False},
    },
    "memory": {
        "data": {"benchmark": "digits-quick", "partition": "iid", "min_client_size": 5, "test_fraction": 0.2},
        "model": {"width": 4, "hidden": 16},
        "federated": {"rounds": 1},
        "personalize": {"methods": ["ft", "lp"], "epochs": 1},
        "runtime": {"progress": False},
    },
    "clients": (20, 200),
}
CONTENDED_SLOWDOWN = 1.5  # pftlab's time beside one busy process over its time alone, at most (issue 22)
TOLERANCE = 0.5  # percentage points: float rounding can flip a handful of test predictions after 15 epochs


def reference_module() -> Any:
    """benchmarks/reference_loop.py: the checkout's (a source checkout or an editable install), else the wheel's copy.

    A built wheel carries it as package data, pftlab/_data/reference_loop.py (pyproject.toml, force-include).
    """
    checkout = Path(__file__).resolve().parents[2] / "benchmarks" / "reference_loop.py"
    path = checkout if checkout.is_file() else Path(str(resources.files("pftlab") / "_data" / "reference_loop.py"))
    if not path.is_file():
        raise UserError(f"pftlab bench needs the reference loop: neither {checkout} nor {path} found")
    spec = importlib.util.spec_from_file_location("reference_loop", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """fn's result and its wall time; memory is measured in child processes (work_child, memory_child)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def matmul_peak(n: int = 1024, repeats: int = 20) -> float:
    """fp32 matrix-multiply FLOP/s of this machine at the current thread count (best of runs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def ft_flops_per_sample(model: torch.nn.Module, shape: tuple[int, ...], batch: int) -> float:
    """Forward + backward FLOPs of one training sample, counted by torch's FLOP counter."""
    x, y = torch.randn(batch, *shape), torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
    model.zero_grad(set_to_none=True)
    flops: float = counter.get_total_flops() / batch
    return flops


def pftlab_work(model: nn.Module, weights: Weights, fed: FederatedData, cfg: Config) -> dict[str, np.ndarray]:
    """The workload through pftlab: cached features, batched clients, pooled matrix."""
    model.load_state_dict(weights)
    scoring = Scoring.make(fed, model, "head", "full", 0, 0, cfg.seed)
    out = {"global-model": scoring.global_row(model)}
    for method in METHODS:
        out[method] = personalize_all(model, weights, fed, cfg, method, scoring)[0]
    return {m: np.asarray(v) for m, v in out.items()}


def metrics(correct: dict[str, np.ndarray], sizes: np.ndarray) -> dict[str, dict[str, float]]:
    return {m: summarize(c, sizes) for m, c in correct.items()}


def memory_child(clients: int, quick: bool = False) -> dict[str, float]:
    """Run in a child process: the memory workload over `clients` clients; its peak RSS in MiB."""
    set_threads(0)
    spec = QUICK["memory"] if quick else MEMORY
    cfg = from_dict({**spec, "data": {**spec["data"], "num_clients": clients}})
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scoring = Scoring.make(fed, model, "head", "full", 0, 0, cfg.seed)
    for method in cfg.personalize.methods:
        personalize_all(model, weights, fed, cfg, method, scoring)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"clients": clients, "peak_mib": peak, "before_personalization_mib": base}


def _memory(clients: int, quick: bool) -> dict[str, float]:
    return _child("memory_child", f"{clients}, {quick}")


def _child(function: str, args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `function(args)` of this module in a fresh Python process (with `env`, else this one's); its JSON result."""
    code = f"import json; from pftlab import bench; print(json.dumps(bench.{function}({args})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {function}({args}) failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def work_child(side: str, quick: bool = False) -> dict[str, float]:
    """In a child process: one side's workload; peak RSS above what data and model already took (MiB)."""
    set_threads(0)
    cfg = from_dict(QUICK["workload"] if quick else WORKLOAD)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if side == "pftlab":
        pftlab_work(model, weights, fed, cfg)
    else:
        order = lambda client, epoch, n: numpy_rng(cfg.seed, "personalize", client, epoch).permutation(n)  # noqa: E731
        params = {m: cfg.method_params(m).model_dump() for m in METHODS}
        reference_module().run(model, fed, params, cfg.personalize, order)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mib": round(peak - before, 1), "before_mib": round(before, 1)}  # peak_mib: added by the work


def busy_neighbour() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy (`while True: pass`), returned once it has run: its CPU
    time has ticked (a state, not a clock), so it is there when threads are chosen."""
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    stat = Path(f"/proc/{neighbour.pid}/stat")
    for _ in range(100_000):
        try:
            if int(stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()[11]) > 0:
                break
        except (OSError, IndexError, ValueError):
            break  # no /proc: it is started, which is what can be known
        os.sched_yield()
    return neighbour


def contention_child(busy: bool, quick: bool = False) -> dict[str, Any]:
    """In a child process: both sides' timed work, alone or beside one busy process, with the
    thread count pftlab's default (runtime.threads = 0) chooses then."""
    neighbour = busy_neighbour() if busy else None
    try:
        choice = apply_threads(0)
        cfg = from_dict(QUICK["workload"] if quick else WORKLOAD)
        fed = build_federation(cfg.data, cfg.seed)
        model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
        weights, _, _ = global_model(model, fed, cfg)  # not timed; cached per thread count
        _, t_ours = timed(lambda: pftlab_work(model, weights, fed, cfg))
        model.load_state_dict(weights)
        params = {m: cfg.method_params(m).model_dump() for m in METHODS}
        order = lambda client, epoch, n: numpy_rng(cfg.seed, "personalize", client, epoch).permutation(n)  # noqa: E731
        _, t_ref = timed(lambda: reference_module().run(model, fed, params, cfg.personalize, order))
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return {
        "threads": choice.threads,
        "threads_rule": choice.rule,
        "pftlab_s": round(t_ours, 3),
        "reference_s": round(t_ref, 3),
        "ratio": round(t_ref / t_ours, 3),
    }


def contended(quick: bool) -> dict[str, Any]:
    """The workload's timed work alone and beside one busy process, each in its own child process
    (same code, same warm-up): pftlab's slowdown and both ratios to the reference. The children
    choose their threads as runtime.threads = 0 does when $PFTLAB_THREADS is not set."""
    sampled = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    alone = _child("contention_child", f"False, {quick}", sampled)
    busy = _child("contention_child", f"True, {quick}", sampled)
    return {
        "alone": alone,
        "busy_neighbour": busy,
        "pftlab_slowdown": round(busy["pftlab_s"] / alone["pftlab_s"], 3),
        "targets": {"pftlab_slowdown_max": CONTENDED_SLOWDOWN, "ratio": "busy_neighbour.ratio >= alone.ratio"},
    }


def _mean_ci(values: list[float]) -> dict[str, Any]:
    """Mean and Student's t 95% interval over repeats (>= 2)."""
    got = np.array(values, dtype=float)
    return {"mean": round(float(got.mean()), 4), "ci95": paired_interval(got)["ci95"], "n": len(got)}


def contended_repeats(repeats: int, quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The contended scenario `repeats` times: each repeat is a pair of child processes (alone,
    beside one busy process), their order alternating from pair to pair so a drift of the
    machine's speed falls on both scenarios alike. Per pair: pftlab's slowdown and the change of
    its ratio to the reference (beside a neighbour minus alone); over pairs, their means with
    Student's t 95% intervals. One pair cannot tell a change of the ratio from the noise between
    two measurements of the same scenario (several hundredths on this workload); repeats can."""
    if repeats < 2:
        raise UserError(f"--contended {repeats}: at least 2 pairs (an interval over pairs needs two)")
    sampled = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    pairs: list[dict[str, Any]] = []
    for i in range(repeats):
        got: dict[bool, dict[str, Any]] = {}
        for busy in (False, True) if i % 2 == 0 else (True, False):
            got[busy] = _child("contention_child", f"{busy}, {quick}", sampled)
        alone, busy_ = got[False], got[True]
        pair = {
            "order": "alone first" if i % 2 == 0 else "busy first",
            "alone": alone,
            "busy_neighbour": busy_,
            "pftlab_slowdown": round(busy_["pftlab_s"] / alone["pftlab_s"], 4),
            "ratio_change": round(busy_["ratio"] - alone["ratio"], 4),
            "ratio_relative": round(busy_["ratio"] / alone["ratio"], 4),
        }
        pairs.append(pair)
        say(
            f"pair {i + 1}/{repeats} ({pair['order']}): pftlab {alone['pftlab_s']:.1f} s alone, "
            f"{busy_['pftlab_s']:.1f} s beside a busy process; ratio {alone['ratio']:.2f}x -> {busy_['ratio']:.2f}x"
        )
    return {
        "pairs": pairs,
        "pftlab_slowdown": _mean_ci([p["pftlab_slowdown"] for p in pairs]),
        "ratio_change": _mean_ci([p["ratio_change"] for p in pairs]),
        "ratio_relative": _mean_ci([p["ratio_relative"] for p in pairs]),
        "targets": {"pftlab_slowdown_max": CONTENDED_SLOWDOWN, "ratio_change": ">= 0 (no worse than alone)"},
        "quick": quick,
    }


def contended_markdown(r: dict[str, Any]) -> str:
    """contended.md: every pair, then the means with their intervals."""
    lines = [
        "# pftlab bench --contended",
        "",
        "The timed work (pftlab's and the reference's) in child processes, alone and beside one busy process "
        "(`while True: pass`), threads as pftlab's default chooses them; the pairs' order alternates.",
        "",
        "| pair | order | threads alone / busy | pftlab alone | pftlab busy | slowdown | ratio alone | ratio busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, p in enumerate(r["pairs"], 1):
        a, b = p["alone"], p["busy_neighbour"]
        lines.append(
            f"| {i} | {p['order']} | {a['threads']} / {b['threads']} | {a['pftlab_s']:.2f} s | {b['pftlab_s']:.2f} s "
            f"| {p['pftlab_slowdown']:.3f}x | {a['ratio']:.3f}x | {b['ratio']:.3f}x |"
        )
    s, c, rel = r["pftlab_slowdown"], r["ratio_change"], r["ratio_relative"]
    lines += [
        "",
        f"- pftlab_slowdown: **{s['mean']:.3f}x** [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] over {s['n']} pairs "
        f"(target <= {r['targets']['pftlab_slowdown_max']})",
        f"- ratio to the reference, beside a neighbour minus alone: **{c['mean']:+.3f}** "
        f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] (target >= 0); as a fraction of alone's: {rel['mean']:.3f} "
        f"[{rel['ci95'][0]:.3f}, {rel['ci95'][1]:.3f}]",
    ]
    return "\n".join(lines) + "\n"


def run_bench(out: Path, say: Callable[[str], None] = print, quick: bool = False) -> dict[str, Any]:
    """Every figure of bench.json; prints progress lines through `say`. `quick`: a seconds-long smoke run."""
    reference = reference_module()
    threads = set_threads(0)
    workload = QUICK["workload"] if quick else WORKLOAD
    small, large = QUICK["clients"] if quick else (100, 1000)
    cfg = from_dict(workload)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    say(f"global model: FedAvg, {cfg.federated.rounds} rounds over {fed.num_clients} clients (cached, not timed)")
    weights, _, _ = global_model(model, fed, cfg)
    sizes = np.array([len(c.test) for c in fed.clients])
    train_x = torch.from_numpy(np.concatenate([c.train.x for c in fed.clients]))
    rows: list[dict[str, Any]] = []

    say("pftlab: FT, LP, LP-FT on every client + cross-client matrices")
    ours, t_ours = timed(lambda: pftlab_work(model, weights, fed, cfg))
    say(f"  {t_ours:.1f} s")
    say("reference loop: the same work, one model object and DataLoader per client")
    model.load_state_dict(weights)
    params = {m: cfg.method_params(m).model_dump() for m in METHODS}
    order = lambda client, epoch, n: numpy_rng(cfg.seed, "personalize", client, epoch).permutation(n)  # noqa: E731
    ref, t_ref = timed(lambda: reference.run(model, fed, params, cfg.personalize, order))
    say(f"  {t_ref:.1f} s")
    rows.append(
        {
            "work": f"FT + LP + LP-FT, {fed.num_clients} clients, full matrices",
            "pftlab_s": t_ours,
            "reference_s": t_ref,
            "pftlab_peak_mib": None,  # filled from child processes below
            "reference_peak_mib": None,
        }
    )
    ours_m, ref_m = metrics(ours, sizes), metrics(ref, sizes)
    diff = max(abs(ours_m[m][k] - ref_m[m][k]) for m in ours_m for k in ours_m[m])

    say("LP against one forward pass over the training data")
    model.load_state_dict(weights)
    _train_only(model, weights, fed, cfg, "lp")  # warm: the first vmap call pays a one-time set-up
    features(model, "head", train_x)
    _, t_forward = timed(lambda: features(model, "head", train_x))
    lp_costs = {}
    for epochs in (cfg.personalize.epochs, 4 * cfg.personalize.epochs):
        budget = cfg.model_copy(update={"personalize": cfg.personalize.model_copy(update={"epochs": epochs})})
        _, t_lp = timed(partial(_train_only, model, weights, fed, budget, "lp"))
        lp_costs[epochs] = t_lp / t_forward
    say("FT training alone, for its FLOP rate")
    _, t_ft = timed(lambda: _train_only(model, weights, fed, cfg, "ft"))
    n_train = sum(len(c.train) for c in fed.clients)
    ft_flops = ft_flops_per_sample(build_model(cfg.model, fed.input_shape, fed.num_classes, 0), fed.input_shape, 32)
    achieved = ft_flops * n_train * cfg.personalize.epochs / t_ft
    peak = matmul_peak()
    rows.append(
        {
            "work": f"LP ({cfg.personalize.epochs} epochs) vs one forward pass",
            "pftlab_s": lp_costs[cfg.personalize.epochs] * t_forward,
            "reference_s": None,
            "pftlab_peak_mib": None,
            "reference_peak_mib": None,
        }
    )

    say("peak memory of each side's work, each in its own child process")
    for side in ("pftlab", "reference"):
        got = _child("work_child", f"{side!r}, {quick}")
        rows[0][f"{side}_peak_mib"], rows[0][f"{side}_added_mib"] = got["before_mib"] + got["peak_mib"], got["peak_mib"]
    say(f"memory: {small} and {large} clients holding the same data (child processes)")
    mem100, mem1000 = _memory(small, quick), _memory(large, quick)
    say("contended: the timed work alone, then beside one busy process (child processes, default threads)")
    contention = contended(quick)
    say(
        f"  pftlab {contention['alone']['pftlab_s']:.1f} s alone, {contention['busy_neighbour']['pftlab_s']:.1f} s "
        f"beside a busy process ({contention['pftlab_slowdown']}x)"
    )
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": threads,
            "cpus": len(os.sched_getaffinity(0)),
        },
        "workload": workload,
        "quick": quick,
        "seconds": {
            "pftlab": round(t_ours, 3),
            "reference": round(t_ref, 3),
            "forward": round(t_forward, 4),
            "ft_training": round(t_ft, 3),
        },
        "speedup_end_to_end": round(t_ref / t_ours, 3),
        "lp_cost_vs_forward": round(lp_costs[cfg.personalize.epochs], 3),
        "lp_cost_vs_forward_4x_epochs": round(lp_costs[4 * cfg.personalize.epochs], 3),
        "memory_ratio_1000_vs_100": round(mem1000["peak_mib"] / mem100["peak_mib"], 3),
        "memory": {"small": mem100, "large": mem1000},
        "ft_flops_fraction_of_peak": round(achieved / peak, 3),
        "ft_gflops": round(achieved / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 2),
        "metrics_max_abs_diff": round(diff, 4),
        "metrics_tolerance": TOLERANCE,
        "contended": contention,
        "metrics": {"pftlab": ours_m, "reference": ref_m},
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench.json", result)
    atomic_write_text(out / "bench.md", bench_markdown(result))
    return result


def run_precision(
    precision: str, device: str, say: Callable[[str], None] = print, quick: bool = False, repeats: int = 2
) -> dict[str, Any]:
    """The pftlab side of the workload (FT, LP, LP-FT on every client and the full matrices) in fp32
    and in `precision` on `device`, alternating, `repeats` times each (the fastest counts): the
    speed-up of `precision` over fp32 and the largest metric difference. The global model is the
    same fp32 checkpoint for both."""
    set_threads(0)
    target = resolve_compute(device, precision)
    cfg = from_dict(QUICK["workload"] if quick else WORKLOAD)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    say(f"global model: FedAvg, {cfg.federated.rounds} rounds over {fed.num_clients} clients (cached, not timed)")
    weights, _, _ = global_model(model, fed, cfg)
    model = model.to(target.device)
    weights = {k: v.to(target.device) for k, v in weights.items()}
    sizes = np.array([len(c.test) for c in fed.clients])
    best: dict[str, float] = {}
    found: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(repeats):
        for p in (precision, "fp32") if precision != "fp32" else ("fp32",):
            with using_compute(Compute(target.device, p)):
                say(f"{p} on {target.device}: FT, LP, LP-FT on every client + cross-client matrices")
                correct, seconds = timed(lambda: pftlab_work(model, weights, fed, cfg))
            say(f"  {seconds:.1f} s")
            best[p] = min(best.get(p, float("inf")), seconds)
            found[p] = metrics(correct, sizes)
    diff = max(abs(found[precision][m][k] - found["fp32"][m][k]) for m in found["fp32"] for k in found["fp32"][m])
    return {
        **target.describe(),
        "workload": cfg.data.benchmark,
        "quick": quick,
        "threads": torch.get_num_threads(),
        "seconds": {p: round(t, 3) for p, t in best.items()},
        "speedup_vs_fp32": round(best["fp32"] / best[precision], 3),
        "metrics_max_abs_diff": round(diff, 4),
        "metrics": found,
    }


def precision_markdown(r: dict[str, Any]) -> str:
    return (
        f"| precision | device | seconds | speed-up vs fp32 | metrics max abs diff (points) |\n|---|---|---|---|---|\n"
        f"| {r['precision']} | {r['device']} ({r['device_name']}) | {r['seconds'][r['precision']]:.1f} "
        f"(fp32 {r['seconds']['fp32']:.1f}) | {r['speedup_vs_fp32']}x | {r['metrics_max_abs_diff']} |\n"
    )


def _train_only(model: nn.Module, weights: Weights, fed: FederatedData, cfg: Config, method: str) -> None:
    """Personalization without evaluation, every client, through the engine the runner uses."""
    params = cfg.method_params(method)
    head_only = recipe(method).backbone_frozen(params, cfg.personalize)
    for ids in client_chunks(fed, cfg.runtime.batch_clients * (HEAD_CHUNKS if head_only else 1)):
        personalize_chunk(model, weights, method, params, cfg, [fed.clients[i] for i in ids], "head")


def bench_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['processor']}, {m['cpus']} CPUs, {m['threads']} torch threads, torch {m['torch']}",
        "",
        "| work | pftlab | reference | ratio | peak RSS, pftlab / reference (added by the work) |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        ref = f"{row['reference_s']:.1f} s" if row["reference_s"] is not None else "-"
        ratio = f"{row['reference_s'] / row['pftlab_s']:.2f}x" if row["reference_s"] is not None else "-"
        mem = (
            f"{row['pftlab_peak_mib']:.0f} / {row['reference_peak_mib']:.0f} MiB "
            f"(+{row['pftlab_added_mib']:.0f} / +{row['reference_added_mib']:.0f})"
            if row["pftlab_peak_mib"] is not None
            else "-"
        )
        lines.append(f"| {row['work']} | {row['pftlab_s']:.2f} s | {ref} | {ratio} | {mem} |")
    lines += [
        "",
        f"- speedup_end_to_end: **{r['speedup_end_to_end']}x** (target >= 5)",
        f"- lp_cost_vs_forward: **{r['lp_cost_vs_forward']}** at {r['workload']['personalize']['epochs']} epochs, "
        f"{r['lp_cost_vs_forward_4x_epochs']} at 4x as many (target <= 1.3; both warm)",
        f"- memory_ratio_1000_vs_100: **{r['memory_ratio_1000_vs_100']}** "
        f"({r['memory']['large']['peak_mib']:.0f} MiB with {r['memory']['large']['clients']} clients / "
        f"{r['memory']['small']['peak_mib']:.0f} MiB with {r['memory']['small']['clients']}, peak RSS; target <= 1.5)",
        f"- ft_flops_fraction_of_peak: **{r['ft_flops_fraction_of_peak']}** ({r['ft_gflops']} GFLOP/s of FT training "
        f"against {r['matmul_peak_gflops']} GFLOP/s fp32 matmul)",
        f"- metrics_max_abs_diff: **{r['metrics_max_abs_diff']}** points between pftlab and the reference "
        f"(tolerance {r['metrics_tolerance']})",
    ]
    if "contended" in r:
        c = r["contended"]
        a, b = c["alone"], c["busy_neighbour"]
        lines += [
            "",
            "Contended: the timed work in child processes, alone and beside one busy process "
            "(`while True: pass`), threads as pftlab's default chooses them:",
            "",
            "| scenario | threads | pftlab | reference | ratio |",
            "|---|---|---|---|---|",
            f"| alone | {a['threads']} | {a['pftlab_s']:.2f} s | {a['reference_s']:.2f} s | {a['ratio']:.2f}x |",
            f"| one busy neighbour | {b['threads']} | {b['pftlab_s']:.2f} s | {b['reference_s']:.2f} s | "
            f"{b['ratio']:.2f}x |",
            "",
            f"- pftlab_slowdown: **{c['pftlab_slowdown']}x** beside a busy process (target <= "
            f"{c['targets']['pftlab_slowdown_max']}); ratio to the reference {b['ratio']:.2f}x against "
            f"{a['ratio']:.2f}x alone (target: no worse)",
        ]
    return "\n".join(lines) + "\n"
