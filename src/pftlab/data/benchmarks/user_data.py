"""A user's own data as a benchmark, through the config alone.

`image-folder`: PATH/<client or domain>/<class>/<image>; each top folder is a client
(`layout = "client/class"`) or a domain split IID into `clients_per_domain` clients
(`layout = "domain/class"`). Images are decoded with Pillow, converted to RGB or grey and
resized to `image_size`; classes are the union of class-folder names, sorted. Hidden entries
(a name starting with '.', e.g. `.ipynb_checkpoints`, `.DS_Store`, macOS `._x.png`) are skipped.

`table`: a CSV or Parquet file with a client column, a label column and feature columns
(default: every other column); each distinct client value is a client, labels are mapped to
0..K-1 in sorted order, features must be numbers (an empty or non-numeric cell is refused with
its row and column) and are standardised with the pooled mean and std, computed in float64
after dividing each column by its largest magnitude (so a column of 1e300 or of 1e-300 keeps
its spread). Parquet needs the `parquet` extra (pyarrow).

Client and label values, and class-folder names, are read in one canonical spelling before they
are sorted (`canonical`): Unicode NFC, surrounding spaces dropped, and a number written as its
value, so " 1", "1", "01", "1.0", "+1" and the integer 1 are one client or class. Numbers sort by
value before text, text by code point: the same files give the same clients, classes and
partition in every process. Missing client or label values (an empty cell, null, NaN) are refused.

Refused before anything is decoded or trained, each in one line: fewer than 2 clients or 2
classes, a client folder without images, a class folder without images in any client, a domain
with fewer images than `clients_per_domain`, and (in `federate`) a client whose split leaves it
no train or no test sample.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, localcontext
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


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MISSING = frozenset({"nan", "none", "null"})


def _canonical_number(d: Decimal) -> str:
    """A decimal number's one spelling: an integer without point or zeros, else the shortest positional form."""
    if d == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = 120
        d = d.normalize()
        if abs(d.adjusted()) > 30:  # 1E+40: an exponent, never a 40-digit integer
            return str(d)
        return str(int(d)) if d == d.to_integral_value() else format(d, "f")


def canonical(value: Any) -> str | None:
    """The canonical spelling of a client or label value, or None where the value is missing.

    Unicode NFC with surrounding spaces dropped; a number (an int, a finite float, or text such as
    " 1", "01", "1.0", "+1", "1e0") as its exact decimal value ("1"); True / False as "True" /
    "False". Missing: None, NaN, and text that is empty or reads "nan", "none" or "null".
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return _canonical_number(Decimal(repr(value))) if math.isfinite(value) else str(value)
    text = unicodedata.normalize("NFC", value if isinstance(value, str) else str(value)).strip()
    if not text or text.lower() in _MISSING:
        return None
    if len(text) <= 100 and _NUMBER.fullmatch(text):
        return _canonical_number(Decimal(text))
    return text


def _sort_key(name: str) -> tuple[int, Decimal, str]:
    """Numbers first, by value; then text, by code point (a total order: no ties between distinct names)."""
    if len(name) <= 100 and _NUMBER.fullmatch(name):
        return (0, Decimal(name), name)
    return (1, Decimal(0), name)


def ordered(values: Iterable[str]) -> list[str]:
    """The distinct canonical `values`, sorted by `_sort_key`: the same list whatever the hash seed."""
    return sorted(set(values), key=_sort_key)


def _spell(name: str) -> str:
    return canonical(name) or name  # a folder named " " keeps its name


def _listing(folder: Path) -> list[Path]:
    """The visible entries of `folder` (no name starting with '.'), sorted; an unreadable folder is refused."""
    try:
        return sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError as err:
        raise UserError(f"cannot list folder {folder}: {err.strerror or err}; make it readable") from None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a symlink loop, a name too long
        return False


def decode_errors() -> tuple[type[Exception], ...]:
    """What Pillow raises for a file that is no image it can read (or one too large to be safe)."""
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError)


def image_array(image: Any, size: int, channels: int) -> np.ndarray:
    """A Pillow image as float32 in [0, 1], channels first: RGB (3) or grey (1), resized to size x size (bilinear)."""
    from PIL import Image

    im = image.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    out: np.ndarray = arr.transpose(2, 0, 1) if channels == 3 else arr[None]
    return out


def _load_image(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as opened:
            return image_array(opened, size, channels)
    except decode_errors() as err:
        raise UserError(f"cannot decode image {path}: {err}; fix or remove it") from None


def domain_parts(n: int, domain: str, clients: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """A domain's `n` samples split IID into `clients` clients: each client's name ('domain/k') and sorted indices.

    The split is drawn from (seed, 'domain-split', domain), so it does not depend on the other domains.
    """
    if clients == 1:
        return [(domain, np.arange(n))]
    order = numpy_rng(seed, "domain-split", domain).permutation(n)
    return [(f"{domain}/{k}", np.sort(part)) for k, part in enumerate(np.array_split(order, clients))]


def folder_pools(p: FolderParams, seed: int) -> list[ClientPool]:
    root = _existing(p.path, "a folder PATH/<client or domain>/<class>/<image>")
    if not _is_dir(root):
        raise UserError(
            f"data.path {p.path!r} is a file; benchmark 'image-folder' expects a folder PATH/<client>/<class>"
        )
    where = f"expected {root}/<client or domain>/<class>/<image>.png|jpg|..."
    folders: dict[str, Path] = {}
    files: dict[str, dict[str, list[Path]]] = {}  # client -> class -> images, both canonically spelled
    for g in (e for e in _listing(root) if _is_dir(e)):
        name = _spell(g.name)
        if name in folders:
            raise UserError(
                f"folders {folders[name].name!r} and {g.name!r} under {root} name the same client {name!r} "
                "(names are compared as Unicode NFC without surrounding spaces, numbers by value); rename one"
            )
        folders[name] = g
        per_class: dict[str, list[Path]] = {}
        for c in (e for e in _listing(g) if _is_dir(e)):
            images = [f for f in _listing(c) if f.suffix.lower() in IMAGE_SUFFIXES]
            per_class.setdefault(_spell(c.name), []).extend(images)
        files[name] = per_class
    if not any(f for per_class in files.values() for f in per_class.values()):
        raise UserError(f"no images under {root}; {where}")
    classes = ordered(c for per_class in files.values() for c in per_class)
    empty = [c for c in classes if not any(per_class.get(c) for per_class in files.values())]
    if empty:
        raise UserError(
            f"class folder {empty[0]!r} holds no images in any client under {root}; add images or remove it"
        )
    if len(classes) < 2:
        raise UserError(f"{root} has one class ({classes[0]!r}); a classifier needs at least 2 class folders")
    for name, per_class in files.items():
        n = sum(len(f) for f in per_class.values())
        if n == 0:
            raise UserError(f"client folder {folders[name].name!r} under {root} holds no images; {where}")
        if p.layout == "domain/class" and n < p.clients_per_domain:
            raise UserError(
                f"domain {name!r} has {n} images, fewer than data.clients_per_domain = {p.clients_per_domain}; "
                f"allowed: clients_per_domain <= the smallest domain's image count"
            )
    if len(files) * (p.clients_per_domain if p.layout == "domain/class" else 1) < 2:
        raise UserError(
            f"{root} has one {p.layout.split('/')[0]} folder ({next(iter(files))!r}); a federation needs at least 2 "
            "clients: add a folder" + (" or raise data.clients_per_domain" if p.layout == "domain/class" else "")
        )
    index = {c: i for i, c in enumerate(classes)}
    pools = []
    for name, per_class in files.items():
        paths = [(f, index[c]) for c, fs in per_class.items() for f in fs]
        x = np.stack([_load_image(f, p.image_size, p.channels) for f, _ in paths])
        y = np.array([label for _, label in paths], dtype=np.int64)
        data = Dataset(x, y, len(classes), name, {"classes": classes})
        if p.layout == "client/class":
            pools.append(ClientPool(data, name, np.arange(len(y))))
            continue
        for client, part in domain_parts(len(y), name, p.clients_per_domain, seed):
            pools.append(ClientPool(data.subset(part), client, part))
    return pools


def _column_name(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip()


def _read_table(path: Path) -> dict[str, list[Any]]:
    """The table's columns by name (NFC, surrounding spaces dropped), each a list of its cells."""
    if _is_dir(path):
        raise UserError(f"data.path {str(path)!r} is a folder; benchmark 'table' expects a .csv or .parquet file")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("reading Parquet needs pyarrow: pip install 'pftlab[parquet]'") from None
        try:
            raw: dict[str, list[Any]] = pq.read_table(path).to_pydict()
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"{path.name} is not a readable Parquet file: {str(err).splitlines()[0]}") from None
        columns = list(raw)
        cells = list(raw.values())
    elif path.suffix.lower() != ".csv":
        raise UserError(f"data.path {str(path)!r}: expected a .csv or .parquet file")
    else:
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not a column name
                reader = csv.reader(f)
                columns = next(reader, [])
                rows = [r for r in reader if r]  # a blank line is no row
        except (UnicodeDecodeError, csv.Error) as err:  # binary garbage, a NUL byte
            raise UserError(f"{path.name} is not a readable UTF-8 CSV file: {err}") from None
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror or err}") from None
        for i, r in enumerate(rows):  # a truncated or appended row has too few or too many cells
            if len(r) != len(columns):
                raise UserError(f"{path.name}: row {i + 1} does not have the header's {len(columns)} cells")
        cells = [[r[j] for r in rows] for j in range(len(columns))]
    names = [_column_name(c) for c in columns]
    if len(set(names)) != len(names):
        raise UserError(f"{path.name}: the header names a column twice: {', '.join(columns)}")
    return dict(zip(names, cells, strict=True))


def column_values(source: str, column: str, cells: list[Any], what: str) -> list[str]:
    """The canonical spelling of every cell of a client or label column; a missing one is refused with its row."""
    out = []
    for i, v in enumerate(cells):
        c = canonical(v)
        if c is None:
            raise UserError(
                f"{source}: row {i + 1} has no {what} (column {column!r} holds {v!r}); every row needs a client "
                "and a label: fill or drop that row"
            )
        out.append(c)
    return out


def standardized(x: np.ndarray) -> np.ndarray:
    """Each column minus its mean over its std, as float32 (a constant column becomes 0).

    Computed in float64 after dividing each column by its largest magnitude, so a column of 1e300
    (whose variance overflows float64) or of 1e-30 (whose variance underflows float32) keeps its
    spread instead of being zeroed.
    """
    x = np.asarray(x, dtype=np.float64)
    scale = np.abs(x).max(0) if len(x) else np.ones(x.shape[1:])
    z = x / np.where(scale == 0, 1.0, scale)
    mean, std = z.mean(0), z.std(0)
    out: np.ndarray = ((z - mean) / np.where(std == 0, 1.0, std)).astype(np.float32)
    return out


def scaled_features(x: np.ndarray, features: list[str], name: str, standardize: bool) -> np.ndarray:
    """`x` `standardized`, or (standardize = false) as float32 unchanged: a column float32 cannot hold is refused."""
    if standardize:
        return standardized(x)
    big, tiny = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
    for j, col in enumerate(features):
        top = float(np.abs(x[:, j]).max())
        if top > big or 0 < top < tiny:
            raise UserError(
                f"{name}: column {col!r} reaches magnitude {top:.3g}, which float32 stores as "
                f"{'inf' if top > big else '0 (or a few bits)'}; allowed: |value| in [{tiny:.3g}, {big:.3g}] "
                "with data.standardize = false: set it to true (the default) or rescale the column"
            )
    return x.astype(np.float32)


def table_pools(p: TableParams, seed: int) -> list[ClientPool]:
    path = _existing(p.path, "a .csv or .parquet file with client, label and feature columns")
    table = _read_table(path)
    client_column, label_column = _column_name(p.client_column), _column_name(p.label_column)
    wanted = [_column_name(c) for c in p.feature_columns]
    for col in (client_column, label_column, *wanted):
        if col not in table:
            raise UserError(f"{path.name} has no column {col!r}; its columns: {', '.join(table)}")
    if client_column == label_column:
        raise UserError(f"data.client_column and data.label_column are both {client_column!r}; name two columns")
    features = wanted or [c for c in table if c not in (client_column, label_column)]
    if not features:
        raise UserError(f"{path.name} has no feature columns besides {client_column!r} and {label_column!r}")
    if not table[label_column]:
        raise UserError(f"{path.name} has a header but no rows")
    owner = column_values(path.name, client_column, table[client_column], "client")
    labels = column_values(path.name, label_column, table[label_column], "label")
    x = feature_matrix(path.name, table, features)
    classes = ordered(labels)
    if len(classes) < 2:
        raise UserError(
            f"{path.name}: column {label_column!r} holds one label ({classes[0]!r}); a classifier needs at least 2"
        )
    x32 = scaled_features(x, features, path.name, p.standardize)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[v] for v in labels], dtype=np.int64)
    if len(set(owner)) < 2:
        raise UserError(
            f"{path.name}: column {client_column!r} holds one client ({owner[0]!r}); a federation needs at least 2"
        )
    return owner_pools(x32, y, classes, owner)


def feature_matrix(source: str, columns: dict[str, list[Any]], features: list[str]) -> np.ndarray:
    """The feature columns as float64 (N, len(features)); a cell that is no finite number is refused with its place."""
    x = np.empty((len(columns[features[0]]), len(features)), dtype=np.float64)
    for j, col in enumerate(features):
        for i, v in enumerate(columns[col]):
            try:
                x[i, j] = float(v)
            except (TypeError, ValueError, OverflowError):
                raise UserError(f"{source}: row {i + 1}, column {col!r}: {v!r} is not a number") from None
    if not np.isfinite(x).all():
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise UserError(
            f"{source}: row {i + 1}, column {features[j]!r} is not finite ({columns[features[j]][i]!r}); "
            "allowed: finite numbers within float64: fill missing values first"
        )
    return x


def owner_pools(
    x: np.ndarray, y: np.ndarray, classes: list[str], owner: list[str], clients_per_owner: int = 1, seed: int = 0
) -> list[ClientPool]:
    """One client per distinct `owner` value, in `ordered` order, or `clients_per_owner` IID clients per value
    (`domain_parts`); each pool's source_index is its rows."""
    rows: dict[str, list[int]] = {}
    for i, name in enumerate(owner):
        rows.setdefault(name, []).append(i)
    pools = []
    for name in ordered(rows):
        own = np.array(rows[name], dtype=np.int64)
        for client, part in domain_parts(len(own), name, clients_per_owner, seed):
            idx = own[part]
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
