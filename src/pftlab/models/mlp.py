"""A multi-layer perceptron for tabular (or flattened) inputs: hidden layers, then a linear head."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128, layers: int = 2):
        super().__init__()
        blocks: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.backbone = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits
