"""MNIST-M (a Digit-5 domain) from `mnist_m_subset.tar.gz`.

The archive holds `mnist_m/mnist_m_{train,test}/<id>.png` (32x32 RGB) and `mnist_m/mnist_m_{train,test}_labels.txt`
with one `<file> <label>` line per image: the first 12,000 of the 59,001 MNIST-M train images and all 9,001 test
images. Samples keep the order of the labels file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.files import cached_arrays, check_split, decode_image, read_tar

ARCHIVE = "mnist_m_subset.tar.gz"
SPLITS = ("train", "test")


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    members = dict(read_tar(paths[ARCHIVE]))
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        labels_name = f"mnist_m/mnist_m_{split}_labels.txt"
        if labels_name not in members:
            raise ValueError(f"{ARCHIVE}: {labels_name} is missing")
        images, labels = [], []
        for lineno, line in enumerate(members[labels_name].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            fname, label = line.split()
            image_name = f"mnist_m/mnist_m_{split}/{fname}"
            if image_name not in members:
                raise ValueError(f"{ARCHIVE}: {labels_name} line {lineno} names {fname}, which is not in the archive")
            try:
                images.append(decode_image(members[image_name]))
            except Exception as e:
                raise ValueError(f"{ARCHIVE}: cannot decode {image_name}: {e}") from e
            labels.append(int(label))
        arrays[f"x_{split}"] = np.stack(images)
        arrays[f"y_{split}"] = np.array(labels, dtype=np.uint8)
    return arrays


def mnist_m(split: str = "train") -> Dataset:
    """MNIST-M: 12,000 train / 9,001 test coloured digits, x (N, 3, 32, 32) float32 in [0, 1], 10 classes.

    The first call decodes both splits and caches them as uint8; later calls of either split only load the cache.
    """
    check_split(split, SPLITS)
    arrays = cached_arrays("mnist-m", [ARCHIVE], _decode, keys=[f"x_{split}", f"y_{split}"])
    x = arrays[f"x_{split}"].astype(np.float32) / np.float32(255.0)
    meta = {"source": ARCHIVE, "split": split, "classes": [str(d) for d in range(10)]}
    return Dataset(x, arrays[f"y_{split}"].astype(np.int64), 10, "mnist-m", meta)
