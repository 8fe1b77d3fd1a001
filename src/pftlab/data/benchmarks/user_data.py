"""A user's own data as a benchmark, through the config alone.

`image-folder`: PATH/<client or domain>/<class>/<image>; each top folder is a client
(`layout = "client/class"`) or a domain split IID into `clients_per_domain` clients
(`layout = "domain/class"`). Images are decoded with Pillow, converted to RGB or grey and
resized to `image_size`; classes are the union of class-folder names, sorted.

`table`: a CSV or Parquet file with a client column, a label column and feature columns
(default: every other column); each distinct client value is a client, labels are mapped to
0..K-1 in sorted order, features must be numbers (an empty or non-numeric cell is refused with
its row and column) and are standardised with the pooled mean and std. Parquet needs the
`parquet` extra (pyarrow).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class FolderParams(Strict):
    path: str = Field("", max_length=4096, description="the folder: PATH/<client or domain>/<class>/<image>")
    layout: Literal["client/class", "domain/class"] = "client/class"
    clients_per_domain: int = Field(1, ge=1, le=10_000, description="layout = 'domain/class': IID clients per domain")
    image_size: int = Field(32, ge=4, le=512)
    channels: Literal[1, 3] = 3


class TableParams(Strict):
    path: str = Field("", max_length=4096, description="a .csv or .parquet file")
    client_column: str = Field("client", min_length=1)
    label_column: str = Field("label", min_length=1)
    feature_columns: list[str] = Field(default=[], description="[] = every other column")
    standardize: bool = True


def _existing(path: str, what: str) -> Path:
    if not path:
        raise UserError(f"data.path is required for this benchmark: {what}")
    p = Path(path).expanduser()
    if "\0" in path or not p.exists():
        raise UserError(f"data.path {path!r} does not exist; expected {what}")
    return p


def _sorted_labels(values: list[str]) -> list[str]:
    try:
        return sorted(set(values), key=float)
    except ValueError:
        return sorted(set(values))


def _load_image(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            im = opened.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot decode image {path}: {err}; fix or remove it") from None
    return arr.transpose(2, 0, 1) if channels == 3 else arr[None]


def folder_pools(p: FolderParams, seed: int) -> list[ClientPool]:
    root = _existing(p.path, "a folder PATH/<client or domain>/<class>/<image>")
    groups = sorted(d for d in root.iterdir() if d.is_dir())
    files = {
        g: {
            c.name: sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            for c in sorted(g.iterdir())
            if c.is_dir()
        }
        for g in groups
    }
    classes = _sorted_labels([c for per_class in files.values() for c in per_class])
    if not classes or not any(f for per_class in files.values() for f in per_class.values()):
        raise UserError(f"no images under {root}; expected {root}/<client or domain>/<class>/<image>.png|jpg|...")
    index = {c: i for i, c in enumerate(classes)}
    pools = []
    for g in groups:
        paths = [(f, index[c]) for c, fs in files[g].items() for f in fs]
        if not paths:
            continue
        x = np.stack([_load_image(f, p.image_size, p.channels) for f, _ in paths])
        y = np.array([label for _, label in paths], dtype=np.int64)
        data = Dataset(x, y, len(classes), g.name, {"classes": classes})
        if p.layout == "client/class":
            pools.append(ClientPool(data, g.name, np.arange(len(y))))
            continue
        order = numpy_rng(seed, "domain-split", g.name).permutation(len(y))
        for k, part in enumerate(np.array_split(order, p.clients_per_domain)):
            part = np.sort(part)
            pools.append(ClientPool(data.subset(part), g.name if p.clients_per_domain == 1 else f"{g.name}/{k}", part))
    return pools


def _read_table(path: Path) -> dict[str, list[Any]]:
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("reading Parquet needs pyarrow: pip install 'pftlab[parquet]'") from None
        try:
            table: dict[str, list[Any]] = pq.read_table(path).to_pydict()
            return table
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"{path.name} is not a readable Parquet file: {str(err).splitlines()[0]}") from None
    if path.suffix.lower() != ".csv":
        raise UserError(f"data.path {str(path)!r}: expected a .csv or .parquet file")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as err:  # binary garbage, a NUL byte
        raise UserError(f"{path.name} is not a readable UTF-8 CSV file: {err}") from None
    if len(set(columns)) != len(columns):
        raise UserError(f"{path.name}: the header names a column twice: {', '.join(columns)}")
    for i, r in enumerate(rows):  # a truncated or appended row has too few or too many cells
        if None in r or any(v is None for v in r.values()):
            raise UserError(f"{path.name}: row {i + 1} does not have the header's {len(columns)} cells")
    return {c: [r[c] for r in rows] for c in columns}


def table_pools(p: TableParams, seed: int) -> list[ClientPool]:
    path = _existing(p.path, "a .csv or .parquet file with client, label and feature columns")
    table = _read_table(path)
    for col in (p.client_column, p.label_column, *p.feature_columns):
        if col not in table:
            raise UserError(f"{path.name} has no column {col!r}; its columns: {', '.join(table)}")
    features = p.feature_columns or [c for c in table if c not in (p.client_column, p.label_column)]
    if not features:
        raise UserError(f"{path.name} has no feature columns besides {p.client_column!r} and {p.label_column!r}")
    if not table[p.label_column]:
        raise UserError(f"{path.name} has a header but no rows")
    x = np.empty((len(table[p.label_column]), len(features)), dtype=np.float32)
    for j, col in enumerate(features):
        for i, v in enumerate(table[col]):
            try:
                x[i, j] = float(v)
            except (TypeError, ValueError):
                raise UserError(f"{path.name}: row {i + 1}, column {col!r}: {v!r} is not a number") from None
    if not np.isfinite(x).all():
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise UserError(f"{path.name}: row {i + 1}, column {features[j]!r} is not finite; fill missing values first")
    if p.standardize:
        std = x.std(0)
        x = (x - x.mean(0)) / np.where(std == 0, 1, std)
    labels = [str(v) for v in table[p.label_column]]
    classes = _sorted_labels(labels)
    y = np.array([classes.index(v) for v in labels], dtype=np.int64)
    owner = np.array([str(v) for v in table[p.client_column]])
    pools = []
    for client in _sorted_labels(owner.tolist()):
        idx = np.flatnonzero(owner == client)
        pools.append(ClientPool(Dataset(x[idx], y[idx], len(classes), client, {"classes": classes}), client, idx))
    return pools


FOLDER = Benchmark(
    "image-folder",
    "your images (domains / clients)",
    "a folder of images: PATH/<client or domain>/<class>/<image>",
    FolderParams,
    folder_pools,
    size=lambda p: "from data.path",
)
TABLE = Benchmark(
    "table",
    "your table (clients)",
    "a CSV or Parquet table with a client column, a label column and feature columns",
    TableParams,
    table_pools,
    size=lambda p: "from data.path",
)
