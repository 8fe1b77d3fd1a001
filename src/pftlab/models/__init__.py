"""Models: each a backbone (feature extractor) plus a linear head named `head`."""

from __future__ import annotations

import torch
from torch import nn

from pftlab.errors import UserError
from pftlab.experiment.config import ModelConfig
from pftlab.models.cnn import SmallCNN
from pftlab.models.heads import features, head_module, head_param_names
from pftlab.models.mlp import MLP
from pftlab.seeding import derive_seed

__all__ = ["MLP", "SmallCNN", "build_model", "features", "head_module", "head_param_names"]


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """The configured model, initialised from (seed, "init") only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        name = cfg.name
        if name == "auto":
            name = "cnn" if len(input_shape) == 3 and input_shape[1] == input_shape[2] else "mlp"
        if name == "cnn":
            if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
                raise UserError(
                    f"model 'cnn' needs square images (C, H, H), got input shape {input_shape}; "
                    "use model.name = 'mlp' or 'auto'"
                )
            return SmallCNN(input_shape[0], input_shape[1], num_classes, cfg.width, cfg.hidden, cfg.norm)
        return MLP(input_shape, num_classes, cfg.hidden, cfg.layers)
