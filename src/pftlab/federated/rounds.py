"""Rounds of a federation: the server's side of a round, and the in-process loop over rounds.

`drive_rounds` is the one round driver (sampling, dropout, rejection, aggregation, counts); the
in-process loop and Flower's ServerApp differ only in how the weights reach a client.

A round's updates pass two gates before they are aggregated: a non-finite update is rejected;
then, with >= 3 finite updates, one whose norm exceeds `federated.max_update_norm` times the
round's median is rejected or clipped to that bound (`federated.outlier_updates`). After the
round, a global model with a non-finite weight, or a parameter over `federated.max_weight` in
magnitude, stops the stage with `GlobalStageDiverged` rather than train on from it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.registry import Registry, caller_package
from pftlab.core.weights import Weights
from pftlab.data.dataset import FederatedData
from pftlab.federated import fedadam, fedavg, fedavgm, fedbabu, fedprox, scaffold
from pftlab.federated.algorithm import Algorithm, ClientUpdate, State, dropped, is_finite, mean_loss, snapshot
from pftlab.federated.config import MAX_UPDATE_NORM, FederatedConfig
from pftlab.federated.sampling import participation_schedule

ALGORITHMS: Registry[Algorithm] = Registry("global-stage algorithm", "pftlab.algorithms", Algorithm)
for _a in (fedavg, fedprox, scaffold, fedavgm, fedadam, fedbabu):
    ALGORITHMS.register(_a.ALGORITHM)


def register_algorithm(algorithm: Algorithm, *, origin: str | None = None, replace: bool = False) -> Algorithm:
    """Make a global-stage algorithm available as `federated.algorithm` (from a plugin's code)."""
    return ALGORITHMS.register(algorithm, origin or caller_package(), replace=replace)


class GlobalStageDiverged(UserError):
    """The aggregated model of a round has a non-finite weight or one over `federated.max_weight`."""


@dataclass
class StageStats:
    """What went wrong in a global stage, counted rather than raised."""

    rounds: int = 0
    rounds_skipped: int = 0  # every sampled client dropped out or was rejected
    updates_rejected: int = 0  # client updates with a non-finite loss, weight or extra
    clients_dropped: int = 0  # sampled clients that dropped out before training
    updates_out_of_scale: int = 0  # finite updates over federated.max_update_norm, left out (outlier_updates "reject")
    updates_clipped: int = 0  # finite updates over federated.max_update_norm, scaled down to it ("clip")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RoundResult:
    weights: Weights
    server_state: State
    accepted: list[bool]  # per update, in the order given: aggregated (clipped or not)
    skipped: bool
    loss: float  # sample-weighted mean training loss of the aggregated updates; NaN when skipped
    out_of_scale: list[bool] = field(default_factory=list)  # per update: left out as over max_update_norm
    clipped: list[bool] = field(default_factory=list)  # per update: aggregated after scaling down to the bound


# The fewest finite updates whose median is a scale to judge by: with 3, one out-of-scale update
# cannot move the median; with 2 the median is their mean, which an outlier drags along.
MIN_JUDGED = 3
# The round's median norm is taken as at least this fraction of the global weights' norm: once most
# clients have fit their data they barely move, and an ordinary update of one that has not (a few
# percent of the weights' norm) would otherwise look tens of times the median (measured on heart).
MIN_SCALE = 0.01


def _norm(tensors: Weights, reference: Weights | None = None) -> float:
    """L2 norm (in float64) over the floating-point tensors, as a change from `reference` when given."""
    total = 0.0
    for key, value in tensors.items():
        if value.is_floating_point():
            v = value.double() if reference is None else value.double() - reference[key].double()
            total += float(torch.linalg.vector_norm(v)) ** 2
    return math.sqrt(total)


def update_norm(global_weights: Weights, update: ClientUpdate) -> float:
    """The norm of the update's change of the shared floating-point weights: what `max_update_norm` bounds.

    SCAFFOLD's extras (the change of the client's control variate) follow from that change
    (c_i+ - c_i = (w_global - w_i) / (K lr) - c), so they are not judged on their own; a clipped
    update's extras are scaled by the same factor as its weight change.
    """
    return _norm(update.weights, global_weights)


def round_scale(global_weights: Weights, updates: Sequence[ClientUpdate]) -> tuple[list[float], float]:
    """(each update's norm, the round's scale): the median norm, at least MIN_SCALE times the weights' norm.

    The scale is NaN when the round cannot be judged: fewer than MIN_JUDGED updates, or a scale
    of 0 (nothing moved). Give finite updates only.
    """
    if len(updates) < MIN_JUDGED:
        return [math.nan] * len(updates), math.nan
    norms = [update_norm(global_weights, u) for u in updates]
    shared = {k: global_weights[k] for k in updates[0].weights}
    scale = max(statistics.median(norms), MIN_SCALE * _norm(shared))
    return norms, scale if scale > 0 else math.nan


def norm_ratios(global_weights: Weights, updates: Sequence[ClientUpdate]) -> list[float]:
    """Each update's norm over the round's scale (see `round_scale`); NaN for all when it cannot be judged."""
    norms, scale = round_scale(global_weights, updates)
    return [n / scale for n in norms]


def clip(global_weights: Weights, update: ClientUpdate, factor: float) -> ClientUpdate:
    """The update with its change of the weights, and its extras, scaled by `factor`."""
    weights = dict(update.weights)
    for k, v in update.weights.items():
        if v.is_floating_point():
            g = global_weights[k].double()
            weights[k] = (g + factor * (v.double() - g)).to(v.dtype)
    extra = {k: (v.double() * factor).to(v.dtype) if v.is_floating_point() else v for k, v in update.extra.items()}
    return dataclasses.replace(update, weights=weights, extra=extra)


def server_round(
    algorithm: Algorithm,
    global_weights: Weights,
    updates: Sequence[ClientUpdate],
    server_state: State,
    cfg: FederatedConfig,
    num_clients: int,
    params: Collection[str],
) -> RoundResult:
    """Reject non-finite updates, bound the scale of the rest, aggregate; with none left the round is skipped.

    With >= MIN_JUDGED finite updates and `cfg.max_update_norm` > 0, an update whose norm is over
    that many times the round's scale (its median norm, at least MIN_SCALE times the weights' norm)
    is left out or clipped to it (`cfg.outlier_updates`); the median update is never over, so a
    judged round keeps at least half of its updates.
    `params` are the names of the model's parameters (server optimizers step those, buffers are
    averaged); `num_clients` is the size of the federation (SCAFFOLD's control-variate step).
    """
    n = len(updates)
    use = {i: u for i, u in enumerate(updates) if is_finite(u)}
    out_of_scale, clipped = [False] * n, [False] * n
    if cfg.max_update_norm > 0 and len(use) >= MIN_JUDGED:
        norms, scale = round_scale(global_weights, list(use.values()))
        bound = cfg.max_update_norm * scale  # NaN (never exceeded) when the round cannot be judged
        for i, norm in zip(list(use), norms, strict=True):
            if not norm > bound:
                continue
            if cfg.outlier_updates == "clip":
                use[i], clipped[i] = clip(global_weights, use[i], bound / norm), True
            else:
                del use[i]
                out_of_scale[i] = True
    accepted = [i in use for i in range(n)]
    good = list(use.values())
    if not good:
        return RoundResult(global_weights, server_state, accepted, True, math.nan, out_of_scale, clipped)
    weights, state = algorithm.server_update(global_weights, good, server_state, cfg, num_clients, params)
    return RoundResult(weights, state, accepted, False, mean_loss(good), out_of_scale, clipped)


def blown_up(weights: Weights, params: Collection[str], max_weight: float) -> tuple[str, float] | None:
    """(key, value) of a non-finite weight, else of the largest |parameter| if over max_weight (0: no bound), else None.

    Buffers (BatchNorm statistics) follow the data's scale, not the optimizer's steps, so only
    the parameters are held to the bound; every floating-point tensor must be finite.
    """
    worst: tuple[str, float] | None = None
    for key, value in weights.items():
        if not value.is_floating_point() or value.numel() == 0:
            continue
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            return key, float(value[~finite][0])
        if max_weight > 0 and key in params:
            top = float(value.abs().max())
            if top > max_weight and (worst is None or top > worst[1]):
                worst = key, top
    return worst


def _ids(clients: list[int]) -> str:
    """A client list for a one-line message: at most 20 ids shown."""
    more = f", ... {len(clients) - 20} more" if len(clients) > 20 else ""
    return "[" + ", ".join(str(c) for c in clients[:20]) + more + "]"


def diverged(
    algorithm: str, rnd: int, cfg: FederatedConfig, key: str, value: float, aggregated: list[int], clipped: list[int]
) -> GlobalStageDiverged:
    """The one-line error for a global model that blew up in round `rnd` (0-based; the message counts from 1)."""
    if math.isfinite(value):
        what = f"|weight| {abs(value):.3g} in {key!r} exceeds federated.max_weight = {cfg.max_weight:g}"
    else:
        what = f"weight {key!r} is {value}"
    note = f" (clipped: {_ids(clipped)})" if clipped else ""
    if cfg.max_update_norm > 0:
        bound = f"lower federated.max_update_norm (now {cfg.max_update_norm:g})"
    else:
        bound = f"turn federated.max_update_norm on (now 0; default {MAX_UPDATE_NORM:g})"
    return GlobalStageDiverged(
        f"federated: {algorithm} diverged in round {rnd + 1} of {cfg.rounds}: {what} after aggregating the updates"
        f" of clients {_ids(aggregated)}{note}; lower federated.lr (now {cfg.lr:g}), {bound} to leave out-of-scale"
        ' updates out, or set federated.aggregate = "median"'
    )


@dataclass
class RoundLog:
    """Who took part in one round and what became of their updates."""

    round: int
    sampled: list[int]
    dropped: list[int]  # drew a dropout before training
    missing: list[int]  # asked, but no update came back (a Flower node that failed or stayed silent)
    rejected: list[int]  # their update was non-finite
    skipped: bool  # no update was aggregated: the global weights did not move
    train_loss: float | None  # sample-weighted mean training loss of the aggregated updates
    out_of_scale: list[int] = field(default_factory=list)  # their update was over max_update_norm: left out
    clipped: list[int] = field(default_factory=list)  # their update was over max_update_norm: scaled down

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# (round, the clients to ask, global weights, payload) -> their updates by client id; a client
# that does not answer is simply absent.
Send = Callable[[int, list[int], Weights, State], dict[int, ClientUpdate]]


def drive_rounds(
    algorithm: Algorithm,
    weights: Weights,
    params: Collection[str],
    num_clients: int,
    cfg: FederatedConfig,
    seed: int,
    send: Send,
    on_accept: Callable[[int, ClientUpdate], None] | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> tuple[Weights, StageStats, list[RoundLog]]:
    """The one round driver: sampling, dropout, rejection, aggregation and the counts, for any transport.

    Raises GlobalStageDiverged (a UserError) when a round's aggregated model has a non-finite
    weight or a parameter over cfg.max_weight in magnitude, naming the round and its clients.

    In-process (`run_rounds`) and on Flower (its ServerApp) differ only in `send`: how the global
    weights reach the chosen clients and their updates come back. Updates are aggregated in
    client-id order of the schedule. `on_accept(client, update)` sees each accepted update (the
    in-process loop keeps its client state); `on_round(round, loss)` gets NaN for a skipped round.
    """
    server_state: State = {}
    stats, log = StageStats(), []
    for rnd, chosen in enumerate(participation_schedule(num_clients, cfg.clients_per_round, cfg.rounds, seed)):
        sampled = [int(c) for c in chosen]
        active = [c for c in sampled if not dropped(seed, rnd, c, cfg.dropout)]
        replies = send(rnd, active, weights, algorithm.payload(server_state)) if active else {}
        owners = [c for c in active if c in replies]
        updates = [replies[c] for c in owners]
        result = server_round(algorithm, weights, updates, server_state, cfg, num_clients, params)
        if not result.skipped and (bad := blown_up(result.weights, params, cfg.max_weight)) is not None:
            aggregated = [c for c, ok in zip(owners, result.accepted, strict=True) if ok]
            clipped = [c for c, cut in zip(owners, result.clipped, strict=True) if cut]
            raise diverged(algorithm.name, rnd, cfg, *bad, aggregated, clipped)
        if on_accept is not None:
            for cid, update, ok in zip(owners, updates, result.accepted, strict=True):
                if ok:
                    on_accept(cid, update)
        weights, server_state = result.weights, result.server_state
        finite = [ok or out for ok, out in zip(result.accepted, result.out_of_scale, strict=True)]
        stats.rounds += 1
        stats.rounds_skipped += result.skipped
        stats.updates_rejected += finite.count(False)
        stats.updates_out_of_scale += result.out_of_scale.count(True)
        stats.updates_clipped += result.clipped.count(True)
        stats.clients_dropped += len(sampled) - len(active)
        log.append(
            RoundLog(
                rnd,
                sampled,
                sorted(set(sampled) - set(active)),
                sorted(set(active) - set(owners)),
                [c for c, ok in zip(owners, finite, strict=True) if not ok],
                result.skipped,
                None if result.skipped else result.loss,
                [c for c, out in zip(owners, result.out_of_scale, strict=True) if out],
                [c for c, cut in zip(owners, result.clipped, strict=True) if cut],
            )
        )
        if on_round is not None:
            on_round(rnd, result.loss)
    return weights, stats, log


def run_rounds(
    model: nn.Module,
    fed: FederatedData,
    algorithm: Algorithm,
    cfg: FederatedConfig,
    seed: int,
    head: str = "head",
    on_round: Callable[[int, float], None] | None = None,
) -> tuple[Weights, dict[int, State], StageStats]:
    """(global weights, each client's last accepted state, counts), starting from `model`'s weights.

    `model` is the one module object every client trains in turn; it ends holding the global weights.
    """
    client_states: dict[int, State] = {}

    def send(rnd: int, clients: list[int], weights: Weights, payload: State) -> dict[int, ClientUpdate]:
        return {
            cid: algorithm.local_update(
                model, weights, payload, fed.clients[cid].train, cfg, seed, rnd, cid, client_states.get(cid, {}), head
            )
            for cid in clients
        }

    def keep_state(cid: int, update: ClientUpdate) -> None:
        client_states[cid] = update.client_state

    params = frozenset(n for n, _ in model.named_parameters())
    weights, stats, _ = drive_rounds(
        algorithm, snapshot(model), params, fed.num_clients, cfg, seed, send, keep_state, on_round
    )
    model.load_state_dict(weights)
    return weights, client_states, stats


def run_global_stage(
    model: nn.Module,
    fed: FederatedData,
    cfg: FederatedConfig,
    seed: int,
    on_round: Callable[[int, float], None] | None = None,
    head: str = "head",
) -> tuple[Weights, StageStats]:
    """The global model of cfg.algorithm trained from `model`'s weights; `model` ends holding it."""
    weights, _, stats = run_rounds(model, fed, ALGORITHMS[cfg.algorithm], cfg, seed, head, on_round)
    return weights, stats
