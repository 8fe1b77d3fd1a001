"""Feature (covariate) shift: per-client domain transforms of images.

Each transform maps a float32 batch (N, C, H, W) in [0, 1] to the same shape; randomness (noise)
comes from the client's own generator. P(y | x) is untouched, so a model that sees through the
domain change can serve every client.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _clean(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x


def _rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rotated: np.ndarray = np.clip(ndimage.rotate(x, 30.0, axes=(-2, -1), reshape=False, order=1), 0.0, 1.0)
    return rotated


def _invert(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 - x


def _noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(x + rng.normal(0.0, 0.3, size=x.shape), 0.0, 1.0)


def _blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred: np.ndarray = ndimage.gaussian_filter(x, sigma=(0, 0, 0.8, 0.8))
    return blurred


def _low_contrast(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 0.35 + 0.3 * x


DOMAINS: dict[str, tuple[Transform, str]] = {
    "clean": (_clean, "unchanged"),
    "rotate": (_rotate, "rotated by 30 degrees (bilinear)"),
    "invert": (_invert, "1 - x: white background, dark strokes"),
    "noise": (_noise, "additive Gaussian noise, std 0.3, clipped to [0, 1]"),
    "blur": (_blur, "Gaussian blur, sigma 0.8 px"),
    "low-contrast": (_low_contrast, "0.35 + 0.3 x: contrast cut to 30%"),
}


def apply_domain(name: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    transform, _ = DOMAINS[name]
    return transform(x, rng).astype(np.float32, copy=False)
