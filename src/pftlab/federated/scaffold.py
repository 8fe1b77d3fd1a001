"""SCAFFOLD (Karimireddy et al. 2020): control variates correct the drift of local updates.

Every local step adds c - c_i to the gradient, where c is the server's control variate and c_i
the client's. After K local steps at learning rate lr, the client sets (option II of the paper)
    c_i+ = c_i - c + (w_global - w_i) / (K lr)
and sends w_i and c_i+ - c_i. The server moves w by server_lr times the mean update and sets
c <- c + sum(c_i+ - c_i) / N over the N clients of the federation (with a robust
`federated.aggregate`: the mean update is that aggregate, and the sum is the round's count of
clients times the robust centre of the c_i+ - c_i). Both variates start at zero, so round 0 is
FedAvg. Control variates cover the parameters only; buffers are averaged.

The paper's local steps are plain SGD. With momentum beta a constant gradient g moves the
weights by lr g (1 - beta^m) / (1 - beta) in step m, so K is replaced by the effective number of
steps sum_m (1 - beta^m) / (1 - beta) (K when beta = 0); otherwise c_i would overestimate the
gradient by up to 1 / (1 - beta) and the correction would overshoot. Adam is refused by the config.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import torch
from torch import nn

from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated.algorithm import (
    ORDER,
    Algorithm,
    ClientUpdate,
    State,
    average,
    local_train,
    robust_center,
    server_lr,
)
from pftlab.federated.config import FederatedConfig
from pftlab.training.phase import Phase


def effective_steps(num_examples: int, cfg: FederatedConfig) -> float:
    """K local SGD steps, counted as how far they move the weights along a constant gradient (in lr units)."""
    steps, beta = cfg.local_epochs * math.ceil(num_examples / cfg.batch_size), cfg.momentum
    if beta == 0:
        return float(steps)
    return sum((1 - beta**m) / (1 - beta) for m in range(1, steps + 1))


def local_update(
    model: nn.Module,
    global_weights: Weights,
    payload: State,
    data: Dataset,
    cfg: FederatedConfig,
    seed: int,
    rnd: int,
    client_id: int,
    client_state: State,
    head: str = "head",
) -> ClientUpdate:
    names = [n for n, _ in model.named_parameters()]
    c = {n: payload[n] if n in payload else torch.zeros_like(global_weights[n]) for n in names}
    c_i = {n: client_state[n] if n in client_state else torch.zeros_like(global_weights[n]) for n in names}
    correction = {n: c[n] - c_i[n] for n in names}
    phases = [Phase("all", cfg.local_epochs, cfg.lr)]
    update = local_train(
        model, global_weights, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head,
        grad_correction=correction,
    )  # fmt: skip
    scale = 1.0 / (effective_steps(len(data), cfg) * cfg.lr)
    c_new = {n: c_i[n] - c[n] + scale * (global_weights[n] - update.weights[n]) for n in names}
    update.extra = {n: c_new[n] - c_i[n] for n in names}
    update.client_state = c_new
    return update


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
    if lr != 1.0:
        for k in avg:
            if k in params:
                out[k] = global_weights[k] + lr * (avg[k] - global_weights[k])
    for n in updates[0].extra:
        c = state.get(f"c/{n}", torch.zeros_like(updates[0].extra[n]))
        if cfg.aggregate == "mean":
            state[f"c/{n}"] = c + sum(u.extra[n] for u in updates) / num_clients
        else:  # the sum over the round's clients, as |S| times their robust centre
            center = robust_center([u.extra[n] for u in updates], cfg.aggregate, cfg.trim)
            state[f"c/{n}"] = c + len(updates) * center / num_clients
    return out, state


def payload(server_state: State) -> State:
    """The server's control variate c, sent to every sampled client."""
    return {k.removeprefix("c/"): v for k, v in server_state.items() if k.startswith("c/")}


ALGORITHM = Algorithm("scaffold", local_update, server_update, payload)
