"""`hf-dataset`: a Hugging Face `datasets` dataset as a benchmark, through the config alone.

What a Flower Datasets or Hugging Face user already has: a folder written by
`Dataset.save_to_disk` or `DatasetDict.save_to_disk` (`data.path`), or a dataset on the Hub
(`data.hub = "user/name"`, downloaded by `datasets.load_dataset`: only where the machine is
online). A DatasetDict gives the split `data.split` (default "train"); a plain Dataset has no
splits, so a `data.split` other than "train" is refused for it.

Clients: each distinct value of `data.client_column` is a client. Or, where the clients come
from domains instead (`data.domain_column` set), `data.client_column` is not read and each
distinct domain value is split IID into `data.clients_per_domain` clients named 'domain/k',
exactly as image-folder's `layout = "domain/class"` splits a domain folder (the same draw from
(seed, 'domain-split', domain)). A ClassLabel client or domain column names clients by its names.

Labels: a ClassLabel label column keeps its names, in its order, as the classes (a name no row
uses is still a class); any other label column is read like the table benchmark's: values in
their canonical spelling, sorted (numbers by value, then text).

Inputs: either `data.image_column`, a column of datasets' Image feature (decoded to Pillow,
converted to RGB or grey by `data.channels` and resized to `data.image_size`, as image-folder
does), or numeric feature columns (`data.feature_columns`, default every column but the
client / domain and label columns), standardised as the table benchmark does.

Every problem (no `datasets` installed, a missing folder, a folder that is no saved dataset, no
such split, a missing column, a missing client or label, too few clients or classes) is refused
in one line before any image is decoded. Needs the `hf` extra: pip install 'pftlab[hf]'.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.user_data import (
    _existing,
    _is_dir,
    column_values,
    decode_errors,
    feature_matrix,
    image_array,
    ordered,
    owner_pools,
    scaled_features,
)
from pftlab.data.federate import ClientPool

NEEDS_EXTRA = "reading a Hugging Face dataset needs the hf extra: pip install 'pftlab[hf]'"
SAVED = "a folder written by Dataset.save_to_disk or DatasetDict.save_to_disk"


class HFParams(Strict):
    path: str = Field("", max_length=4096, description=SAVED)
    hub: str = Field(
        "",
        max_length=200,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?)?$",
        description="instead of path: a Hub dataset 'user/name' (downloaded; needs the network)",
    )
    split: str = Field("train", min_length=1, max_length=200, description="the split of a DatasetDict")
    client_column: str = Field("client", min_length=1, description="each distinct value is a client")
    domain_column: str = Field("", description="instead of client_column: each domain is clients_per_domain clients")
    clients_per_domain: int = Field(1, ge=1, le=10_000, description="with domain_column: IID clients per domain")
    label_column: str = Field("label", min_length=1)
    image_column: str = Field("", description="a column of images (Image feature); '' = numeric feature columns")
    feature_columns: list[str] = Field(default=[], description="[] = every column but the client and label ones")
    image_size: int = Field(32, ge=4, le=512)
    channels: Literal[1, 3] = 3
    standardize: bool = True

    @model_validator(mode="after")
    def _one_way(self) -> HFParams:
        if self.path and self.hub:
            raise ValueError("set data.path (a saved dataset) or data.hub (a Hub name), not both")
        if self.clients_per_domain > 1 and not self.domain_column:
            raise ValueError("data.clients_per_domain splits domains: set data.domain_column too")
        if self.image_column and self.feature_columns:
            raise ValueError("set data.image_column (images) or data.feature_columns (numbers), not both")
        return self


def _load(p: HFParams) -> tuple[Any, str]:
    """The split to read (a `datasets.Dataset`) and how messages name it."""
    if not p.path and not p.hub:
        raise UserError(f"data.path or data.hub is required for benchmark 'hf-dataset': {SAVED}, or a Hub name")
    root = _existing(p.path, SAVED) if p.path else None
    if root is not None and not _is_dir(root):
        raise UserError(f"data.path {p.path!r} is a file; benchmark 'hf-dataset' expects {SAVED}")
    try:
        import datasets
    except ImportError:
        raise UserError(NEEDS_EXTRA) from None
    if root is None:
        try:
            return datasets.load_dataset(p.hub, split=p.split), f"{p.hub} (split {p.split!r})"
        except Exception as err:  # no network, no such dataset or split: whatever the Hub answers, in one line
            raise UserError(
                f"cannot load {p.hub!r} (split {p.split!r}) from the Hugging Face Hub: {_first(err)}"
            ) from None
    try:
        loaded = datasets.load_from_disk(str(root))
    except (OSError, ValueError, TypeError, KeyError) as err:  # not a saved dataset, or a damaged one
        raise UserError(f"data.path {p.path!r} is not {SAVED}: {_first(err)}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if p.split not in loaded:
            raise UserError(f"{p.path} has no split {p.split!r}; its splits: {', '.join(loaded)}")
        return loaded[p.split], f"{p.path} (split {p.split!r})"
    if p.split != "train":
        raise UserError(
            f"{p.path} holds one Dataset, not a DatasetDict, so it has no split {p.split!r}: remove data.split"
        )
    return loaded, p.path


def _first(err: BaseException) -> str:
    """The first line of an error from datasets (or its type where it says nothing)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _names(ds: Any, column: str, cells: list[Any]) -> list[Any]:
    """A ClassLabel column's cells as its names (a missing value, -1 or None, stays None); other cells as they are."""
    import datasets

    feature = ds.features[column]
    if not isinstance(feature, datasets.ClassLabel):
        return cells
    return [None if v is None or v < 0 else feature.names[v] for v in cells]


def _labels(ds: Any, source: str, column: str, cells: list[Any]) -> tuple[list[str], np.ndarray]:
    """The classes and every row's label index: a ClassLabel's names in its order, else the sorted canonical values."""
    import datasets

    feature = ds.features[column]
    if isinstance(feature, datasets.ClassLabel):
        column_values(source, column, _names(ds, column, cells), "label")  # refuses a missing label
        classes = [str(n) for n in feature.names]
        y = np.array(cells, dtype=np.int64)
    else:
        names = column_values(source, column, cells, "label")
        classes = ordered(names)
        index = {c: k for k, c in enumerate(classes)}
        y = np.array([index[v] for v in names], dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise UserError(
            f"{source}: column {column!r} holds one label ({classes[y[0]]!r}); a classifier needs at least 2"
        )
    return classes, y


def _images(ds: Any, source: str, column: str, size: int, channels: int) -> np.ndarray:
    import datasets

    x = np.empty((ds.num_rows, channels, size, size), dtype=np.float32)
    decoder = datasets.Image()
    for i, row in enumerate(ds.select_columns([column])):
        cell = row[column]
        if cell is None:
            raise UserError(f"{source}: row {i + 1} has no image (column {column!r} is empty there); fill or drop it")
        try:
            image = decoder.decode_example(cell) if isinstance(cell, dict) else cell  # an Image(decode=False) column
            x[i] = image_array(image, size, channels)
        except decode_errors() as err:
            raise UserError(f"{source}: cannot decode the image in row {i + 1}, column {column!r}: {err}") from None
    return x


def hf_pools(p: HFParams, seed: int) -> list[ClientPool]:
    ds, source = _load(p)  # says how to install datasets where it is missing
    import datasets

    owner_column = p.domain_column or p.client_column
    wanted = [owner_column, p.label_column, *([p.image_column] if p.image_column else []), *p.feature_columns]
    for col in wanted:
        if col not in ds.column_names:
            raise UserError(f"{source} has no column {col!r}; its columns: {', '.join(ds.column_names)}")
    if owner_column == p.label_column:
        raise UserError(f"the client (or domain) column and data.label_column are both {owner_column!r}; name two")
    if p.image_column in (owner_column, p.label_column):
        raise UserError(f"data.image_column {p.image_column!r} is also the client or label column; name another")
    if p.image_column and not isinstance(ds.features[p.image_column], datasets.Image):
        raise UserError(
            f"{source}: column {p.image_column!r} holds {ds.features[p.image_column]}, not images (datasets' Image "
            "feature); name a column of images or set data.feature_columns instead"
        )
    features = p.feature_columns or [c for c in ds.column_names if c not in (owner_column, p.label_column)]
    if not p.image_column:
        images = [c for c in features if isinstance(ds.features[c], datasets.Image)]
        if images:
            raise UserError(
                f"{source}: column {images[0]!r} holds images: set data.image_column = {images[0]!r}"
                + ("" if p.feature_columns else ", or data.feature_columns to the numeric columns")
            )
        if not features:
            raise UserError(f"{source} has no feature columns besides {owner_column!r} and {p.label_column!r}")
    if ds.num_rows == 0:
        raise UserError(f"{source} has no rows")
    scalars = ds.select_columns([owner_column, p.label_column]).to_dict()
    what = "domain" if p.domain_column else "client"
    owner = column_values(source, owner_column, _names(ds, owner_column, scalars[owner_column]), what)
    classes, y = _labels(ds, source, p.label_column, scalars[p.label_column])
    counts = Counter(owner)
    if len(counts) * p.clients_per_domain < 2:
        raise UserError(
            f"{source}: column {owner_column!r} holds one {what} ({owner[0]!r}); a federation needs at least 2 clients"
            + (": raise data.clients_per_domain" if p.domain_column else "")
        )
    small = [name for name in ordered(counts) if counts[name] < p.clients_per_domain]
    if small:
        raise UserError(
            f"domain {small[0]!r} has {counts[small[0]]} rows, fewer than data.clients_per_domain = "
            f"{p.clients_per_domain}; allowed: clients_per_domain <= the smallest domain's row count"
        )
    if p.image_column:
        x = _images(ds, source, p.image_column, p.image_size, p.channels)
    else:
        x = feature_matrix(source, ds.select_columns(list(dict.fromkeys(features))).to_dict(), features)
        x = scaled_features(x, features, source, p.standardize)
    return owner_pools(x, y, classes, owner, p.clients_per_domain, seed)


BENCHMARK = Benchmark(
    "hf-dataset",
    "your Hugging Face dataset (clients / domains)",
    "a Hugging Face dataset: data.path (a save_to_disk folder) or data.hub, with client and label columns",
    HFParams,
    hf_pools,
    size=lambda p: f"from data.hub {p.hub!r}" if p.hub else "from data.path",
)
