"""Backbone / head split for any torch module, given the name of its head submodule.

The head is the last layer applied: it maps the features to class scores. Everything else is
the backbone. Our own models call it `head`; a torchvision ResNet would call it `fc`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from pftlab.core.compute import autocast, on_device
from pftlab.models.layout import channels_last


def head_module(model: nn.Module, head: str) -> nn.Module:
    try:
        return model.get_submodule(head)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ValueError(f"model has no submodule {head!r}; its children are {names}") from None


def head_param_names(model: nn.Module, head: str) -> set[str]:
    return {f"{head}.{n}" for n, _ in head_module(model, head).named_parameters()}


@contextmanager
def _head_replaced(model: nn.Module, head: str) -> Iterator[None]:
    parent_name, _, child = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    original = getattr(parent, child)
    setattr(parent, child, nn.Identity())
    try:
        yield
    finally:
        setattr(parent, child, original)


@torch.no_grad()
def features(model: nn.Module, head: str, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The head's inputs for every sample of x, computed in eval mode (frozen backbone).

    Batches of 256 in channels-last layout: measured 2.6x faster than batches of 2048 in the
    default layout for the small CNN on 2 cores (large batches fall out of cache). On the current
    device (`pftlab.core.compute`), forward passes in its precision, returned as fp32.
    """
    was_training = model.training
    model.eval()
    x = on_device(x)
    with _head_replaced(model, head), channels_last(model), autocast():
        out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out.float()  # fp32 features in every precision (a no-op in fp32): heads and CKA read them
