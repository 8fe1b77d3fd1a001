"""Models: each a backbone (feature extractor) plus a linear head named `head`.

`MODELS` is the registry `model.name` is checked against; `auto` picks the CNN for square
images and the MLP otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.registry import Registry, caller_package
from pftlab.core.seeding import derive_seed
from pftlab.models.cnn import SmallCNN
from pftlab.models.config import ModelConfig
from pftlab.models.heads import features, head_module, head_param_names
from pftlab.models.mlp import MLP
from pftlab.models.spec import ModelSpec

__all__ = [
    "MLP",
    "MODELS",
    "ModelConfig",
    "ModelSpec",
    "SmallCNN",
    "build_model",
    "features",
    "head_module",
    "head_param_names",
    "register_model",
    "resolve_name",
]


def _square_images(input_shape: tuple[int, ...]) -> str | None:
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        return (
            f"model 'cnn' needs square images (C, H, H), got input shape {input_shape}; "
            "use model.name = 'mlp' or 'auto'"
        )
    return None


MODELS: Registry[ModelSpec] = Registry("model", "pftlab.models", ModelSpec)
MODELS.register(
    ModelSpec(
        "cnn",
        "small CNN: conv blocks (model.width, model.norm), a feature layer (model.hidden), a linear head",
        lambda cfg, shape, k: SmallCNN(shape[0], shape[1], k, cfg.width, cfg.hidden, cfg.norm),
        _square_images,
    )
)
MODELS.register(
    ModelSpec(
        "mlp",
        "MLP over the flattened input: model.layers hidden layers of model.hidden units, a linear head",
        lambda cfg, shape, k: MLP(shape, k, cfg.hidden, cfg.layers),
    )
)

AUTO = "auto"


def register_model(spec: ModelSpec, *, origin: str | None = None, replace: bool = False) -> ModelSpec:
    """Make a model available as `model.name` (from a plugin's code)."""
    return MODELS.register(spec, origin or caller_package(), replace=replace)


def resolve_name(name: str, input_shape: tuple[int, ...]) -> str:
    """`auto` -> cnn for square images, mlp otherwise; any other name as given."""
    if name != AUTO:
        return name
    return "cnn" if len(input_shape) == 3 and input_shape[1] == input_shape[2] else "mlp"


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """The configured model, initialised from (seed, "init") only."""
    spec = MODELS[resolve_name(cfg.name, input_shape)]
    problem = spec.accepts(input_shape)
    if problem:
        raise UserError(problem)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return spec.build(cfg, input_shape, num_classes)
