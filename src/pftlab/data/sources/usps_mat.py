"""USPS (a Digit-5 domain) from `usps/usps.mat` (MATLAB v5, read with scipy.io.loadmat).

`x` is 256 x 9298 floats in [0, 1], one image per column, each column a 16x16 image in row-major order; `y` is
1..10 = digit + 1. The file is shuffled and has no official train/test split, so this returns all 9,298 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.files import cached_arrays

SOURCE = "usps/usps.mat"


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(paths[SOURCE])
    x, y = np.asarray(mat["x"]), np.asarray(mat["y"]).ravel()
    if x.ndim != 2 or x.shape[0] != 256 or x.shape[1] != y.shape[0]:
        raise ValueError(f"{SOURCE}: expected x 256xN and y of N labels, got x {x.shape} and y {y.shape}")
    if y.min() < 1 or y.max() > 10:
        raise ValueError(f"{SOURCE}: labels must be 1..10, got {y.min()}..{y.max()}")
    images = np.ascontiguousarray(x.T).reshape(-1, 16, 16).astype(np.float32)
    return {"x": images, "y": (y.astype(np.int64) - 1).astype(np.uint8)}


def usps() -> Dataset:
    """USPS: all 9,298 handwritten digits, x (9298, 1, 16, 16) float32 in [0, 1], y the digit 0..9."""
    arrays = cached_arrays("usps", [SOURCE], _decode)
    meta = {"source": SOURCE, "split": "all", "classes": [str(d) for d in range(10)]}
    return Dataset(arrays["x"][:, None, :, :], arrays["y"].astype(np.int64), 10, "usps", meta)
