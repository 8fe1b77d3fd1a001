"""MNIST and Fashion-MNIST from the four standard gzip IDX files: `<folder>/{train,t10k}-{images-idx3,labels-idx1}`."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.files import cached_arrays, check_split

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """One gzip IDX file of unsigned bytes (magic 0x0000 08 <ndim>, big-endian uint32 dims) as a uint8 array."""
    data = gzip.decompress(Path(path).read_bytes())
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims).copy()


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    images, labels = (read_idx(p) for p in paths.values())
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"IDX images {images.shape} do not match labels {labels.shape}")
    return {"x": images, "y": labels}


def _load(folder: str, name: str, split: str, classes: tuple[str, ...]) -> Dataset:
    prefix = _PREFIX[check_split(split)]
    sources = [f"{folder}/{prefix}-images-idx3-ubyte.gz", f"{folder}/{prefix}-labels-idx1-ubyte.gz"]
    arrays = cached_arrays(f"{name}-{split}", sources, _decode)
    x = (arrays["x"].astype(np.float32) / np.float32(255.0))[:, None, :, :]
    meta = {"source": folder, "split": split, "classes": list(classes)}
    return Dataset(x, arrays["y"].astype(np.int64), len(classes), name, meta)


def mnist(split: str = "train") -> Dataset:
    """MNIST: 60,000 train / 10,000 test handwritten digits, x (N, 1, 28, 28) float32 in [0, 1], 10 classes."""
    return _load("mnist", "mnist", split, tuple(str(d) for d in range(10)))


def fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST: 60,000 train / 10,000 test Zalando article images, x (N, 1, 28, 28) float32 in [0, 1]."""
    return _load("fashion-mnist", "fashion-mnist", split, FASHION_CLASSES)
