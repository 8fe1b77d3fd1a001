"""A conformance kit for components from other packages, like scikit-learn's `check_estimator`.

A plugin's test suite calls these on its own method, model, algorithm or benchmark; each runs
the component on a tiny synthetic federation (under a second or two on a CPU) and raises
`AssertionError` naming the first property that does not hold:

- `check_method`: its Params validate with their defaults; a recipe fills the epoch budget; the
  result starts from the given global weights (it depends on them and stays nearer to them than
  to another start); two runs give identical weights; where the batched engine runs it, the
  batched result equals the loop's (to float rounding). A baseline runs its federated training
  deterministically and gives every client a complete set of weights.
- `check_model`: the module has a linear head named `head` fed by the backbone's features, its
  output has one score per class, and the same seed builds the same weights.
- `check_algorithm`: with (almost) zero local steps the global model does not move; two runs
  of a global stage give identical weights.
- `check_benchmark`: the quick federation builds; every client has non-empty, disjoint train /
  val / test splits, the same input shape, and labels in range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pftlab.core.weights import Weights
from pftlab.data.benchmarks import BENCHMARKS, build_federation
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.config import DataConfig
from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.federated import Algorithm, ClientUpdate, run_rounds, server_round
from pftlab.federated.algorithm import snapshot
from pftlab.federated.config import FederatedConfig
from pftlab.models import MLP, ModelSpec, head_module
from pftlab.models.config import ModelConfig
from pftlab.personalize import Baseline, Method, personalize_batch, personalize_client, supports
from pftlab.personalize.baselines import train_baseline
from pftlab.personalize.config import PersonalizeConfig

__all__ = ["check_algorithm", "check_benchmark", "check_method", "check_model", "synthetic_federation"]

CLASSES, DIM = 3, 6


def synthetic_federation(num_clients: int = 4, n: int = 40, seed: int = 0) -> FederatedData:
    """Gaussian class blobs, each client skewed toward one class: a label-shifted federation in memory."""
    rng = np.random.default_rng(seed)

    def split(skew: int, name: str) -> Dataset:
        p = np.full(CLASSES, 0.2 / (CLASSES - 1))
        p[skew] = 0.8
        y = rng.choice(CLASSES, size=n, p=p)
        x = (np.eye(CLASSES, DIM)[y] * 3 + rng.normal(size=(n, DIM))).astype(np.float32)
        return Dataset(x, y.astype(np.int64), CLASSES, name)

    clients = [
        ClientData(i, split(i % CLASSES, "train"), split(i % CLASSES, "val"), split(i % CLASSES, "test"))
        for i in range(num_clients)
    ]
    return FederatedData("synthetic", clients, CLASSES, (DIM,), f"synthetic-{num_clients}-{n}-{seed}")


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MLP((DIM,), CLASSES, hidden=8, layers=1)


def _same(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _distance(a: Weights, b: Weights) -> float:
    total = sum(float((a[k].double() - b[k].double()).norm() ** 2) for k in a if a[k].is_floating_point())
    return float(total**0.5)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def check_method(method: Method | Baseline, params: Any = None, epochs: int = 15) -> None:
    """Raise AssertionError unless `method` behaves as every pftlab method must (see the module doc)."""
    _check(bool(method.name) and bool(method.summary), f"{method.name!r}: a method needs a name and a summary")
    params = params if params is not None else method.Params.model_validate({})
    budget = PersonalizeConfig(methods=[method.name], epochs=epochs)
    problem = method.check(params, budget)
    _check(problem is None, f"{method.name}: its own check refuses its defaults at {epochs} epochs: {problem}")
    fed = synthetic_federation()
    if isinstance(method, Baseline):
        _check_baseline(method, params, fed)
        return
    _check(isinstance(method, Method), f"{method.name}: not a Method or Baseline")
    if method.custom is None:
        plan = method.checked_plan(params, budget)  # raises ValueError when a run does not fill the budget
        for run in plan.runs:
            _check(sum(p.epochs for p in run.phases) == epochs, f"{method.name}: a run does not fill {epochs} epochs")
    client = fed.clients[0]
    start, other = snapshot(_mlp(0)), snapshot(_mlp(1))
    runs = []
    for global_rng in (1, 2):  # randomness must come from (seed, client), never from torch's global RNG
        model = _mlp(0)
        torch.manual_seed(global_rng)
        runs.append(personalize_client(model, start, method, params, budget, client.train, 0, client.client_id))
    first, again = runs
    _check(_same(first, again), f"{method.name}: two runs with the same seed gave different weights")
    _check(first.keys() == start.keys(), f"{method.name}: the result's keys differ from the model's")
    from_other = personalize_client(_mlp(0), other, method, params, budget, client.train, 0, client.client_id)
    _check(not _same(first, from_other), f"{method.name}: the result does not depend on the global weights")
    _check(
        _distance(first, start) < _distance(first, other),
        f"{method.name}: the result is nearer another start than the global weights it was given",
    )
    model = _mlp(0)
    if supports(model, method, params, budget):
        clients = fed.clients[:3]
        batched, _ = personalize_batch(
            model, start, method, params, budget, [c.train for c in clients], [c.client_id for c in clients], 0
        )
        for c, w in zip(clients, batched, strict=True):
            looped = personalize_client(_mlp(0), start, method, params, budget, c.train, 0, c.client_id)
            gap = max(float((w[k] - looped[k]).abs().max()) for k in w)
            _check(gap < 1e-4, f"{method.name}: the batched engine differs from the loop by {gap:.2e}")


def _check_baseline(spec: Baseline, params: Any, fed: FederatedData) -> None:
    cfg = FederatedConfig(rounds=2)
    first, stats = train_baseline(spec, _mlp(0), fed, cfg, 0, params)
    again, _ = train_baseline(spec, _mlp(0), fed, cfg, 0, params)
    _check(stats.rounds == 2, f"{spec.name}: ran {stats.rounds} rounds, asked for 2")
    _check([c for c, _ in first] == [c.client_id for c in fed.clients], f"{spec.name}: not one result per client")
    keys = set(snapshot(_mlp(0)))
    for (_, w1), (_, w2) in zip(first, again, strict=True):
        _check(set(w1) == keys, f"{spec.name}: a client's weights do not cover the model")
        _check(_same(w1, w2), f"{spec.name}: two runs with the same seed gave different weights")


def check_model(spec: ModelSpec, input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> None:
    """Raise AssertionError unless the model builds, has a linear `head` and is seeded by the seed alone."""
    problem = spec.accepts(input_shape)
    _check(problem is None, f"model {spec.name!r} refuses input shape {input_shape}: {problem}")
    cfg = ModelConfig(name=spec.name)
    torch.manual_seed(0)
    model = spec.build(cfg, input_shape, num_classes)
    head = head_module(model, "head")
    _check(isinstance(head, nn.Linear), f"model {spec.name!r}: its `head` must be an nn.Linear")
    assert isinstance(head, nn.Linear)
    _check(head.out_features == num_classes, f"model {spec.name!r}: head has {head.out_features} outputs")
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *input_shape))
    _check(tuple(out.shape) == (2, num_classes), f"model {spec.name!r}: output shape {tuple(out.shape)}")
    torch.manual_seed(0)
    twin = spec.build(cfg, input_shape, num_classes)
    _check(_same(snapshot(model), snapshot(twin)), f"model {spec.name!r}: the same seed built different weights")


def check_algorithm(algorithm: Algorithm) -> None:
    """Raise AssertionError unless (almost) zero local steps keep the global model and runs repeat exactly."""
    fed = synthetic_federation()
    model = _mlp(0)
    start = snapshot(model)
    params = frozenset(n for n, _ in model.named_parameters())
    still = FederatedConfig(rounds=1, lr=1e-12)
    payload = algorithm.payload({})
    updates: list[ClientUpdate] = [
        algorithm.local_update(model, start, payload, c.train, still, 0, 0, c.client_id, {}) for c in fed.clients
    ]
    result = server_round(algorithm, start, updates, {}, still, fed.num_clients, params)
    _check(not result.skipped, f"{algorithm.name}: a round of finite updates was skipped")
    gap = max(float((result.weights[k].double() - start[k].double()).abs().max()) for k in start)
    _check(gap < 1e-6, f"{algorithm.name}: with zero local steps the global model moved by {gap:.2e}")
    cfg = FederatedConfig(rounds=2)
    first, _, _ = run_rounds(_mlp(0), fed, algorithm, cfg, 0)
    again, _, _ = run_rounds(_mlp(0), fed, algorithm, cfg, 0)
    _check(_same(first, again), f"{algorithm.name}: two runs with the same seed gave different global weights")


def check_benchmark(benchmark: Benchmark | str, seed: int = 0, **keys: Any) -> FederatedData:
    """Raise AssertionError unless the quick federation is well formed; returns it.

    `keys` are [data] keys for the benchmark (e.g. `path=` for one that reads the user's files).
    """
    bench = BENCHMARKS[benchmark] if isinstance(benchmark, str) else benchmark
    data = DataConfig.model_validate({"benchmark": bench.name, "size": "quick", **keys})
    fed = build_federation(data, seed)
    _check(fed.num_clients >= 2, f"{bench.name}: {fed.num_clients} clients; a federation needs at least 2")
    for c, record in zip(fed.clients, fed.partition, strict=True):
        for split in ("train", "val", "test"):
            ds = getattr(c, split)
            _check(len(ds) > 0, f"{bench.name}: client {c.client_id} has an empty {split} split")
            shape = tuple(ds.x.shape[1:])
            _check(
                shape == tuple(fed.input_shape),
                f"{bench.name}: client {c.client_id}'s {split} inputs have shape {shape}, not {fed.input_shape}",
            )
            _check(
                int(ds.y.min()) >= 0 and int(ds.y.max()) < fed.num_classes,
                f"{bench.name}: client {c.client_id}'s {split} labels fall outside 0..{fed.num_classes - 1}",
            )
        idx = [set(record[s]) for s in ("train", "val", "test")]
        _check(
            not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2]),
            f"{bench.name}: client {c.client_id}'s train / val / test splits overlap",
        )
    return fed
