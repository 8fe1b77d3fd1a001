"""The [model] table: which registered model, and the keys the built-in models read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.schema import Strict


class ModelConfig(Strict):
    name: str = Field("auto", description="a registered model (`pftlab models`); auto: cnn for images, mlp for tables")
    width: int = Field(32, ge=1, le=1024, description="cnn: channels of the first conv layer")
    hidden: int = Field(128, ge=1, le=16_384, description="width of the feature layer")
    layers: int = Field(2, ge=1, le=64, description="mlp: number of hidden layers")
    norm: Literal["none", "batch"] = Field("none", description="cnn: BatchNorm after each convolution")
