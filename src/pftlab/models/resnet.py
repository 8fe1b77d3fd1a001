"""CIFAR-style ResNets for small images (8-64 px): resnet8, resnet20 and resnet18.

- `resnet8`, `resnet20`: He et al. (2016), section 4.2: a 3x3 stem, then 3 stages of n = 1 or 3
  basic blocks with 16, 32, 64 channels at full, 1/2 and 1/4 resolution, global average pooling
  and a linear head; 6n + 2 layers. Shortcuts that change shape are their option A (subsample
  by the stride, zero-pad the new channels; no parameters), so resnet20 with 10 classes has the
  paper's 0.27M parameters (269,722 with norm = "batch").
- `resnet18`: the ImageNet ResNet-18's 4 stages of 2 basic blocks with 64-512 channels and 1x1
  projection shortcuts (option B), adapted to small inputs as is usual for CIFAR: a 3x3 stride-1
  stem and no max-pool (11,173,962 parameters with 10 classes and norm = "batch").

Every one is a backbone (`backbone.stem`, `backbone.block1` ... the stages, `backbone.pool`:
global average pooling and flatten, so `features` gives the pooled vector of the last stage's
width) plus a linear `head`, like the small CNN: every method, linear probing on features,
distortion and CKA, and the batched engine take it unchanged. Surgical FT's default block,
`backbone.block1`, is the first stage (the stem is `backbone.stem`).

Keys (`model.*`): `width_multiplier` scales every stage's channels (16-32-64 or 64-...-512 at
1.0, each rounded, at least 1); `norm` is the layer after every convolution:

- `batch`: BatchNorm. Its running statistics are buffers, so personalization runs through the
  plain loop (the batched engine takes only models without buffers) and FedAvg averages them.
- `group`: GroupNorm with `group_count(channels)` groups (at most 32, at least 4 channels per
  group). No buffers: the batched engine runs it, and features are a pure function of the weights.
- `none` (the default, as for the CNN): no normalisation; convolutions get biases instead.
  Nothing then holds the residual stream's scale down and every block's update adds to it, so
  these ResNets start from Fixup's initialisation (Zhang et al. 2019, without its scalar
  multipliers and biases): He-normal fan-in (the forward signal keeps its scale), the first
  convolution of each of the L residual branches scaled by L^-1/2 and the last one zero. Each
  block starts as its shortcut and a step moves the output by O(1) whatever the depth; only the
  initial weights change, so `none` has the other norms' layers minus the norms, and their FLOPs.
  Measured at the default learning rate (0.05, momentum 0.9, batch 32, the pooled digits-quick
  clients, 10 epochs): resnet8 reached 84-87% test accuracy and resnet20 82-85% (1 or 2 threads),
  against 89-90% with group norm, 94% for resnet20 with batch norm and 92% for the no-norm CNN:
  slower to start, then steady. He init alone made resnet20's first loss 5.5 (the signal doubles
  block by block); zeroing the last convolutions alone started faster but left a full-batch fit
  at chance after a spike. A full-batch fit of 64 noisy prototypes at that rate still spikes
  after 23-36 steps for every variant tried on resnet8 (this one, a fixed L^-1/2 scale on every
  branch, SkipInit's zero-initialised gain; the fixed scale held for resnet20 over 40 steps),
  where group and batch norm fall steadily. So `none` trains, but it is the fragile choice for
  ResNets: prefer `group` (or a lower learning rate) for long runs.

Convolutions are otherwise initialised He-normal fan-out (torchvision's choice for normalised
networks), norm layers at scale 1 and shift 0, the head as torch's Linear; all from the seed that
`build_model` sets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pftlab.models.norm import Norm, norm_layer

Shortcut = Literal["pad", "conv"]  # option A (parameter-free) or option B (1x1 projection + norm)

CIFAR_WIDTHS = (16, 32, 64)
RESNET18_WIDTHS = (64, 128, 256, 512)


def _conv_norm(c_in: int, c_out: int, kernel: int, stride: int, norm: Norm) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=norm == "none")
    layer = norm_layer(norm, c_out)
    return [conv] if layer is None else [conv, layer]


class PadShortcut(nn.Module):
    """He et al.'s option A: keep every `stride`-th pixel and zero-pad the new channels (half before, half after)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.c_out - self.c_in
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.c_in}, {self.c_out}, stride={self.stride}"


class BasicBlock(nn.Module):
    """relu(branch(x) + shortcut(x)), branch = conv3x3 - norm - relu - conv3x3 - norm."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: Norm, shortcut: Shortcut):
        super().__init__()
        self.branch = nn.Sequential(
            *_conv_norm(c_in, c_out, 3, stride, norm), nn.ReLU(), *_conv_norm(c_out, c_out, 3, 1, norm)
        )
        self.shortcut: nn.Module
        if stride == 1 and c_in == c_out:
            self.shortcut = nn.Identity()
        elif shortcut == "pad":
            self.shortcut = PadShortcut(c_in, c_out, stride)
        else:
            self.shortcut = nn.Sequential(*_conv_norm(c_in, c_out, 1, stride, norm))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.relu(self.branch(x) + self.shortcut(x))
        return out


class ResNet(nn.Module):
    """Stem, stages of basic blocks (the first at stride 1, the others halving the resolution),
    global average pooling; then a linear head on the last stage's channels."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: Sequence[int],
        depths: Sequence[int],
        norm: Norm = "none",
        shortcut: Shortcut = "pad",
    ):
        super().__init__()
        if len(widths) != len(depths) or not widths or min(depths) < 1 or min(widths) < 1:
            raise ValueError(f"ResNet needs one width >= 1 and one depth >= 1 per stage, got {widths}, {depths}")
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            stem=nn.Sequential(*_conv_norm(in_channels, widths[0], 3, 1, norm), nn.ReLU())
        )
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, depths, strict=True)):
            blocks = [BasicBlock(c if j == 0 else w, w, 2 if i and not j else 1, norm, shortcut) for j in range(n)]
            parts[f"block{i + 1}"] = nn.Sequential(*blocks)
            c = w
        parts["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.backbone = nn.Sequential(parts)
        self.head = nn.Linear(c, num_classes)
        self._initialise(norm)

    def _initialise(self, norm: Norm) -> None:
        mode: Literal["fan_in", "fan_out"] = "fan_in" if norm == "none" else "fan_out"  # module docstring
        for m in self.backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if norm == "none":  # Fixup's initialisation (module docstring)
            blocks = [b for b in self.backbone.modules() if isinstance(b, BasicBlock)]
            for block in blocks:
                first, last = [m for m in block.branch if isinstance(m, nn.Conv2d)]
                with torch.no_grad():
                    first.weight.mul_(len(blocks) ** -0.5)
                nn.init.zeros_(last.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits


def scaled(widths: Sequence[int], multiplier: float) -> list[int]:
    """Each stage's channels times the multiplier, rounded, at least 1."""
    return [max(1, round(w * multiplier)) for w in widths]


def resnet8(in_channels: int, num_classes: int, width_multiplier: float = 1.0, norm: Norm = "none") -> ResNet:
    return ResNet(in_channels, num_classes, scaled(CIFAR_WIDTHS, width_multiplier), (1, 1, 1), norm, "pad")


def resnet20(in_channels: int, num_classes: int, width_multiplier: float = 1.0, norm: Norm = "none") -> ResNet:
    return ResNet(in_channels, num_classes, scaled(CIFAR_WIDTHS, width_multiplier), (3, 3, 3), norm, "pad")


def resnet18(in_channels: int, num_classes: int, width_multiplier: float = 1.0, norm: Norm = "none") -> ResNet:
    return ResNet(in_channels, num_classes, scaled(RESNET18_WIDTHS, width_multiplier), (2, 2, 2, 2), norm, "conv")
