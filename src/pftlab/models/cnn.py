"""A small CNN for 8-32 px images: two conv blocks and a hidden layer (the features), then a linear head.

No normalisation layers by default: FedAvg of BatchNorm statistics is its own research question,
and a stateless backbone keeps features a pure function of the weights.
"""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 32, hidden: int = 128):
        super().__init__()
        side = image_size // 4
        if side < 1:
            raise ValueError(f"SmallCNN needs images of at least 4 px, got {image_size}")
        self.backbone = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))
