"""chexpert: concept shift through a spurious attribute of chest X-rays (Sex by default).

Reads the user's copy of CheXpert-v1.0-small (registration required, so never fetched) under the
data root: `CheXpert-v1.0-small/train.csv` and the JPEGs its `Path` column names (relative to the
folder that holds CheXpert-v1.0-small/). The label is the `target` finding: 1.0 positive, 0.0 or
blank (not mentioned) negative, -1.0 uncertain, which `uncertain` drops or maps to positive or
negative. The spurious attribute is `Sex` (Male vs Female; Unknown rows dropped),
`Frontal/Lateral` (Frontal vs Lateral) or `AP/PA` (AP vs PA; other projections dropped); the
first-named value counts as 1, so with rho near 1 Male / Frontal / AP go with a positive label.
`frontal_only` keeps frontal views only. Client c gets exactly round(rho_c * n) images whose
attribute agrees with the label, see `spurious`. Images are grey, centre-cropped, resized.

Decoded each run, not cached: CheXpert publishes no checksums (its files are licensed, copies
differ), so a cache could not tell the copy it was built from from a changed one; decoding only
the chosen small JPEGs (about 390x320, at a reduced DCT scale) takes seconds for thousands.
Refused in one line before anything is decoded: a missing folder, train.csv, column or image
file named in the csv, an unreadable label value, and a request the csv cannot fill.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pftlab.core.errors import UserError
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.spurious import SpuriousParams, client_pools, deal, decode_square, refuse_image
from pftlab.data.federate import ClientPool
from pftlab.data.sources.files import data_root, origin

FOLDER = "CheXpert-v1.0-small/"
TABLE = FOLDER + "train.csv"
FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)  # fmt: skip
# each spurious attribute's column values read as 0 and as 1; any other value drops the row
ATTRIBUTE_VALUES = {"Sex": ("Female", "Male"), "Frontal/Lateral": ("Lateral", "Frontal"), "AP/PA": ("PA", "AP")}


class Params(SpuriousParams):
    target: str = Field("Pleural Effusion", description="the finding to predict (a label column of train.csv)")
    uncertain: Literal["drop", "positive", "negative"] = Field("drop", description="what -1.0 (uncertain) becomes")
    spurious: Literal["Sex", "Frontal/Lateral", "AP/PA"] = Field("Sex", description="the attribute correlated with it")
    frontal_only: bool = Field(True, description="keep frontal views only")

    @field_validator("target")
    @classmethod
    def _a_finding(cls, name: str) -> str:
        if name not in FINDINGS:
            raise ValueError(f"unknown CheXpert label column {name!r}; allowed: {', '.join(FINDINGS)}")
        return name

    @model_validator(mode="after")
    def _two_values(self) -> Params:
        if self.spurious == "Frontal/Lateral" and self.frontal_only:
            raise ValueError(
                "data.spurious = 'Frontal/Lateral' needs data.frontal_only = false (frontal views only leave one value)"
            )
        return self


def _label(value: str, uncertain: str) -> int | None:
    """1, 0 or None (dropped) for a label cell; ValueError for a cell that is none of 1.0, 0.0, -1.0, blank."""
    v = float(value) if value.strip() else 0.0
    if v not in (1.0, 0.0, -1.0):
        raise ValueError(value)
    if v == -1.0:
        return None if uncertain == "drop" else int(uncertain == "positive")
    return int(v)


def read_table(path: Path, p: Params) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The kept rows of train.csv: their 0-based row numbers, image paths, labels and attributes."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            need = ["Path", p.target, p.spurious, *(["Frontal/Lateral"] if p.frontal_only else [])]
            absent = [c for c in need if c not in header]
            if absent:
                raise UserError(f"{TABLE} has no column {absent[0]!r}; its columns: {', '.join(header)}")
            column = {name: i for i, name in enumerate(header)}
            where, target, attr = column["Path"], column[p.target], column[p.spurious]
            view = column.get("Frontal/Lateral", -1)
            rows, paths, ys, attrs = [], [], [], []
            values = ATTRIBUTE_VALUES[p.spurious]
            for r, row in enumerate(reader):
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    raise UserError(f"{TABLE} line {r + 2} has {len(row)} cells, its header {len(header)}")
                if (p.frontal_only and row[view] != "Frontal") or row[attr] not in values:
                    continue
                try:
                    label = _label(row[target], p.uncertain)
                except ValueError:
                    raise UserError(
                        f"{TABLE} line {r + 2}: column {p.target!r} holds {row[target]!r}; "
                        "allowed: 1.0, 0.0, -1.0 or blank"
                    ) from None
                if label is not None:
                    rows.append(r)
                    paths.append(row[where])
                    ys.append(label)
                    attrs.append(values.index(row[attr]))
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{TABLE} is not a readable UTF-8 CSV file: {err}") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    return np.array(rows, dtype=np.int64), paths, np.array(ys, dtype=np.int64), np.array(attrs, dtype=np.int64)


def _image(root: Path, value: str, row: int) -> Path:
    """The image a Path cell names (relative to the data root); refused in one line if it is not there."""
    rel = PurePosixPath(value)
    if not value or rel.is_absolute() or ".." in rel.parts:
        raise UserError(f"{TABLE} line {row + 2}: Path {value!r} must name a file under {root}")
    path = root / rel
    if not path.is_file():
        raise UserError(
            f"image {value} named in {TABLE} line {row + 2} is missing: no file {path}; "
            f"unzip the whole CheXpert-v1.0-small download into {root}"
        )
    return path


def pools(p: Params, seed: int) -> list[ClientPool]:
    root = data_root()
    if not (root / FOLDER).is_dir():
        raise UserError(f"CheXpert is missing: no folder {root / FOLDER}; {origin(FOLDER)}")
    if not (root / TABLE).is_file():
        raise UserError(f"{TABLE} is missing: no file {root / TABLE}; {origin(FOLDER)}")
    rows, paths, y, a = read_table(root / TABLE, p)
    try:
        clients = deal(y, a, p, seed, (f"no {p.target}", p.target), ATTRIBUTE_VALUES[p.spurious])
    except UserError as err:
        kept = f"{'frontal views, ' if p.frontal_only else ''}uncertain {p.uncertain}"
        raise UserError(f"chexpert: {err} (rows kept: {kept})") from None
    chosen = np.concatenate(clients)
    files = [_image(root, paths[i], int(rows[i])) for i in chosen]  # every file is there before one is decoded
    x = np.empty((len(chosen), 1, p.image_size, p.image_size), dtype=np.uint8)
    for k, path in enumerate(files):
        try:
            x[k] = decode_square(path.read_bytes(), p.image_size, "L")
        except Exception as err:  # Pillow's and the file system's errors alike
            raise refuse_image(str(path), err) from None
    sizes = np.array([len(c) for c in clients], dtype=np.int64)
    return client_pools("chexpert", x, y[chosen], a[chosen], rows[chosen], sizes, p)


BENCHMARK = Benchmark(
    "chexpert",
    "concept (spurious attribute)",
    "CheXpert chest X-rays (small), binary finding (Pleural Effusion) with a per-client correlation to Sex",
    Params,
    pools,
    quick={"num_clients": 4, "samples_per_client": 200, "correlations": [0.9, 0.8, 0.9, 0.1]},
    files=(FOLDER,),
    size=lambda p: f"{p.num_clients} clients, {p.num_clients * p.samples_per_client:,} images",
)
