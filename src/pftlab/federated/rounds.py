"""Rounds of a federation: the server's side of a round, and the in-process loop over rounds.

`drive_rounds` is the one round driver (sampling, dropout, rejection, aggregation, counts); the
in-process loop and Flower's ServerApp differ only in how the weights reach a client.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass

from torch import nn

from pftlab.core.registry import Registry, caller_package
from pftlab.core.weights import Weights
from pftlab.data.dataset import FederatedData
from pftlab.federated import fedadam, fedavg, fedavgm, fedbabu, fedprox, scaffold
from pftlab.federated.algorithm import Algorithm, ClientUpdate, State, dropped, is_finite, mean_loss, snapshot
from pftlab.federated.config import FederatedConfig
from pftlab.federated.sampling import participation_schedule

ALGORITHMS: Registry[Algorithm] = Registry("global-stage algorithm", "pftlab.algorithms", Algorithm)
for _a in (fedavg, fedprox, scaffold, fedavgm, fedadam, fedbabu):
    ALGORITHMS.register(_a.ALGORITHM)


def register_algorithm(algorithm: Algorithm, *, origin: str | None = None, replace: bool = False) -> Algorithm:
    """Make a global-stage algorithm available as `federated.algorithm` (from a plugin's code)."""
    return ALGORITHMS.register(algorithm, origin or caller_package(), replace=replace)


@dataclass
class StageStats:
    """What went wrong in a global stage, counted rather than raised."""

    rounds: int = 0
    rounds_skipped: int = 0  # every sampled client dropped out or was rejected
    updates_rejected: int = 0  # client updates with a non-finite loss, weight or extra
    clients_dropped: int = 0  # sampled clients that dropped out before training

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RoundResult:
    weights: Weights
    server_state: State
    accepted: list[bool]  # per update, in the order given
    skipped: bool
    loss: float  # sample-weighted mean training loss of the accepted updates; NaN when skipped


def server_round(
    algorithm: Algorithm,
    global_weights: Weights,
    updates: Sequence[ClientUpdate],
    server_state: State,
    cfg: FederatedConfig,
    num_clients: int,
    params: Collection[str],
) -> RoundResult:
    """Reject non-finite updates, then aggregate the rest; with none left the round is skipped.

    `params` are the names of the model's parameters (server optimizers step those, buffers are
    averaged); `num_clients` is the size of the federation (SCAFFOLD's control-variate step).
    """
    accepted = [is_finite(u) for u in updates]
    good = [u for u, ok in zip(updates, accepted, strict=True) if ok]
    if not good:
        return RoundResult(global_weights, server_state, accepted, True, math.nan)
    weights, state = algorithm.server_update(global_weights, good, server_state, cfg, num_clients, params)
    return RoundResult(weights, state, accepted, False, mean_loss(good))


@dataclass
class RoundLog:
    """Who took part in one round and what became of their updates."""

    round: int
    sampled: list[int]
    dropped: list[int]  # drew a dropout before training
    missing: list[int]  # asked, but no update came back (a Flower node that failed or stayed silent)
    rejected: list[int]  # their update was non-finite
    skipped: bool  # no update was accepted: the global weights did not move
    train_loss: float | None  # sample-weighted mean training loss of the accepted updates

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
        if on_accept is not None:
            for cid, update, ok in zip(owners, updates, result.accepted, strict=True):
                if ok:
                    on_accept(cid, update)
        weights, server_state = result.weights, result.server_state
        stats.rounds += 1
        stats.rounds_skipped += result.skipped
        stats.updates_rejected += result.accepted.count(False)
        stats.clients_dropped += len(sampled) - len(active)
        log.append(
            RoundLog(
                rnd,
                sampled,
                sorted(set(sampled) - set(active)),
                sorted(set(active) - set(owners)),
                [c for c, ok in zip(owners, result.accepted, strict=True) if not ok],
                result.skipped,
                None if result.skipped else result.loss,
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
