"""Rounds of a federation: the server's side of a round, and the in-process loop over rounds.

The loop only samples clients, draws dropouts, calls the algorithm's local_update per surviving
client and `server_round` on what came back; Flower's ServerApp calls `server_round` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass

from torch import nn

from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import FederatedConfig
from pftlab.federated import fedadam, fedavg, fedavgm, fedbabu, fedprox, scaffold
from pftlab.federated.algorithm import Algorithm, ClientUpdate, State, dropped, is_finite, mean_loss, snapshot
from pftlab.federated.sampling import participation_schedule
from pftlab.weights import Weights

ALGORITHMS: dict[str, Algorithm] = {
    a.ALGORITHM.name: a.ALGORITHM for a in (fedavg, fedprox, scaffold, fedavgm, fedadam, fedbabu)
}


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
    `on_round(round, loss)` gets NaN for a skipped round.
    """
    global_weights = snapshot(model)
    params = frozenset(n for n, _ in model.named_parameters())
    server_state: State = {}
    client_states: dict[int, State] = {}
    stats = StageStats()
    for rnd, chosen in enumerate(participation_schedule(fed.num_clients, cfg.clients_per_round, cfg.rounds, seed)):
        payload = algorithm.payload(server_state)
        owners, updates = [], []
        for cid in map(int, chosen):
            if dropped(seed, rnd, cid, cfg.dropout):
                stats.clients_dropped += 1
                continue
            state, data = client_states.get(cid, {}), fed.clients[cid].train
            update = algorithm.local_update(model, global_weights, payload, data, cfg, seed, rnd, cid, state, head)
            updates.append(update)
            owners.append(cid)
        result = server_round(algorithm, global_weights, updates, server_state, cfg, fed.num_clients, params)
        for cid, update, ok in zip(owners, updates, result.accepted, strict=True):
            if ok:
                client_states[cid] = update.client_state
        stats.rounds += 1
        stats.rounds_skipped += result.skipped
        stats.updates_rejected += result.accepted.count(False)
        global_weights, server_state = result.weights, result.server_state
        if on_round is not None:
            on_round(rnd, result.loss)
    model.load_state_dict(global_weights)
    return global_weights, client_states, stats


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
