"""Dataset sources: real data loaded into a Dataset, with no download at run time.

The offline source files are read from `$PFTLAB_DATA` (else `cache_dir() / "datasets"`), checked against their
sha256 (see `files.CHECKSUMS`) and decoded once into `cache_dir() / "decoded"`.
"""

from __future__ import annotations

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.cifar_bin import cifar100
from pftlab.data.sources.cifar_jpeg import cifar10
from pftlab.data.sources.files import data_root, verify
from pftlab.data.sources.heart_csv import heart
from pftlab.data.sources.idx import fashion_mnist, mnist
from pftlab.data.sources.mnistm_png import mnist_m
from pftlab.data.sources.qmnist_tsv import QMNISTWriters, qmnist_writers
from pftlab.data.sources.usps_mat import usps

__all__ = [
    "QMNISTWriters",
    "cifar10",
    "cifar100",
    "data_root",
    "fashion_mnist",
    "heart",
    "mnist",
    "mnist_m",
    "qmnist_writers",
    "sklearn_digits",
    "usps",
    "verify",
]


def sklearn_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1].

    The UCI optdigits test set, shipped inside scikit-learn, so it needs no download.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    return Dataset(x, bunch.target.astype(np.int64), 10, "sklearn-digits", {"source": "sklearn.datasets.load_digits"})
