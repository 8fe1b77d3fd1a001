"""CIFAR-10 from `cifar10_jpeg.tar.gz`: `cifar10/{train,test}/<class>/<n>.jpg`, decoded with Pillow.

When the official binary archive (`cifar-10-binary.tar.gz`, what `pftlab data fetch cifar10`
downloads) is in the data root, `cifar10()` reads that instead: the original pixels.

The images were stored as JPEG (quality 75), so pixel values differ slightly from the original CIFAR-10 arrays.
Classes are the folder names in sorted order (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck);
samples are ordered by class, then by the integer file number n, so the order is the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.cifar_bin import CIFAR10_ARCHIVE, decode_cifar10
from pftlab.data.sources.files import cached_arrays, check_split, data_root, decode_image, read_tar

ARCHIVE = "cifar10_jpeg.tar.gz"
SPLITS = ("train", "test")


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    found: dict[str, list[tuple[str, int, np.ndarray]]] = {s: [] for s in SPLITS}
    for name, data in read_tar(paths[ARCHIVE]):
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "cifar10" or not parts[3].endswith(".jpg"):
            continue  # the archive's README.md
        _, split, cls, fname = parts
        if split not in found:
            raise ValueError(f"{ARCHIVE}: unexpected split folder in {name}")
        try:
            image = decode_image(data)
        except Exception as e:
            raise ValueError(f"{ARCHIVE}: cannot decode {name}: {e}") from e
        found[split].append((cls, int(fname.removesuffix(".jpg")), image))
    classes = sorted({cls for entries in found.values() for cls, _, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    arrays: dict[str, np.ndarray] = {"classes": np.array(classes)}
    for split, entries in found.items():
        if not entries:
            raise ValueError(f"{ARCHIVE}: no images under cifar10/{split}/")
        entries.sort(key=lambda e: (index[e[0]], e[1]))
        arrays[f"x_{split}"] = np.stack([e[2] for e in entries])
        arrays[f"y_{split}"] = np.array([index[e[0]] for e in entries], dtype=np.uint8)
    return arrays


def cifar10(split: str = "train") -> Dataset:
    """CIFAR-10: 50,000 train / 10,000 test images, x (N, 3, 32, 32) float32 in [0, 1], 10 classes.

    `meta["classes"]` names the classes. The first call decodes both splits (several seconds) and caches them as
    uint8; later calls of either split only load the cache.
    """
    check_split(split, SPLITS)
    keys = ["classes", f"x_{split}", f"y_{split}"]
    if (data_root() / CIFAR10_ARCHIVE).is_file():
        source, arrays = CIFAR10_ARCHIVE, cached_arrays("cifar10-bin", [CIFAR10_ARCHIVE], decode_cifar10, keys)
    else:
        source, arrays = ARCHIVE, cached_arrays("cifar10", [ARCHIVE], _decode, keys=keys)
    x = arrays[f"x_{split}"].astype(np.float32) / np.float32(255.0)
    classes = [str(c) for c in arrays["classes"]]
    meta = {"source": source, "split": split, "classes": classes}
    return Dataset(x, arrays[f"y_{split}"].astype(np.int64), len(classes), "cifar10", meta)
