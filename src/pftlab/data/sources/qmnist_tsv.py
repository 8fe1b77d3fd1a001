"""QMNIST writer metadata for MNIST, from `qmnist/qmnist-{train,test}-labels.tsv.gz` (8 tab-separated int columns).

The columns (facebookresearch/qmnist README): 0 character class 0..9, 1 NIST HSF series (0 and 1: Census employees,
4: high-school students), 2 NIST writer id, 3 digit index for this writer, 4 NIST class code 30..39, 5 global NIST
digit index, 6 duplicate (always 0 here), 7 unused (0). Train rows align 1:1 with MNIST train; the first 10,000 of the
60,000 test rows align 1:1 with MNIST test (the other 50,000 are the reconstructed lost MNIST test digits).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from pftlab.data.sources.files import cached_arrays, check_split

COLUMNS = ("label", "series", "writer", "writer_digit", "nist_class", "nist_index", "duplicate", "unused")
_MNIST_ROWS = {"train": 60_000, "test": 10_000}


@dataclass(frozen=True)
class QMNISTWriters:
    """One row per MNIST image of `split`, each field an int64 array (N,), in the MNIST order."""

    split: str
    label: np.ndarray  # character class 0..9, equal to the MNIST label
    series: np.ndarray  # NIST HSF series: 0 or 1 (Census employees), 4 (high-school students)
    writer: np.ndarray  # NIST writer id
    writer_digit: np.ndarray  # index of this digit among its writer's digits
    nist_class: np.ndarray  # NIST class code 30..39 (= 30 + label)
    nist_index: np.ndarray  # global NIST digit index
    duplicate: np.ndarray  # 0: not a duplicate
    unused: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "split"}


def parse_tsv(path: Path) -> np.ndarray:
    """A gzip TSV of integers with 8 columns as an int32 (rows, 8) array."""
    text = gzip.decompress(Path(path).read_bytes()).decode("ascii")
    rows = [line for line in text.splitlines() if line.strip()]
    table = np.array(text.split(), dtype=np.int64)
    if table.size != 8 * len(rows):
        raise ValueError(f"{path}: expected 8 columns on each of {len(rows)} rows, got {table.size} values")
    return table.reshape(len(rows), 8).astype(np.int32)


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    (path,) = paths.values()
    return {"table": parse_tsv(path)}


def qmnist_writers(split: str = "train") -> QMNISTWriters:
    """QMNIST metadata aligned with `mnist(split)`: 60,000 train rows or the first 10,000 test rows."""
    check_split(split)
    table = cached_arrays(f"qmnist-{split}", [f"qmnist/qmnist-{split}-labels.tsv.gz"], _decode)["table"]
    table = table[: _MNIST_ROWS[split]].astype(np.int64)
    return QMNISTWriters(split, *(np.ascontiguousarray(table[:, i]) for i in range(len(COLUMNS))))
