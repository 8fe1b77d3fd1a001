"""FedAvgM (Hsu et al. 2019): the server applies momentum SGD to the pseudo-gradient w - mean(w_i).

v <- beta v + (w - mean(w_i)); w <- w - server_lr v. With beta = 0 and server_lr = 1 it is FedAvg.
Only parameters take the server step; buffers (BatchNorm statistics) are averaged. mean(w_i) is
`federated.aggregate` (a robust median or trimmed mean when so configured).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from pftlab.core.weights import Weights
from pftlab.federated import fedavg
from pftlab.federated.algorithm import Algorithm, ClientUpdate, State, average, server_lr
from pftlab.federated.config import FederatedConfig


def server_update(
    global_weights: Weights,
    updates: Sequence[ClientUpdate],
    server_state: State,
    cfg: FederatedConfig,
    num_clients: int,
    params: Collection[str],
) -> tuple[Weights, State]:
    avg = average(global_weights, updates, cfg)
    lr, state, out = server_lr(cfg), dict(server_state), dict(avg)
    for k in avg:
        if k not in params:
            continue
        pseudo_grad = global_weights[k] - avg[k]
        v = cfg.server_momentum * state.get(f"momentum/{k}", torch.zeros_like(pseudo_grad)) + pseudo_grad
        state[f"momentum/{k}"] = v
        out[k] = global_weights[k] - lr * v
    return out, state


ALGORITHM = Algorithm("fedavgm", fedavg.local_update, server_update)
