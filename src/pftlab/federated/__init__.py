"""The global stage: algorithms that train the shared model the clients start from.

Each algorithm (one file each: fedavg, fedprox, scaffold, fedavgm, fedadam, fedbabu) is an
`Algorithm` of two pure functions over plain data, so the in-process loop and Flower's
ClientApp / ServerApp run the same code; what crosses the wire is dicts of tensors and numbers:

    local_update(model, global_weights, payload, data, cfg, seed, rnd, client_id, client_state, head="head")
        -> ClientUpdate(weights, num_examples, loss, extra, client_state)
        runs on a client: `model` is any module object of the architecture (its weights are
        overwritten), `payload` what the server sent beside the weights (SCAFFOLD: c),
        `client_state` what this client kept from its last accepted round ({} at first;
        SCAFFOLD: c_i). `extra` goes to the server, `client_state` stays on the client.
    server_round(algorithm, global_weights, updates, server_state, cfg, num_clients, params)
        -> RoundResult(weights, server_state, accepted, skipped, loss, out_of_scale, clipped)
        runs on the server: rejects non-finite updates, then (with >= 3 finite ones) leaves out
        or clips those over `max_update_norm` times the round's median norm, skips a round with
        none left, else calls algorithm.server_update(global_weights, accepted, server_state,
        cfg, num_clients, params) -> (new global weights, new server state). server_state
        starts as {}. Algorithms combine weights with `average(global_weights, updates, cfg)`,
        which follows `federated.aggregate` (mean, median, trimmed-mean).
    algorithm.payload(server_state) -> the tensors to send with the global weights.

Client dropout is drawn by `dropped(seed, rnd, client_id, p)`; client sampling by
`participation_schedule`; every draw derives from the seed, so nothing depends on order.
`drive_rounds` is the one round driver; `run_global_stage` runs it in-process, Flower's ServerApp over
its nodes; `pftlab.experiment.checkpoint.global_model` caches the result. A round whose aggregated
model has a non-finite weight or a parameter over `max_weight` raises `GlobalStageDiverged`.
"""

from pftlab.federated.algorithm import Algorithm, ClientUpdate, average, dropped, is_finite
from pftlab.federated.config import FederatedConfig
from pftlab.federated.rounds import (
    ALGORITHMS,
    GlobalStageDiverged,
    RoundLog,
    RoundResult,
    StageStats,
    drive_rounds,
    register_algorithm,
    run_global_stage,
    run_rounds,
    server_round,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ClientUpdate",
    "FederatedConfig",
    "GlobalStageDiverged",
    "RoundLog",
    "RoundResult",
    "StageStats",
    "average",
    "drive_rounds",
    "dropped",
    "is_finite",
    "register_algorithm",
    "run_global_stage",
    "run_rounds",
    "server_round",
]
