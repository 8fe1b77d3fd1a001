"""What a model is to pftlab: a name, a builder, and which inputs it takes.

A model is any torch module with a linear head submodule named `head` (the backbone is
everything else), so every method, the batched engine and the distortion measures work on it.
A plugin adds one with `register_model(ModelSpec(...))` or the `pftlab.models` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from pftlab.models.config import ModelConfig


def any_input(input_shape: tuple[int, ...]) -> str | None:
    return None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str
    build: Callable[[ModelConfig, tuple[int, ...], int], nn.Module]  # (cfg, input shape, classes) -> module
    accepts: Callable[[tuple[int, ...]], str | None] = any_input  # None, or why this input shape will not do
