"""The one training loop: FedAvg's local steps and every personalization phase run through it.

Every caller gets the same data order for the same (seed, purpose, client, epoch), so methods
compared on one client see the same batches in the same epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pftlab.core.compute import autocast, on_device
from pftlab.core.errors import UserError
from pftlab.core.seeding import numpy_rng
from pftlab.data.augment import training_augment
from pftlab.data.dataset import Dataset
from pftlab.models.heads import features, head_module
from pftlab.models.layout import channels_last
from pftlab.training.config import OptimizerConfig
from pftlab.training.phase import Phase

Params = dict[str, nn.Parameter]


def make_optimizer(params: Iterable[torch.Tensor], lr: float, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def epoch_order(n: int, seed: int, purpose: str, client: int, epoch: int) -> torch.Tensor:
    return torch.from_numpy(numpy_rng(seed, purpose, client, epoch).permutation(n))


def trained_params(model: nn.Module, train: str, head: str) -> Params:
    """The parameters a phase trains, by full name: all, the head's, all but the head's (body), or one submodule's."""
    if train == "all":
        return dict(model.named_parameters())
    if train == "body":
        return {n: p for n, p in model.named_parameters() if not n.startswith(head + ".")}
    prefix = (head if train == "head" else train) + "."
    chosen = {n: p for n, p in model.named_parameters() if n.startswith(prefix)}
    if not chosen:
        blocks = sorted({n.rsplit(".", 2)[0] for n, _ in model.named_parameters()})
        raise UserError(f"the model has no trainable block {train!r}; blocks with parameters: {', '.join(blocks)}")
    return chosen


def snip_mask(
    net: nn.Module, params: Params, inputs: torch.Tensor, y: torch.Tensor, sparsity: float, batch_size: int
) -> dict[str, torch.Tensor]:
    """True where a weight may change: the (1 - sparsity) share with the largest |dL/dw * w| on local data."""
    scores = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(0, len(y), batch_size):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(inputs[i : i + batch_size]), y[i : i + batch_size], reduction="sum").backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        for n, p in params.items():
            if p.grad is not None:
                scores[n] += (p.grad * p.detach()).abs()
    net.zero_grad(set_to_none=True)
    flat = torch.cat([s.flatten() for s in scores.values()])
    keep = flat.numel() - round(sparsity * flat.numel())
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, keep, sorted=False).indices] = True
    pieces = mask.split([s.numel() for s in scores.values()])  # type: ignore[no-untyped-call]  # torch leaves Tensor.split unannotated
    return {n: m.view_as(scores[n]) for n, m in zip(scores, pieces, strict=True)}


def _train_mode(net: nn.Module, phase: Phase) -> None:
    net.train()
    if phase.freeze_norm:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def fit_lbfgs(net: nn.Module, params: Params, inputs: torch.Tensor, y: torch.Tensor, phase: Phase) -> float:
    """Full-batch L-BFGS to convergence: multinomial logistic regression when net is the head."""
    opt = torch.optim.LBFGS(
        list(params.values()),
        lr=1.0,
        max_iter=phase.max_iter,
        history_size=20,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(inputs), y)
        if phase.l2:
            loss = loss + phase.l2 / 2 * sum((p**2).sum() for n, p in params.items() if n.endswith("weight"))
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]  # torch leaves LBFGS.step unannotated
    with torch.no_grad():
        return float(F.cross_entropy(net(inputs), y))


def train(
    model: nn.Module,
    phases: Sequence[Phase],
    data: Dataset,
    optim: OptimizerConfig,
    seed: int,
    purpose: str,
    client: int,
    head: str = "head",
    on_epoch: Callable[[int, float], None] | None = None,
    grad_correction: dict[str, torch.Tensor] | None = None,
    prox_to: dict[str, torch.Tensor] | None = None,
) -> float:
    """Run the phases in place on `model`; return the mean data loss (cross-entropy) of the last epoch.

    `on_epoch(epochs_done, loss)` is called after every epoch (analyses evaluate the model there).
    `grad_correction[name]` is added to that parameter's gradient before every step (SCAFFOLD);
    `prox_to` is the point the proximal term pulls toward instead of the start (Ditto).

    A head-only phase trains the head on backbone features computed once (the backbone is
    frozen, so they cannot change): the cost of linear probing is one forward pass. A training
    split marked for augmentation (`pftlab.data.augment`) has every batch of the other phases
    augmented with random numbers from (seed, purpose, client, epoch).
    """
    augment = training_augment(data)
    with channels_last(model):
        x, y = on_device(torch.from_numpy(data.x)), on_device(torch.from_numpy(data.y))
        start = (
            {n: p.detach().clone() for n, p in model.named_parameters()} if any(p.proximal_mu for p in phases) else {}
        )
        start = start if prox_to is None else prox_to
        epoch, last_loss = 0, math.nan
        for phase in phases:
            params = trained_params(model, phase.train, head)
            net, inputs = (head_module(model, head), features(model, head, x)) if phase.train == "head" else (model, x)
            _train_mode(net, phase)
            frozen = [p for n, p in model.named_parameters() if n not in params]
            for p in frozen:
                p.requires_grad_(False)
            try:
                if phase.solver == "lbfgs":
                    last_loss, epoch = fit_lbfgs(net, params, inputs, y, phase), epoch + phase.epochs
                    if on_epoch is not None:
                        on_epoch(epoch, last_loss)
                    continue
                mask = snip_mask(net, params, inputs, y, phase.sparsity, optim.batch_size) if phase.sparsity else {}
                fixed = {n: params[n].detach().clone() for n in mask}
                opt = make_optimizer(params.values(), phase.lr, optim)
                for _ in range(phase.epochs):
                    total = 0.0
                    aug = augment if augment is not None and phase.train != "head" else None
                    aug_rng = numpy_rng(seed, purpose, "augment", client, epoch) if aug is not None else None
                    order = on_device(epoch_order(len(y), seed, purpose, client, epoch))
                    for idx in order.split(optim.batch_size):  # type: ignore[no-untyped-call]  # torch leaves Tensor.split unannotated
                        batch = inputs[idx] if aug is None or aug_rng is None else aug(inputs[idx], aug_rng)
                        with autocast():
                            data_loss = F.cross_entropy(net(batch), y[idx])
                        loss = data_loss if phase.flood is None else (data_loss - phase.flood).abs() + phase.flood
                        if phase.proximal_mu:
                            loss = loss + phase.proximal_mu / 2 * sum(
                                ((p - start[n]) ** 2).sum() for n, p in params.items()
                            )
                        opt.zero_grad(set_to_none=True)
                        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
                        for n, c in (grad_correction or {}).items():
                            if n in params:
                                grad = params[n].grad
                                assert grad is not None
                                grad.add_(c)
                        for n, m in mask.items():
                            grad = params[n].grad
                            assert grad is not None
                            grad.mul_(m)
                        opt.step()
                        with torch.no_grad():
                            for n, m in mask.items():  # momentum / weight decay must not move frozen weights either
                                params[n].copy_(torch.where(m, params[n], fixed[n]))
                        total += data_loss.item() * len(idx)
                    last_loss = total / len(y)
                    if not math.isfinite(last_loss):
                        raise FloatingPointError(f"client {client}: training loss became {last_loss} in epoch {epoch}")
                    epoch += 1
                    if on_epoch is not None:
                        on_epoch(epoch, last_loss)
                        _train_mode(net, phase)  # the callback may have evaluated the model
            finally:
                for p in frozen:
                    p.requires_grad_(True)
        return last_loss
