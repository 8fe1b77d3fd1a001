"""Models: each a backbone (feature extractor) plus a linear head named `head`.

`MODELS` is the registry `model.name` is checked against; `auto` picks the CNN for square
images and the MLP otherwise. The ResNets (`resnet8`, `resnet20`, `resnet18`) are asked for by name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.registry import Registry, caller_package
from pftlab.core.seeding import derive_seed
from pftlab.models.cnn import SmallCNN
from pftlab.models.config import ModelConfig
from pftlab.models.heads import features, head_module, head_param_names
from pftlab.models.mlp import MLP
from pftlab.models.norm import Norm
from pftlab.models.resnet import ResNet, resnet8, resnet18, resnet20
from pftlab.models.spec import ModelSpec

__all__ = [
    "MLP",
    "MODELS",
    "ModelConfig",
    "ModelSpec",
    "ResNet",
    "SmallCNN",
    "build_model",
    "features",
    "head_module",
    "head_param_names",
    "register_model",
    "resolve_name",
]


def _square_images(name: str) -> Callable[[tuple[int, ...]], str | None]:
    def accepts(input_shape: tuple[int, ...]) -> str | None:
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            return (
                f"model {name!r} needs square images (C, H, H), got input shape {input_shape}; "
                "use model.name = 'mlp' or 'auto'"
            )
        return None

    return accepts


MODELS: Registry[ModelSpec] = Registry("model", "pftlab.models", ModelSpec)
MODELS.register(
    ModelSpec(
        "cnn",
        "small CNN: conv blocks (model.width, model.norm), a feature layer (model.hidden), a linear head",
        lambda cfg, shape, k: SmallCNN(shape[0], shape[1], k, cfg.width, cfg.hidden, cfg.norm),
        _square_images("cnn"),
    )
)
MODELS.register(
    ModelSpec(
        "mlp",
        "MLP over the flattened input: model.layers hidden layers of model.hidden units, a linear head",
        lambda cfg, shape, k: MLP(shape, k, cfg.hidden, cfg.layers),
    )
)


def _resnet(name: str, build: Callable[[int, int, float, Norm], ResNet], what: str) -> ModelSpec:
    return ModelSpec(
        name,
        f"{what} channels (x model.width_multiplier), model.norm; global average pooling, a linear head",
        lambda cfg, shape, k: build(shape[0], k, cfg.width_multiplier, cfg.norm),
        _square_images(name),
    )


MODELS.register(_resnet("resnet8", resnet8, "CIFAR ResNet-8 (He et al.): 3 stages of 1 basic block, 16-32-64"))
MODELS.register(_resnet("resnet20", resnet20, "CIFAR ResNet-20 (He et al.): 3 stages of 3 basic blocks, 16-32-64"))
MODELS.register(_resnet("resnet18", resnet18, "ResNet-18, 3x3 stem and no max-pool: 4 stages of 2 blocks, 64-512"))

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
