"""A user's own data through the config alone: an image folder and a CSV / Parquet table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.data.sources import sklearn_digits
from pftlab.experiment.config import DataConfig


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 domains x classes {'3', '7'} x 12 real digit images each, as PNG files."""
    digits = sklearn_digits()
    root = tmp_path / "images"
    for d, domain in enumerate(("paper", "screen", "tablet")):
        for label in ("3", "7"):
            folder = root / domain / label
            folder.mkdir(parents=True)
            picks = np.flatnonzero(digits.y == int(label))[d * 12 : (d + 1) * 12]
            for k, i in enumerate(picks):
                Image.fromarray((digits.x[i, 0] * 255).astype(np.uint8)).save(folder / f"{k}.png")
    (root / "paper" / "3" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_clients_classes_and_pixels(image_folder: Path) -> None:
    fed = build_federation(DataConfig(benchmark="image-folder", path=str(image_folder), image_size=16), seed=0)
    assert [c.domain for c in fed.clients] == ["paper", "screen", "tablet"]
    assert fed.input_shape == (3, 16, 16) and fed.num_classes == 2
    for c in fed.clients:
        y = np.concatenate([c.train.y, c.val.y, c.test.y])
        assert np.bincount(y).tolist() == [12, 12], "class '3' -> 0 and '7' -> 1, 12 images each"
    x = fed.clients[0].train.x
    assert x.min() >= 0 and x.max() <= 1 and x.std() > 0.1
    assert np.allclose(x[:, 0], x[:, 1]), "grey PNGs become RGB with equal channels"


def test_image_folder_domain_layout_splits_each_domain(image_folder: Path) -> None:
    cfg = DataConfig(benchmark="image-folder", path=str(image_folder), layout="domain/class", clients_per_domain=2)
    fed = build_federation(cfg, seed=0)
    assert [c.domain for c in fed.clients] == [f"{d}/{k}" for d in ("paper", "screen", "tablet") for k in (0, 1)]
    assert sum(len(c.train) + len(c.val) + len(c.test) for c in fed.clients) == 72


def test_image_folder_errors(image_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"data\.path is required"):
        build_federation(DataConfig(benchmark="image-folder"), seed=0)
    with pytest.raises(UserError, match="does not exist"):
        build_federation(DataConfig(benchmark="image-folder", path=str(tmp_path / "nope")), seed=0)
    (tmp_path / "empty" / "a" / "b").mkdir(parents=True)
    with pytest.raises(UserError, match="no images under"):
        build_federation(DataConfig(benchmark="image-folder", path=str(tmp_path / "empty")), seed=0)
    (image_folder / "paper" / "3" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match=r"cannot decode image .*broken\.png"):
        build_federation(DataConfig(benchmark="image-folder", path=str(image_folder)), seed=0)


DATA = Path(__file__).parents[2].parent / "shared" / "data"


@pytest.fixture
def heart_table(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    """The real heart data written as one CSV: a hospital column, a text label, 4 features."""
    from pftlab.data.sources import heart

    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")

    rows = []
    for hospital, d in heart().items():
        for x, y in zip(d.x, d.y, strict=True):
            rows.append(
                {
                    "hospital": hospital,
                    "diagnosis": "sick" if y else "healthy",
                    **{f"f{j}": f"{x[j]:.4f}" for j in range(4)},
                }
            )
    path = tmp_path / "heart.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


def _table_cfg(path: Path, **keys) -> DataConfig:
    return DataConfig(benchmark="table", path=str(path), client_column="hospital", label_column="diagnosis", **keys)


def test_csv_table_becomes_one_client_per_value(heart_table) -> None:
    path, rows = heart_table
    fed = build_federation(_table_cfg(path), seed=0)
    assert [c.domain for c in fed.clients] == ["cleveland", "hungarian", "switzerland", "va"]
    assert [len(c.train) + len(c.val) + len(c.test) for c in fed.clients] == [303, 294, 123, 200]
    assert fed.input_shape == (4,) and fed.num_classes == 2
    x = np.concatenate([np.concatenate([c.train.x, c.val.x, c.test.x]) for c in fed.clients])
    assert np.allclose(x.mean(0), 0, atol=1e-4)
    sick = sum(r["diagnosis"] == "sick" for r in rows if r["hospital"] == "va")
    va = fed.clients[3]
    assert int(np.concatenate([va.train.y, va.val.y, va.test.y]).sum()) == sick, "'sick' sorts after 'healthy' -> 1"


def test_parquet_gives_the_same_federation_as_csv(heart_table, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path, rows = heart_table
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    columns.update({f"f{j}": [float(v) for v in columns[f"f{j}"]] for j in range(4)})
    pq.write_table(pa.table(columns), tmp_path / "heart.parquet")
    a = build_federation(_table_cfg(path), seed=0)
    b = build_federation(_table_cfg(tmp_path / "heart.parquet"), seed=0)
    assert a.partition_hash == b.partition_hash


def test_table_errors(heart_table, tmp_path: Path) -> None:
    path, _ = heart_table
    with pytest.raises(UserError, match="has no column 'site'; its columns: hospital, diagnosis"):
        build_federation(_table_cfg(path, feature_columns=["site"]), seed=0)
    bad = tmp_path / "bad.csv"
    bad.write_text("hospital,diagnosis,f0\na,x,1.0\nb,y,oops\na,y,2\nb,x,3\n")
    with pytest.raises(UserError, match=r"bad\.csv: row 2, column 'f0': 'oops' is not a number"):
        build_federation(_table_cfg(bad), seed=0)
    (tmp_path / "heart.xlsx").touch()
    with pytest.raises(UserError, match=r"expected a \.csv or \.parquet file"):
        build_federation(_table_cfg(tmp_path / "heart.xlsx"), seed=0)


def test_table_runs_end_to_end(heart_table, tmp_path: Path) -> None:
    path, _ = heart_table
    config = tmp_path / "mine.toml"
    config.write_text(
        f'[data]\nbenchmark = "table"\npath = "{path}"\nclient_column = "hospital"\nlabel_column = "diagnosis"\n'
        "[federated]\nrounds = 3\n[personalize]\nepochs = 2\n[method.lp-ft]\nlp_epochs = 1\n"
    )
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["num_clients"] == 4
