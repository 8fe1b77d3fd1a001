"""A small CNN for 8-32 px images: two conv blocks and a feature layer, then a linear head.

Blocks are named (`backbone.block1`, `backbone.block2`, `backbone.features`) so a method can
train one of them (surgical fine-tuning). No normalisation by default: FedAvg of BatchNorm
statistics is its own research question, and a stateless backbone keeps features a pure
function of the weights; `norm = "batch"` adds BatchNorm after each convolution, `"group"`
GroupNorm (`pftlab.models.norm.group_count` groups; no running statistics, so no buffers).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pftlab.models.norm import Norm, norm_layer


def _conv_block(c_in: int, c_out: int, norm: Norm) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    layer = norm_layer(norm, c_out)
    if layer is not None:
        layers.append(layer)
    return nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        hidden: int = 128,
        norm: Norm = "none",
    ):
        super().__init__()
        side = image_size // 4
        if side < 1:
            raise ValueError(f"SmallCNN needs images of at least 4 px, got {image_size}")
        self.backbone = nn.Sequential(
            OrderedDict(
                block1=_conv_block(in_channels, width, norm),
                block2=_conv_block(width, 2 * width, norm),
                features=nn.Sequential(nn.Flatten(), nn.Linear(2 * width * side * side, hidden), nn.ReLU()),
            )
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits
