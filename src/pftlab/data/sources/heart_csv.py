"""UCI Heart Disease, one client per hospital, from the four `heart/processed.<hospital>.data` CSV files.

Rows: Cleveland 303, Hungary 294, Switzerland 123, VA Long Beach 200 (920 in all); every row is kept. Columns: the
13 features of `RAW_FEATURES` and the target `num` 0..4 (0 = no disease).

Missing values, handled the same way for every hospital:

* `?`, `NaN` or an empty field is missing, and so are `chol == 0` (all 123 Switzerland rows and 49 VA rows) and
  `trestbps == 0` (one VA row): a serum cholesterol or resting blood pressure of 0 is impossible, it encodes "not
  measured".
* A missing value is replaced by a fill value computed on ALL 920 rows of the four hospitals pooled: the median of
  the observed values for the continuous features (age, trestbps, chol, thalach, oldpeak), the most frequent observed
  value (ties: the smallest) for the binary and categorical ones (sex, cp, fbs, restecg, exang, slope, ca, thal), so a
  filled categorical value is always a valid code.
* For each feature that is missing in any row, a 0/1 missing-indicator feature `<name>_missing` is appended, so a
  model can tell a filled value from a measured one. Missingness differs a lot between hospitals (`ca` is missing in
  291/294 Hungary, 118/123 Switzerland and 198/200 VA rows, `chol` in every Switzerland row): that is part of the
  feature shift between these clients.

Features stay on their clinical scales and categorical codes stay integer codes (no one-hot, no standardisation):
scale them with statistics of the training split that a model sees. The target is binarised, `y = (num > 0)`, with
`num_classes = 2`; `meta["num"]` keeps the raw 0..4 and `meta["missing"]` the (N, 13) bool mask of what was filled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pftlab.data.dataset import Dataset
from pftlab.data.sources.files import cached_arrays

HOSPITALS = ("cleveland", "hungarian", "switzerland", "va")
RAW_FEATURES = (
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
    "thal",
)
CONTINUOUS = frozenset({"age", "trestbps", "chol", "thalach", "oldpeak"})
ZERO_IS_MISSING = frozenset({"trestbps", "chol"})
_MISSING_TOKENS = frozenset({"?", "nan", ""})


def source(hospital: str) -> str:
    return f"heart/processed.{hospital}.data"


def parse_csv(path: Path) -> np.ndarray:
    """One processed.*.data file as float64 (rows, 14), missing tokens (`?`, `NaN`, empty) as NaN."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        fields = [v.strip() for v in line.split(",")]
        if len(fields) != len(RAW_FEATURES) + 1:
            raise ValueError(f"{path} line {lineno}: expected {len(RAW_FEATURES) + 1} fields, got {len(fields)}")
        rows.append([np.nan if v.lower() in _MISSING_TOKENS else float(v) for v in fields])
    return np.array(rows, dtype=np.float64).reshape(-1, len(RAW_FEATURES) + 1)


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    tables = {h: parse_csv(paths[source(h)]) for h in HOSPITALS}
    for h, table in tables.items():
        num = table[:, -1]
        if np.isnan(num).any() or not np.isin(num, np.arange(5)).all():
            raise ValueError(f"{source(h)}: the target must be 0..4 in every row")
    return {f"raw_{h}": t for h, t in tables.items()}


def _fill_value(values: np.ndarray, continuous: bool) -> float:
    observed = values[~np.isnan(values)]
    if continuous:
        return float(np.median(observed))
    codes, counts = np.unique(observed, return_counts=True)
    return float(codes[np.argmax(counts)])  # np.unique sorts, argmax takes the first: ties go to the smallest


def heart() -> dict[str, Dataset]:
    """One Dataset per hospital (cleveland, hungarian, switzerland, va), features imputed as the module says.

    x is float32 (N, 13 + k): the 13 raw features with missing values filled, then k missing indicators (one per
    feature missing anywhere); `meta["features"]` names the columns and `meta["fill_values"]` gives the fills.
    """
    arrays = cached_arrays("heart", [source(h) for h in HOSPITALS], _decode)
    raw = {h: arrays[f"raw_{h}"] for h in HOSPITALS}
    features = {h: t[:, :-1].copy() for h, t in raw.items()}
    for j, name in enumerate(RAW_FEATURES):
        if name in ZERO_IS_MISSING:
            for f in features.values():
                f[f[:, j] == 0, j] = np.nan
    pooled = np.concatenate(list(features.values()))
    fills = [_fill_value(pooled[:, j], name in CONTINUOUS) for j, name in enumerate(RAW_FEATURES)]
    flagged = [j for j in range(len(RAW_FEATURES)) if np.isnan(pooled[:, j]).any()]
    names = [*RAW_FEATURES, *(f"{RAW_FEATURES[j]}_missing" for j in flagged)]
    fill_values = dict(zip(RAW_FEATURES, fills, strict=True))
    out = {}
    for h in HOSPITALS:
        f = features[h]
        missing = np.isnan(f)
        filled = np.where(missing, np.asarray(fills), f)
        x = np.concatenate([filled, missing[:, flagged].astype(np.float64)], axis=1).astype(np.float32)
        num = raw[h][:, -1].astype(np.int64)
        meta = {
            "source": source(h),
            "hospital": h,
            "features": names,
            "fill_values": fill_values,
            "num": num,
            "missing": missing,
        }
        out[h] = Dataset(x, (num > 0).astype(np.int64), 2, f"heart-{h}", meta)
    return out
