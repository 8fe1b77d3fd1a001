"""FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization"): Adam on the server.

d = mean(w_i) - w;  m <- b1 m + (1 - b1) d;  v <- b2 v + (1 - b2) d^2;  w <- w + lr m / (sqrt(v) + tau),
with m and v starting at zero and no bias correction, as in the paper's Algorithm 2. Only
parameters take the server step; buffers (BatchNorm statistics) are averaged. mean(w_i) is
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
        d = avg[k] - global_weights[k]
        m = cfg.beta1 * state.get(f"m/{k}", torch.zeros_like(d)) + (1 - cfg.beta1) * d
        v = cfg.beta2 * state.get(f"v/{k}", torch.zeros_like(d)) + (1 - cfg.beta2) * d * d
        state[f"m/{k}"], state[f"v/{k}"] = m, v
        out[k] = global_weights[k] + lr * m / (v.sqrt() + cfg.tau)
    return out, state


ALGORITHM = Algorithm("fedadam", fedavg.local_update, server_update)
