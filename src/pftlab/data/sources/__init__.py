"""Dataset sources: real data loaded into a Dataset, with no download at run time."""

from __future__ import annotations

import numpy as np

from pftlab.data.dataset import Dataset


def sklearn_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1].

    The UCI optdigits test set, shipped inside scikit-learn, so it needs no download.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    return Dataset(x, bunch.target.astype(np.int64), 10, "sklearn-digits", {"source": "sklearn.datasets.load_digits"})
