"""The [model] table: which registered model, and the keys the built-in models read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.schema import Strict


class ModelConfig(Strict):
    name: str = Field("auto", description="a registered model (`pftlab models`); auto: cnn for images, mlp for tables")
    width: int = Field(
        32, ge=1, le=1024, description="cnn: channels of the first conv layer (resnets: see width_multiplier)"
    )
    hidden: int = Field(128, ge=1, le=16_384, description="cnn, mlp: width of the feature layer")
    layers: int = Field(2, ge=1, le=64, description="mlp: number of hidden layers")
    norm: Literal["none", "batch", "group"] = Field(
        "none",
        description=(
            "cnn, resnets: the layer after every convolution: batch (BatchNorm; its running statistics send"
            " personalization through the plain loop), group (GroupNorm, at most 32 groups of at least 4"
            " channels), none (resnets: Fixup's initialisation; trains, but group is the robust choice for them)"
        ),
    )
    width_multiplier: float = Field(
        1.0,
        gt=0,
        le=16,
        description=(
            "resnets: every stage's channels times this (resnet8/20: 16-32-64, resnet18: 64-128-256-512 at 1);"
            " a multiplier, not model.width, so one key gives each ResNet its published width at 1 and the"
            " cnn's width keeps its meaning and default"
        ),
    )
    init: str = Field(
        "", max_length=4096, description="a .safetensors file the model starts from (e.g. `pftlab pretrain`); '' = none"
    )
    init_head: bool = Field(True, description="with model.init: load the head too (false: a fresh head)")
