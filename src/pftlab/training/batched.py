"""Many clients personalized as one computation: stacked parameters, torch.func vmap over clients.

One module object, its parameters stacked along a leading client axis; every step takes one
batch of every client in the chunk and runs forward, backward and the SGD update for all of
them at once. It is the same computation as `pftlab.training.loop.train` (same data order, same
mean-over-batch loss, torch's SGD update formula), so results agree to float rounding.

A client whose epoch has fewer batches than the longest in its chunk sits the extra steps out:
its padding rows carry zero weight and its update is masked. Chunks are made of clients of
similar size, so little is padded.

What it covers: SGD phases that train everything, the head or one block, with proximal and
flooding terms, on models without buffers (no BatchNorm). Anything else (Adam, sparse masks,
L-BFGS, frozen norms, custom methods) goes through the plain loop; `pftlab.personalize.engine.supports`
says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from pftlab.core.compute import on_device
from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.models.heads import features, head_module
from pftlab.training.config import OptimizerConfig
from pftlab.training.loop import epoch_order, trained_params
from pftlab.training.phase import Phase

Stacked = dict[str, torch.Tensor]  # name -> (clients, *shape)
Tensors = dict[str, torch.Tensor]
# (trainable, frozen, common, x, y, mask) -> (loss, data loss) of one client's padded batch
LossFn = Callable[
    [Tensors, Tensors, Tensors, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]
# the same arguments -> (gradients of the trainable tensors, (loss, data loss))
StepFn = Callable[
    [Tensors, Tensors, Tensors, torch.Tensor, torch.Tensor, torch.Tensor],
    tuple[Tensors, tuple[torch.Tensor, torch.Tensor]],
]


def unstack(stacked: Stacked, shared: Weights, n: int) -> list[Weights]:
    """Per-client weights; the tensors no phase trained are shared by all clients, not copied."""
    return [{**shared, **{name: t[k].clone() for name, t in stacked.items()}} for k in range(n)]


def _padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(clients, longest, *shape), zero rows past each client's end."""
    longest = max(len(t) for t in tensors)
    out = tensors[0].new_zeros((len(tensors), longest, *tensors[0].shape[1:]))
    for k, t in enumerate(tensors):
        out[k, : len(t)] = t
    return out


def _client_features(
    model: nn.Module, stacked: Stacked, shared: Weights, k: int, head: str, x: torch.Tensor
) -> torch.Tensor:
    model.load_state_dict({**shared, **{n: t[k] for n, t in stacked.items()}})
    return features(model, head, x)


def train_batch(
    model: nn.Module,
    start: Weights,
    phases: Sequence[Phase],
    data: Sequence[Dataset],
    clients: Sequence[int],
    optim: OptimizerConfig,
    seed: int,
    purpose: str,
    head: str = "head",
) -> tuple[Stacked, Weights, list[float]]:
    """`train` for every client at once: stacked trained weights, the untouched (shared) ones, last-epoch losses."""
    n_clients = len(clients)
    trained = set().union(*(trained_params(model, p.train, head) for p in phases))
    stacked: Stacked = {
        n: t.detach().unsqueeze(0).repeat(n_clients, *[1] * t.dim()) for n, t in start.items() if n in trained
    }
    shared = {n: t.detach().clone() for n, t in start.items() if n not in trained}  # never aliases the model
    xs = [on_device(torch.from_numpy(d.x)) for d in data]
    ys = [on_device(torch.from_numpy(d.y).long()) for d in data]
    device = xs[0].device
    sizes = [len(y) for y in ys]
    if min(sizes) < 1:
        raise ValueError("every client needs at least one training sample")
    y_pad = _padded(ys)
    origin = {n: t.detach() for n, t in start.items()}
    moved = False  # has any phase changed the backbone yet? (then features differ per client)
    losses = [math.nan] * n_clients
    epoch = 0
    for phase in phases:
        names = list(trained_params(model, phase.train, head))
        if phase.train == "head":
            net = head_module(model, head)
            prefix = head + "."
            if moved:
                feats = [_client_features(model, stacked, shared, k, head, x) for k, x in enumerate(xs)]
            else:
                model.load_state_dict(start)
                feats = list(features(model, head, torch.cat(xs)).split(sizes))  # type: ignore[no-untyped-call]  # torch leaves Tensor.split unannotated
            inputs = _padded(feats)
        else:
            net, prefix, inputs = model, "", _padded(xs)
            moved = True
        net.train()
        local = {n: n.removeprefix(prefix) for n in start if n.startswith(prefix)}
        fixed = {local[n]: stacked[n] for n in local if n not in names and n in stacked}
        common = {local[n]: shared[n] for n in local if n in shared}  # the same for every client

        linear = isinstance(net, nn.Linear) and phase.flood is None and not phase.proximal_mu and len(names) == 2
        loss_fn = _loss_fn(net, phase, prefix, origin)
        step: StepFn = (
            _linear_step() if linear else vmap(grad_and_value(loss_fn, has_aux=True), in_dims=(0, 0, None, 0, 0, 0))
        )
        buffers: dict[str, torch.Tensor] = {}
        for _ in range(phase.epochs):
            steps = max(math.ceil(n / optim.batch_size) for n in sizes)
            order = torch.full((n_clients, steps * optim.batch_size), -1, dtype=torch.long, device=device)  # -1: pad
            for k, (n, c) in enumerate(zip(sizes, clients, strict=True)):
                order[k, :n] = epoch_order(n, seed, purpose, c, epoch)
            totals = torch.zeros(n_clients, dtype=torch.float64, device=device)
            for s in range(steps):
                part = order[:, s * optim.batch_size : (s + 1) * optim.batch_size]
                weight = (part >= 0).to(inputs.dtype)
                idx = part.clamp(min=0)
                active = weight.sum(1) > 0
                rows = torch.arange(n_clients, device=device).unsqueeze(1)
                trainable = {local[n]: stacked[n] for n in names}
                grads, (_, data_loss) = step(trainable, fixed, common, inputs[rows, idx], y_pad[rows, idx], weight)
                _sgd(stacked, {n: grads[local[n]] for n in names}, buffers, active, phase.lr, optim)
                totals += data_loss.double() * weight.sum(1)
            for k in range(n_clients):
                losses[k] = float(totals[k] / sizes[k])
            epoch += 1
    return stacked, shared, losses


def _linear_step() -> StepFn:
    """Cross-entropy gradients of a linear head in closed form: two batched matmuls, no autograd.

    d loss / d logits = (softmax - onehot) / batch, so dW = g^T x and db = sum g, per client.
    """

    def step(
        trainable: Tensors, frozen: Tensors, common: Tensors, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
    ) -> tuple[Tensors, tuple[torch.Tensor, torch.Tensor]]:
        w, b = trainable["weight"], trainable["bias"]
        logits = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        count = mask.sum(1).clamp(min=1)
        logp = logits.log_softmax(-1)
        nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        data_loss = (nll * mask).sum(1) / count
        g = logp.exp()
        g.scatter_add_(-1, y.unsqueeze(-1), -torch.ones_like(g[..., :1]))
        g = g * (mask / count.unsqueeze(1)).unsqueeze(-1)
        grads = {"weight": torch.bmm(g.transpose(1, 2), x), "bias": g.sum(1)}
        return grads, (data_loss, data_loss)

    return step


def _loss_fn(net: nn.Module, phase: Phase, prefix: str, origin: Weights) -> LossFn:
    """One client's (loss, data loss) on one padded batch; `mask` marks its real rows."""

    def loss_fn(
        trainable: dict[str, torch.Tensor],
        frozen: dict[str, torch.Tensor],
        common: dict[str, torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(net, {**common, **frozen, **trainable}, (x,))
        data_loss = (F.cross_entropy(logits, y, reduction="none") * mask).sum() / mask.sum().clamp(min=1)
        loss = data_loss if phase.flood is None else (data_loss - phase.flood).abs() + phase.flood
        if phase.proximal_mu:
            loss = loss + phase.proximal_mu / 2 * sum(
                ((p - origin[prefix + n]) ** 2).sum() for n, p in trainable.items()
            )
        return loss, data_loss

    return loss_fn


@torch.no_grad()
def _sgd(
    stacked: Stacked,
    grads: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    active: torch.Tensor,
    lr: float,
    optim: OptimizerConfig,
) -> None:
    """torch.optim.SGD's update (momentum buffer starts as the first gradient) for the active clients only."""
    for name, g in grads.items():
        p = stacked[name]
        mask = active.view(-1, *[1] * (p.dim() - 1))
        d = g.add(p, alpha=optim.weight_decay) if optim.weight_decay else g
        if optim.momentum:
            # every client has a batch at a phase's first step, so all buffers start together
            buf = buffers.get(name)
            buffers[name] = d.clone() if buf is None else torch.where(mask, buf.mul(optim.momentum).add(d), buf)
            d = buffers[name]
        stacked[name] = torch.where(mask, p.add(d, alpha=-lr), p)
