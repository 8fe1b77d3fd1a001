"""One experiment end to end: federation -> global model -> personalization x clients -> matrices.

Each step is a plain function call; this file only wires them and reports progress.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from safetensors import safe_open
from torch import nn

from pftlab import __version__
from pftlab.core.allocator import keep_freed_memory
from pftlab.core.args import check_outputs
from pftlab.core.compute import current as current_compute
from pftlab.core.compute import on_device, using
from pftlab.core.compute import resolve as resolve_compute
from pftlab.core.errors import UserError
from pftlab.core.heartbeat import Heartbeat
from pftlab.core.io import config_hash, load_weights, save_weights, write_json
from pftlab.core.sealed import MANIFEST, read_sealed, verify_folder, write_manifest, write_sealed
from pftlab.core.threads import ThreadChoice, choose_threads
from pftlab.core.weights import Weights, all_finite
from pftlab.data.augment import training_augment
from pftlab.data.benchmarks import build_federation
from pftlab.evaluate.choice import SEPARATOR, Rule, ValidationPool, named, objective, others_mean
from pftlab.evaluate.distortion import KEYS as DISTORTION_KEYS
from pftlab.evaluate.distortion import no_distortion
from pftlab.evaluate.matrix import accuracy
from pftlab.evaluate.scoring import Scores, Scoring
from pftlab.experiment.checkpoint import checkpoint_key, global_model, stage_seconds, stage_stats
from pftlab.experiment.config import Config
from pftlab.experiment.results import write_results
from pftlab.models import build_model
from pftlab.models.identity import compute_identity, model_identity
from pftlab.models.init import load_init
from pftlab.personalize import METHODS, Baseline, Method, personalize_batch, personalize_client, recipe, supports
from pftlab.personalize.baselines import train_baseline
from pftlab.training.loop import trained_params

ModelFn = Callable[[tuple[int, ...], int], nn.Module]


def apply_threads(threads: int, out: Path | None = None) -> ThreadChoice:
    """Set the process up for heavy work: torch intra-op threads (the configured number; for 0 the
    count the run folder `out`'s saved results used, else the cores free now: pftlab.core.threads)
    and an allocator that keeps freed memory (pftlab.core.allocator)."""
    keep_freed_memory()
    choice = choose_threads(threads, saved_threads(out) if out is not None and not threads else None)
    torch.set_num_threads(choice.threads)
    return choice


def set_threads(threads: int) -> int:
    """apply_threads without a run folder; the thread count."""
    return apply_threads(threads).threads


def saved_threads(out: Path) -> int | None:
    """The thread count the run folder's results were computed with: its finished manifest's, else
    the one recorded when its unfinished results began; None if neither is readable."""
    for path, keys in ((out / MANIFEST, ("key_parts", "compute", "threads")), (out / RESULTS / THREADS, ("threads",))):
        try:
            found: Any = json.loads(path.read_text(encoding="utf-8"))
            for k in keys:
                found = found[k]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            continue
        if isinstance(found, int) and not isinstance(found, bool):
            return found
    return None


def no_distortion_arrays(n: int) -> dict[str, np.ndarray]:
    return {k: np.full(n, v) for k, v in no_distortion().items()}


HEAD_CHUNKS = 16  # a head-only recipe batches this many times more clients per chunk


def client_chunks(fed: Any, size: int) -> list[list[int]]:
    """Clients ordered by training-set size, cut into chunks: similar sizes pad little when batched."""
    order = sorted(range(fed.num_clients), key=lambda i: (len(fed.clients[i].train), i))
    return [order[i : i + size] for i in range(0, len(order), size)]


def use_batched(model: nn.Module, spec: Any, params: Any, cfg: Config) -> bool:
    """`auto` batches head-only recipes: measured on 2 CPU cores, vmap's grouped convolutions train the
    small CNN about 1.8x slower than one client at a time, while head steps are all overhead (docs/engine.md)."""
    if cfg.runtime.engine == "loop" or not supports(model, spec, params, cfg.personalize):
        return False
    return cfg.runtime.engine == "batched" or spec.backbone_frozen(params, cfg.personalize)


def personalize_chunk(
    model: nn.Module, start: Weights, method: str, params: Any, cfg: Config, clients: list[Any], head: str
) -> list[Weights | str]:
    """Each client's personalized weights, or why it failed (a non-finite loss or weight)."""
    spec = recipe(method)
    augmented = any(training_augment(c.train) for c in clients)  # the batched engine does not augment
    if use_batched(model, spec, params, cfg) and not augmented:
        results, losses = personalize_batch(
            model,
            start,
            spec,
            params,
            cfg.personalize,
            [c.train for c in clients],
            [c.client_id for c in clients],
            cfg.seed,
            head,
        )
        return [
            w if math.isfinite(loss) else f"client {c.client_id}: training loss or weights became {loss}"
            for c, w, loss in zip(clients, results, losses, strict=True)
        ]
    out: list[Weights | str] = []
    for c in clients:
        try:
            w = personalize_client(model, start, spec, params, cfg.personalize, c.train, cfg.seed, c.client_id, head)
            out.append(w if all_finite(w) else "personalized weights are not finite")
        except FloatingPointError as err:
            out.append(str(err))
    return out


RuleResult = tuple[Scores, list[dict[str, Any]], dict[str, np.ndarray], list[dict[str, Any]]]


def personalize_all(
    model: nn.Module,
    global_weights: Weights,
    fed: Any,
    cfg: Config,
    method: str,
    scoring: Scoring,
    advance: Callable[[int], None] = lambda n: None,
    head: str = "head",
    store: Path | None = None,
    key: str = "",
) -> tuple[Scores, list[dict[str, Any]], dict[str, np.ndarray], list[dict[str, Any]], list[float]]:
    """personalize_rules for the first choice rule alone: its scores, choices, distortion and failed
    clients, and the seconds of reused chunks."""
    by_rule, reused = personalize_rules(model, global_weights, fed, cfg, method, scoring, advance, head, store, key)
    return (*by_rule[cfg.choice.rules[0]], reused)


def personalize_rules(
    model: nn.Module,
    global_weights: Weights,
    fed: Any,
    cfg: Config,
    method: str,
    scoring: Scoring,
    advance: Callable[[int], None] = lambda n: None,
    head: str = "head",
    store: Path | None = None,
    key: str = "",
    follow: Followed | None = None,
) -> tuple[dict[str, RuleResult], list[float]]:
    """Per choice rule (cfg.choice.rules): one method's scores (the hit matrix, or sampled scores),
    each client's search choice, distortion and failed clients; and the seconds each reused chunk
    took when it was computed (NaN when its run did not record them).

    Clients run a chunk at a time (batched where the engine covers the recipe). Every client is
    personalized from the global weights with each grid point, once; each rule keeps the point
    with the best validation objective (pftlab.evaluate.choice; the first on ties), and a point
    two rules both chose is scored once. Test data plays no part in any choice. A finished chunk
    is sealed under `store` with the method's `key` (see `method_key`), so an interrupted run
    resumes there and a rerun with more methods reuses it; a chunk that does not verify is
    recomputed. A control (`follow`: the followed method's choices, per rule and client) chooses
    nothing: each client trains at the point the followed method chose for it under each rule.
    """
    candidates = cfg.search_grid(method)
    if getattr(METHODS[method], "follows", "") and len(candidates) > 1 and not follow:
        raise ValueError(f"{method} is a control of a method with a grid: pass that method's choices (follow)")
    rules = cfg.choice.rules
    n = fed.num_clients
    results: dict[str, RuleResult] = {r: _empty_result(scoring, n) for r in rules}
    reused: list[float] = []
    spec = recipe(method)
    pool = None if follow else _validation_pool(fed, cfg, len(candidates))
    head_only = all(use_batched(model, spec, p, cfg) and spec.backbone_frozen(p, cfg.personalize) for p in candidates)
    chunk = cfg.runtime.batch_clients * (HEAD_CHUNKS if head_only else 1)  # head steps are tiny: batch more
    for index, ids in enumerate(client_chunks(fed, chunk)):
        path = store / f"chunk-{index}.json" if store else None
        done = _load_chunk(path, key, ids, rules)
        if done is None:
            t0 = time.perf_counter()
            done = _run_chunk(model, global_weights, fed, cfg, method, candidates, ids, scoring, head, pool, follow)
            done["seconds"] = time.perf_counter() - t0
            if path is not None:
                write_sealed(path, key, done)
        else:
            reused.append(float(done.get("seconds", math.nan)))
        for rule in rules:
            part = _rule_part(done, rule, rules)
            rows, chosen, dist, failed = results[rule]
            failed += _fill(scoring, rows, dist, {"clients": done["clients"], **part})
            chosen += part["chosen"]
        advance(len(ids))
    for r in rules:
        rows, chosen, dist, failed = results[r]
        results[r] = (rows, sorted(chosen, key=lambda c: c["client"]), dist, sorted(failed, key=lambda f: f["client"]))
    return results, reused


def _empty_result(scoring: Scoring, n: int) -> RuleResult:
    return scoring.empty(), [], {k: np.full(n, np.nan) for k in DISTORTION_KEYS}, []


def _rule_part(done: dict[str, Any], rule: str, rules: list[Rule]) -> dict[str, Any]:
    """A saved chunk's rows, distortion, choices and failures for one rule: the first rule's at its
    top level (the layout of chunks saved before choice rules existed), the others' under `more`."""
    part: dict[str, Any] = done if rule == rules[0] else done["more"][rule]
    return {k: part[k] for k in ("rows", "distortion", "chosen", "failed")}


def _validation_pool(fed: Any, cfg: Config, grid_points: int) -> ValidationPool | None:
    """The other clients' validation images, when a cross-site rule has a choice to make."""
    if "cross-site" not in cfg.choice.rules or cfg.choice.weight == 0 or grid_points < 2:
        return None
    return ValidationPool.of(fed.clients, cfg.choice.pool_images, cfg.seed)


@dataclass(frozen=True)
class Pick:
    """One rule's choice for one client: the grid point, its weights (or why it failed), and its
    validation scores (NaN without a grid: nothing to choose)."""

    index: int
    params: Any
    weights: Weights | str
    score: float  # the rule's objective
    own: float  # accuracy on the client's own validation split
    others: float  # mean accuracy on the other clients' pooled validation images (NaN: not scored)

    def record(self, client: int, rule: str) -> dict[str, Any]:
        out = {"client": client, "params": self.params.model_dump(mode="json"), "val_accuracy": self.own}
        if rule != "local":  # the other clients' accuracy is not scored with weight 0 (JSON has no NaN: None)
            out |= {"val_others": None if math.isnan(self.others) else self.others, "objective": self.score}
        return out


def choose(
    model: nn.Module,
    global_weights: Weights,
    method: str,
    candidates: list[Any],
    cfg: Config,
    clients: list[Any],
    head: str = "head",
    pool: ValidationPool | None = None,
    ids: list[int] | None = None,
) -> list[dict[str, Pick]]:
    """Per client, per choice rule: the best grid point on validation data (pftlab.evaluate.choice).

    Every point starts from the global weights and is trained once; the first on ties wins, and a
    point that failed loses to any that did not. `pool` (the validation images of every client)
    and `ids` (each of `clients`' row in it) serve the cross-site rule; without them it is the
    local rule. Flower's nodes call this too, with the local rule.
    """
    best: list[dict[str, Pick]] = [{} for _ in clients]
    scored = len(candidates) > 1
    for g, params in enumerate(candidates):
        for k, w in enumerate(personalize_chunk(model, global_weights, method, params, cfg, clients, head)):
            own = others = float("nan")
            if scored and not isinstance(w, str):
                model.load_state_dict(w)
                own = accuracy(model, clients[k].val)
                if pool is not None and ids is not None:
                    others = others_mean(pool.accuracies(model), ids[k])
            keep_best(best[k], cfg, g, params, w, own, others)
    return best


def keep_best(
    best: dict[str, Pick], cfg: Config, g: int, params: Any, w: Weights | str, own: float, others: float
) -> None:
    """Keep grid point g for each rule it beats the held point on (the first on ties; a failed point
    loses to any that did not fail). Points must come in grid order. Flower's server chooses with it too."""
    for rule in cfg.choice.rules:
        pick = Pick(g, params, w, objective(rule, own, others, cfg.choice.weight), own, others)
        held = best.get(rule)
        if held is None or (not isinstance(w, str) and (isinstance(held.weights, str) or pick.score > held.score)):
            best[rule] = pick


Followed = dict[Rule, dict[int, dict[str, Any]]]  # per rule, per client id: the followed method's choice record


def _run_chunk(
    model: nn.Module,
    global_weights: Weights,
    fed: Any,
    cfg: Config,
    method: str,
    candidates: list[Any],
    ids: list[int],
    scoring: Scoring,
    head: str,
    pool: ValidationPool | None = None,
    follow: Followed | None = None,
) -> dict[str, Any]:
    clients = [fed.clients[i] for i in ids]
    if follow:
        best = _followed_picks(model, global_weights, cfg, method, candidates, clients, head, follow)
    else:
        best = choose(model, global_weights, method, candidates, cfg, clients, head, pool, ids)
    spec = recipe(method)
    return _scored(
        model,
        scoring,
        cfg,
        ids,
        [c.client_id for c in clients],
        best,
        len(candidates) > 1,
        lambda params: spec.backbone_frozen(params, cfg.personalize),
    )


def _followed_picks(
    model: nn.Module,
    global_weights: Weights,
    cfg: Config,
    method: str,
    candidates: list[Any],
    clients: list[Any],
    head: str,
    follow: Followed,
) -> list[dict[str, Pick]]:
    """A control's picks: each client trained at the grid point the followed method chose for it
    under each rule (once where the rules agree). Its choice records are the followed method's
    (the validation scores of that method's model, which made the choice); a client the followed
    method failed on fails here too."""
    points = [p.model_dump(mode="json") for p in candidates]
    followed = getattr(METHODS[method], "follows", "")
    wanted: list[dict[Rule, int | str]] = []  # per client, per rule: the grid index, or why there is none
    for c in clients:
        records = {rule: follow[rule].get(c.client_id) for rule in cfg.choice.rules}
        wanted.append(
            {
                rule: points.index(r["params"]) if r else f"{followed} failed for this client under the {rule} rule"
                for rule, r in records.items()
            }
        )
    trained: dict[tuple[int, int], Weights | str] = {}
    for g, params in enumerate(candidates):
        who = [k for k, per in enumerate(wanted) if g in per.values()]
        if who:
            for k, w in zip(
                who,
                personalize_chunk(model, global_weights, method, params, cfg, [clients[k] for k in who], head),
                strict=True,
            ):
                trained[k, g] = w
    best: list[dict[str, Pick]] = []
    for k, per in enumerate(wanted):
        picks: dict[str, Pick] = {}
        for rule, point in per.items():
            if isinstance(point, str):
                picks[rule] = Pick(-1, candidates[0], point, math.nan, math.nan, math.nan)
                continue
            r = follow[rule][clients[k].client_id]
            others = math.nan if r.get("val_others") is None else float(r["val_others"])
            own = float(r["val_accuracy"])
            picks[rule] = Pick(point, candidates[point], trained[k, point], float(r.get("objective", own)), own, others)
        best.append(picks)
    return best


def _scored(
    model: nn.Module,
    scoring: Scoring,
    cfg: Config,
    ids: list[int],
    client_ids: list[int],
    best: list[dict[str, Pick]],
    grid: bool,
    frozen: Callable[[Any], bool],
) -> dict[str, Any]:
    """A chunk as it is saved: per rule, each client's scores, distortion, choice (with a grid) or
    failure; a point two rules both chose is scored once."""
    rules = cfg.choice.rules
    out: dict[str, Any] = {"clients": ids, **_part(), "more": {r: _part() for r in rules[1:]}}
    for client, picks in zip(client_ids, best, strict=True):
        made: dict[int, tuple[dict[str, Any], dict[str, float] | None]] = {}
        for rule in rules:
            part = out if rule == rules[0] else out["more"][rule]
            pick = picks[rule]
            if isinstance(pick.weights, str):
                part["rows"].append(scoring.failed_row())
                part["distortion"].append(None)
                part["failed"].append({"client": client, "reason": pick.weights})
                continue
            if pick.index not in made:
                made[pick.index] = scoring.row(model, pick.weights, frozen(pick.params), client)
            row, d = made[pick.index]
            part["rows"].append(row)
            part["distortion"].append(d)
            if grid:
                part["chosen"].append(pick.record(client, rule))
    if not out["more"]:
        del out["more"]  # one rule: the layout of chunks saved before choice rules existed
    return out


def _part() -> dict[str, list[Any]]:
    return {"rows": [], "distortion": [], "chosen": [], "failed": []}


def _fill(scoring: Scoring, rows: Scores, dist: dict[str, np.ndarray], done: dict[str, Any]) -> list[dict[str, Any]]:
    """Write a chunk's rows and distortions into the method's arrays; return its failed clients."""
    for i, row, d in zip(done["clients"], done["rows"], done["distortion"], strict=True):
        scoring.fill(rows, i, row)
        for k in DISTORTION_KEYS:
            dist[k][i] = d[k] if d else np.nan
    failed: list[dict[str, Any]] = done["failed"]
    return failed


def _load_chunk(path: Path | None, key: str, ids: list[int], rules: list[Rule] | None = None) -> dict[str, Any] | None:
    """A saved chunk, or None when absent, not verified (edited, damaged, another computation's)
    or not these clients with a row per client for every rule: then it is recomputed."""
    if path is None:
        return None
    done, _ = read_sealed(path, key)
    if not isinstance(done, dict) or done.get("clients") != ids:
        return None
    rules = rules or ["local"]
    try:
        if any(len(_rule_part(done, r, rules)["rows"]) != len(ids) for r in rules):
            return None
    except (KeyError, TypeError):
        return None
    return done


def baseline_all(
    make: Callable[[], nn.Module],
    model: nn.Module,
    fed: Any,
    cfg: Config,
    name: str,
    scoring: Scoring,
    head: str,
    on_round: Callable[[int, float], None],
    store: Path | None = None,
    key: str = "",
    follow: Followed | None = None,
) -> tuple[dict[str, RuleResult], list[float]]:
    """A process-integrated baseline: its own federated training, once per grid point, then per
    choice rule each client's best point on validation data, scored as every other method.

    Returns, as personalize_rules, per rule its scores, choices, distortion and failed clients, and
    the seconds of a reused result. Distortion is measured against the global model's features,
    like every other method. The result is sealed under `store` as one chunk of every client, so an
    interrupted run or a rerun with more methods reuses it once it verifies.
    """
    n = fed.num_clients
    rules = cfg.choice.rules
    path = store / "result.json" if store else None
    done = _load_chunk(path, key, list(range(n)), rules)
    reused = [] if done is None else [float(done.get("seconds", math.nan))]
    if done is None:
        t0 = time.perf_counter()
        spec = METHODS[name]
        assert isinstance(spec, Baseline)
        candidates = cfg.search_grid(name)
        pool = None if follow else _validation_pool(fed, cfg, len(candidates))
        best: list[dict[str, Pick]] = [{} for _ in range(n)]
        client_ids: list[int] = []
        for g, params in enumerate(candidates):
            personal, _ = train_baseline(spec, make(), fed, cfg.federated, cfg.seed, params, head, on_round)
            client_ids = [i for i, _ in personal]
            for k, (_, w) in enumerate(personal):
                kept: Weights | str = w if all_finite(w) else "personalized weights are not finite"
                own = others = float("nan")
                if len(candidates) > 1 and not isinstance(kept, str):
                    model.load_state_dict(kept)
                    own = accuracy(model, fed.clients[k].val)
                    if pool is not None:
                        others = others_mean(pool.accuracies(model), k)
                keep_best(best[k], cfg, g, params, kept, own, others)
        done = _scored(model, scoring, cfg, list(range(n)), client_ids, best, len(candidates) > 1, lambda p: False)
        done["clients"] = client_ids
        done["seconds"] = time.perf_counter() - t0
        if path is not None:
            write_sealed(path, key, done)
    results: dict[str, RuleResult] = {}
    for rule in rules:
        rows, _, dist, _ = _empty_result(scoring, n)
        part = _rule_part(done, rule, rules)
        results[rule] = (rows, part["chosen"], dist, _fill(scoring, rows, dist, {"clients": done["clients"], **part}))
    return results, reused


def check_blocks(model: nn.Module, cfg: Config, head: str) -> None:
    """Every phase of every method's plan (each grid point) trains a block the model has: a
    surgical-ft `block` the model lacks is refused now, not after the global stage."""
    for name in cfg.personalize.methods:
        spec = METHODS[name]
        if not isinstance(spec, Method) or spec.custom is not None:
            continue
        for params in cfg.search_grid(name):
            for run in spec.checked_plan(params, cfg.personalize).runs:
                for phase in run.phases:
                    try:
                        trained_params(model, phase.train, head)
                    except UserError as err:
                        raise UserError(f"method.{name}: {err}") from None


# Bump when a change of code changes the numbers a saved result holds (chunks, baselines, runs).
RESULTS_FORMAT = 1
RESULTS = ".results"  # per-method sealed results inside a run directory, kept for reruns
THREADS = "threads.json"  # in RESULTS: the thread count its saved results were computed with


def key_parts(cfg: Config, fed: Any, model: nn.Module, model_fn: ModelFn | None) -> dict[str, Any]:
    """Everything that changes a run's numbers, readable: the resolved config (progress bars aside,
    threads as they are), the partition, the model's identity, the compute setting and the global
    checkpoint's key. `model` must still hold its initial weights."""
    resolved = cfg.resolved()
    resolved.pop("pretrain", None)  # read by `pftlab pretrain` only; model.init's weights are in the model identity
    resolved["runtime"].pop("progress", None)
    resolved["runtime"]["threads"] = torch.get_num_threads()
    made_by = None
    if model_fn is not None:
        made_by = f"{getattr(model_fn, '__module__', '?')}.{getattr(model_fn, '__qualname__', repr(model_fn))}"
    return {
        "format": RESULTS_FORMAT,
        "config": resolved,
        "partition": fed.partition_hash,
        "model": {"built_in": model_fn is None, "model_fn": made_by, **model_identity(model)},
        "compute": compute_identity(model),
        "global": checkpoint_key(fed, cfg, model),
    }


def method_key(parts: dict[str, Any], method: str) -> str:
    """A method's results depend on the run's key parts with the config narrowed to that method (its
    parameters and grid; the bootstrap count, which only the summary uses, left out): adding or
    dropping another method leaves its key, and its results, alone."""
    config = json.loads(json.dumps(parts["config"]))
    config["personalize"]["methods"] = [method]
    config.get("evaluate", {}).pop("bootstrap", None)  # the intervals are made from the rows, not stored in them
    config["method"] = {m: v for m, v in config.get("method", {}).items() if m == method}
    followed = getattr(METHODS[method], "follows", "")  # a control takes its choice from that method's grid
    search = {m: v for m, v in config.pop("search", {}).items() if m in (method, followed)}
    if search:
        config["search"] = search
    return config_hash({**parts, "config": config, "method": method})


def run_experiment(
    cfg: Config,
    out: Path,
    console: Console | None = None,
    model_fn: ModelFn | None = None,
    head: str = "head",
    resume: bool = True,
) -> dict[str, Any]:
    """Run the whole pipeline and write the run directory; return the summary.

    A run directory that holds this run's finished, verified result (manifest.json: every file's
    sha256 and the run key: config, partition, model identity, compute setting) is returned as it
    is. Otherwise each method's sealed result (`.results/`, kept after the run) is reused when it
    verifies for that method's key, so an interrupted run resumes from its finished chunks of
    clients and a rerun with one more method computes that method alone; `resume=False`
    recomputes all.

    `model_fn(input_shape, num_classes)` replaces the configured model with any torch module
    whose last layer is the submodule named `head`; its identity is part of every key.
    """
    compute = resolve_compute(cfg.runtime.device, cfg.runtime.precision)  # a missing device: one line, now
    with using(compute):
        return _run_experiment(cfg, out, console, model_fn, head, resume)


def _run_experiment(
    cfg: Config, out: Path, console: Console | None, model_fn: ModelFn | None, head: str, resume: bool
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    check_outputs(out)  # the run folder and the cache can be written: refused now, not after the compute
    threads = apply_threads(cfg.runtime.threads, out if resume else None)
    if threads.reduced:
        console.print(f"threads: {threads.rule}; set runtime.threads to fix the count (the last digits depend on it)")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fed = build_federation(cfg.data, cfg.seed)
    timings["data"] = time.perf_counter() - t0

    def make(shape: tuple[int, ...], classes: int) -> nn.Module:
        """The starting model (built on the CPU: same seed, same weights), moved to the device."""
        return starting_model(cfg, shape, classes, model_fn, head).to(current_compute().device)

    model = make(fed.input_shape, fed.num_classes)
    check_blocks(model, cfg, head)
    parts = key_parts(cfg, fed, model, model_fn)
    key = config_hash(parts)
    shutil.rmtree(out / ".partial", ignore_errors=True)  # resume state of pftlab before sealed results
    if not resume:
        shutil.rmtree(out / RESULTS, ignore_errors=True)
    else:
        why = verify_folder(out, key)
        if why is None:
            console.print(f"reused the finished run in {out}/ (verified against its manifest); --fresh recomputes it")
            return _in_run_order(json.loads((out / "summary.json").read_text(encoding="utf-8")), cfg)
        if (out / "summary.json").exists():
            console.print(f"not reusing the run in {out}/: {why}; computing it again (verified parts are reused)")
    (out / MANIFEST).unlink(missing_ok=True)  # from here on the folder is not a finished run
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not cfg.runtime.progress,
    )

    def heartbeat(stage: str, total: int) -> Heartbeat:
        """Without bars, a line at least every 30 s of a long stage (rounds or clients done, the time)."""
        say = (lambda text: None) if cfg.runtime.progress else (lambda text: console.print(text, highlight=False))
        return Heartbeat(say, stage, total)

    def log(stage: str, seconds: float, reused: bool) -> None:
        """Without bars (logs, overnight studies), one line per finished stage says where the run is."""
        if not cfg.runtime.progress:
            note = ", partly or wholly reused" if reused else ""
            console.print(f"{stage}: done in {seconds:.0f} s ({time.strftime('%H:%M:%S')}{note})", highlight=False)

    earlier: dict[str, list[float]] = {}  # per stage, the seconds of results reused (recorded when computed)
    with progress if cfg.runtime.progress else nullcontext():
        t0 = time.perf_counter()
        task = progress.add_task(f"global ({cfg.federated.algorithm})", total=cfg.federated.rounds, info="")
        weights, ckpt, reused = global_model(
            model,
            fed,
            cfg,
            functools.partial(_advance_round, progress, task, heartbeat("global model rounds", cfg.federated.rounds)),
            head,
        )
        weights = {k: on_device(v) for k, v in weights.items()}  # a reused checkpoint loads on the CPU
        if reused:
            progress.update(task, completed=cfg.federated.rounds, info=f"reused {ckpt.name[:12]}")
            earlier["global"] = [stage_seconds(ckpt)]
        timings["global"] = time.perf_counter() - t0
        log("global model", timings["global"], reused)

        keys = {m: method_key(parts, m) for m in cfg.personalize.methods}
        stores = {m: out / RESULTS / f"{m}-{k[:16]}" for m, k in keys.items()}
        _drop_stale(out / RESULTS, keep={*stores.values(), out / RESULTS / THREADS})
        write_json(out / RESULTS / THREADS, {"threads": threads.threads})  # what a resume under auto keeps
        pool_size = sum(len(c.test) for c in fed.clients)
        mode = cfg.evaluate.resolve(fed.num_clients, pool_size)
        ev = cfg.evaluate
        scoring = Scoring.make(fed, model, head, mode, ev.sample_images, ev.sample_clients, cfg.seed)
        correct: dict[str, Scores] = {"global-model": scoring.global_row(model)}
        searched: dict[str, list[dict[str, Any]]] = {}
        failed: dict[str, list[dict[str, Any]]] = {}
        distortions: dict[str, dict[str, np.ndarray]] = {"global-model": no_distortion_arrays(fed.num_clients)}
        for method in cfg.personalize.methods:
            t0 = time.perf_counter()
            if METHODS[method].integrated:  # a process-integrated baseline: its own federated training
                rounds = cfg.federated.rounds * len(cfg.search_grid(method))  # once per grid point
                task = progress.add_task(f"baseline {method}", total=rounds, info="")
                by_rule, earlier[method] = baseline_all(
                    lambda: make(fed.input_shape, fed.num_classes),
                    model,
                    fed,
                    cfg,
                    method,
                    scoring,
                    head,
                    functools.partial(_advance_round, progress, task, heartbeat(f"{method} rounds", rounds)),
                    stores[method],
                    keys[method],
                )
                if earlier[method]:
                    progress.update(task, completed=rounds, info="reused")
                    console.print(f"{method}: reused its verified result")
            else:
                follow = None
                if (followed := getattr(METHODS[method], "follows", "")) and len(cfg.search_grid(method)) > 1:
                    follow = {  # a control of a tuned method trains at that method's choice for each client
                        rule: {r["client"]: r for r in searched.get(named(followed, rule, cfg.choice.rules), [])}
                        for rule in cfg.choice.rules
                    }
                task = progress.add_task(f"personalize {method}", total=fed.num_clients, info="")
                by_rule, earlier[method] = personalize_rules(
                    model,
                    weights,
                    fed,
                    cfg,
                    method,
                    scoring,
                    functools.partial(_advance, progress, task, heartbeat(f"{method} clients", fed.num_clients)),
                    head,
                    stores[method],
                    keys[method],
                    follow,
                )
                if chunks := len(earlier[method]):
                    progress.update(task, info=f"reused {chunks} verified chunk(s)")
                    console.print(f"{method}: reused {chunks} verified chunk(s) of clients computed earlier")
            for rule, (rows, chosen, dist, fails) in by_rule.items():
                name = named(method, rule, cfg.choice.rules)
                correct[name], distortions[name], failed[name] = rows, dist, fails
                if chosen:
                    searched[name] = chosen
            timings[method] = time.perf_counter() - t0
            log(method, timings[method], bool(earlier[method]))
            for name, fails in failed.items():
                for f in fails if name.split(SEPARATOR)[0] == method else []:
                    console.print(f"[yellow]{name}: client {f['client']} failed and is left out: {f['reason']}")

    write_global_weights(ckpt, out / "global.safetensors")
    run_info = {
        "pftlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads.threads,
        "threads_rule": threads.rule,
        "allocator": keep_freed_memory(),
        "engine": cfg.runtime.engine,
        "model": {
            **parts["model"],
            **({"init": cfg.model.init, "init_head": cfg.model.init_head} if cfg.model.init else {}),
        },
        "compute": parts["compute"],
        **current_compute().describe(),
        "global_checkpoint": str(ckpt),
        "global_checkpoint_reused": reused,
        "seconds": {
            k: round(v + math.fsum(t for t in earlier.get(k, []) if math.isfinite(t)), 3) for k, v in timings.items()
        },
    }
    if any(earlier.values()):  # "seconds" above adds the compute time that reused results recorded when made
        run_info["resumed"] = {
            "reused_results": {m: len(t) for m, t in earlier.items() if t},
            "seconds_this_run": {k: round(v, 3) for k, v in timings.items()},
            "seconds_unknown": [m for m, t in earlier.items() if any(not math.isfinite(x) for x in t)],
        }
    extra = {"global_stage": stage_stats(ckpt), "failed_clients": {m: f for m, f in failed.items() if f}}
    summary = write_results(
        out, cfg, fed, correct, scoring.pool.sizes, run_info, searched, distortions, extra, scoring.sample
    )
    digest = {k: v if k in ("format", "model", "compute") else config_hash(v) for k, v in parts.items()}
    write_manifest(out, key, digest, {"pftlab": __version__})  # last: the folder is now a finished, verifiable run
    return summary


def write_global_weights(checkpoint: Path, target: Path) -> None:
    """The run's copy of the global checkpoint, without the training time the cache file records:
    the run's files hold only what the config and seed determine, so identical runs write identical bytes."""
    with safe_open(str(checkpoint), framework="pt") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != "seconds"}
    save_weights(target, load_weights(checkpoint), meta)


def _advance(progress: Progress, task: TaskID, beat: Heartbeat, k: int) -> None:
    progress.update(task, advance=k)
    beat.tick(k)


def _advance_round(progress: Progress, task: TaskID, beat: Heartbeat, rnd: int, loss: float) -> None:
    progress.update(task, advance=1, info=f"train loss {loss:.3f}")
    beat.tick(1, f"train loss {loss:.3f}")


def _in_run_order(summary: dict[str, Any], cfg: Config) -> dict[str, Any]:
    rules = cfg.choice.rules
    order = ["global-model", *(named(m, r, rules) for m in cfg.personalize.methods for r in rules)]  # run order
    summary["methods"] = {m: summary["methods"][m] for m in order if m in summary["methods"]}
    return summary


def starting_model(
    cfg: Config, shape: tuple[int, ...], classes: int, model_fn: ModelFn | None = None, head: str = "head"
) -> nn.Module:
    """The model a run starts from, on the CPU: built from the seed (or by model_fn), then model.init's
    weights when given. One place, so a run and the check that reuses it build the same start (the
    start's weights are in the run's key)."""
    module = model_fn(shape, classes) if model_fn else build_model(cfg.model, shape, classes, cfg.seed)
    if cfg.model.init:
        load_init(module, cfg.model.init, cfg.model.init_head, head)
    return module


def finished_run(
    out: Path,
    cfg: Config,
    model_fn: ModelFn | None = None,
    required: tuple[str, ...] | None = None,
    head: str = "head",
) -> dict[str, Any] | None:
    """The summary of this config's finished run in `out` if it verifies (its manifest's key is this
    run's and the files match their sha256: all of them, or the `required` ones), else None.

    Builds the federation and the model to know the key (no training); sets torch's threads as a
    run would, since the thread count is part of the key.
    """
    if not (out / MANIFEST).is_file():
        return None
    apply_threads(cfg.runtime.threads, out)
    fed = build_federation(cfg.data, cfg.seed)
    model = starting_model(cfg, fed.input_shape, fed.num_classes, model_fn, head)  # its weights are in the key
    key = config_hash(key_parts(cfg, fed, model, model_fn))
    if verify_folder(out, key, required) is not None:
        return None
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return _in_run_order(summary, cfg)


def _drop_stale(results: Path, keep: set[Path]) -> None:
    """Saved results of methods no longer in the config, or of another computation, cannot be reused: remove them."""
    if results.is_dir():
        for old in results.iterdir():
            if old not in keep:
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
