"""CIFAR-10 and CIFAR-100 from the official binary archives (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`).

The binary version, not the Python one: the Python batches are pickles, and unpickling a
downloaded file runs whatever code it holds. Each record is the label byte(s) and 3,072 pixel
bytes (1,024 red, then green, then blue, each 32x32 row-major), read straight out of the
archive. CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin`, `test_batch.bin`, class names
in `batches.meta.txt`. CIFAR-100: `cifar-100-binary/{train,test}.bin` with a coarse (20
superclasses) and a fine (100 classes) label byte per record, names in `{coarse,fine}_label_names.txt`.
Samples keep the archive's order (batches 1-5, then records in order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.files import cached_arrays, check_split, read_tar

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR100_ARCHIVE = "cifar-100-binary.tar.gz"
PIXELS = 3 * 32 * 32
_CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))


def parse_records(data: bytes, label_bytes: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One .bin file as (labels (N, label_bytes) uint8, images (N, 3, 32, 32) uint8)."""
    record = label_bytes + PIXELS
    if len(data) % record:
        raise ValueError(f"{name}: {len(data)} bytes is not a whole number of {record}-byte records")
    table = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    return table[:, :label_bytes].copy(), table[:, label_bytes:].reshape(-1, 3, 32, 32).copy()


def _names(text: bytes) -> list[str]:
    return [line.strip() for line in text.decode("ascii").splitlines() if line.strip()]


def decode_cifar10(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    files = {name.rsplit("/", 1)[-1]: data for name, data in read_tar(paths[CIFAR10_ARCHIVE])}
    missing = [f for f in (*_CIFAR10_TRAIN, "test_batch.bin", "batches.meta.txt") if f not in files]
    if missing:
        raise ValueError(f"{CIFAR10_ARCHIVE}: lacks {', '.join(missing)}")
    arrays: dict[str, np.ndarray] = {"classes": np.array(_names(files["batches.meta.txt"]))}
    for split, names in (("train", _CIFAR10_TRAIN), ("test", ("test_batch.bin",))):
        parts = [parse_records(files[n], 1, n) for n in names]
        arrays[f"y_{split}"] = np.concatenate([labels[:, 0] for labels, _ in parts])
        arrays[f"x_{split}"] = np.concatenate([images for _, images in parts])
    if int(arrays["y_train"].max()) >= len(arrays["classes"]):
        raise ValueError(f"{CIFAR10_ARCHIVE}: a label is out of range for {len(arrays['classes'])} classes")
    return arrays


def decode_cifar100(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    files = {name.rsplit("/", 1)[-1]: data for name, data in read_tar(paths[CIFAR100_ARCHIVE])}
    needed = ("train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt")
    missing = [f for f in needed if f not in files]
    if missing:
        raise ValueError(f"{CIFAR100_ARCHIVE}: lacks {', '.join(missing)}")
    arrays: dict[str, np.ndarray] = {
        "classes": np.array(_names(files["fine_label_names.txt"])),
        "coarse_classes": np.array(_names(files["coarse_label_names.txt"])),
    }
    for split in ("train", "test"):
        labels, images = parse_records(files[f"{split}.bin"], 2, f"{split}.bin")
        arrays[f"coarse_{split}"], arrays[f"y_{split}"], arrays[f"x_{split}"] = labels[:, 0], labels[:, 1], images
    return arrays


def cifar100(split: str = "train", coarse: bool = False) -> Dataset:
    """CIFAR-100: 50,000 train / 10,000 test images, x (N, 3, 32, 32) float32 in [0, 1], 100 classes
    (20 superclasses with `coarse`). `meta["classes"]` names them."""
    check_split(split)
    keys = ["classes", "coarse_classes", f"x_{split}", f"y_{split}", f"coarse_{split}"]
    arrays = cached_arrays("cifar100-bin", [CIFAR100_ARCHIVE], decode_cifar100, keys)
    x = arrays[f"x_{split}"].astype(np.float32) / np.float32(255.0)
    names, y = ("coarse_classes", f"coarse_{split}") if coarse else ("classes", f"y_{split}")
    classes = [str(c) for c in arrays[names]]
    meta = {"source": CIFAR100_ARCHIVE, "split": split, "classes": classes, "coarse": coarse}
    return Dataset(x, arrays[y].astype(np.int64), len(classes), "cifar100", meta)
