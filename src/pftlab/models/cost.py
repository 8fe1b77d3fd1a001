"""What a model costs: its number of parameters and the FLOPs of one forward pass, as torch counts them."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one input (a batch of 1), in eval mode, counted by torch's FlopCounterMode.

    A multiply-add counts 2; only the operations torch's counter knows (matmuls, convolutions, attention)
    are counted, so activations, pooling and normalization add nothing.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
