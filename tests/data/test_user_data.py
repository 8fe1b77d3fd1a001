"""A user's own data through the config alone: an image folder and a CSV / Parquet table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

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


# ---- canonical spellings: the same files give the same clients, classes and partition in every process


def _write_csv(path: Path, rows: list[list[object]], header: tuple[str, ...] = ("site", "outcome", "f0", "f1")) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(client_spellings: dict[int, list[str]], label_spellings: dict[int, list[str]]) -> list[list[object]]:
    """12 rows per client 1..3, labels 0 / 1 alternating; row k spells its client and label the k-th way (cycling)."""
    rng = np.random.default_rng(0)
    rows: list[list[object]] = []
    for client in (1, 2, 3):
        for k in range(12):
            label = k % 2
            spell_c, spell_l = client_spellings[client], label_spellings[label]
            rows.append([spell_c[k % len(spell_c)], spell_l[k % len(spell_l)], *np.round(rng.normal(size=2), 3)])
    return rows


CLEAN_CLIENTS = {1: ["1"], 2: ["2"], 3: ["3"]}
CLEAN_LABELS = {0: ["0"], 1: ["1"]}
# every spelling of one value the old code told apart, and sorted in set order (ties under key=float)
SPELT_CLIENTS = {1: [" 1", "1", "1.0", "01", "+1", "1e0"], 2: ["2", "2.00", " 02 "], 3: ["3.0", "3", "0003"]}
SPELT_LABELS = {0: ["0", "0.0", "-0", " 0", "00"], 1: ["1", "1.", "1.000", "01", "+1 "]}


def _table(path: Path, **keys: object) -> DataConfig:
    return DataConfig(benchmark="table", path=str(path), client_column="site", label_column="outcome", **keys)


def test_spellings_of_one_client_or_label_are_one_value(tmp_path: Path) -> None:
    clean = build_federation(_table(_write_csv(tmp_path / "clean.csv", _rows(CLEAN_CLIENTS, CLEAN_LABELS))), seed=0)
    spelt = build_federation(_table(_write_csv(tmp_path / "spelt.csv", _rows(SPELT_CLIENTS, SPELT_LABELS))), seed=0)
    assert [c.domain for c in spelt.clients] == ["1", "2", "3"]
    assert spelt.num_classes == 2 and spelt.clients[0].train.meta["classes"] == ["0", "1"]
    assert spelt.partition_hash == clean.partition_hash


def test_numbers_sort_by_value_then_text_and_unicode_forms_are_one_name(tmp_path: Path) -> None:
    from pftlab.data.benchmarks.user_data import canonical, ordered

    assert [canonical(v) for v in (" 1", "01", "1.0", 1, 1.0, "+1", "1e0", "1.50", 1.5, "-0.0", True)] == [
        "1", "1", "1", "1", "1", "1", "1", "1.5", "1.5", "0", "True",
    ]  # fmt: skip
    assert [canonical(v) for v in ("", "  ", None, float("nan"), "NaN", "null")] == [None] * 6
    assert canonical("caf\u0065\u0301") == canonical("caf\u00e9") == "caf\u00e9"
    assert canonical("12345678901234567890123") == "12345678901234567890123", "no float rounding of long ids"
    assert ordered(["b", "10", "2", "a", "-1", "1.5", "B"]) == ["-1", "1.5", "2", "10", "B", "a", "b"]
    rows = [["caf\u00e9" if k % 2 else "cafe\u0301", "\u00c5" if k % 3 else "A\u030a", k, k % 5] for k in range(24)]
    rows += [["th\u00e9", "x" if k % 2 else "\u00c5", k, k % 3] for k in range(12)]
    fed = build_federation(_table(_write_csv(tmp_path / "nfd.csv", rows)), seed=0)
    assert [c.domain for c in fed.clients] == ["caf\u00e9", "th\u00e9"]
    assert fed.clients[0].train.meta["classes"] == ["x", "\u00c5"], "text sorts by code point"


_PARTITION = """
import json, sys
from pftlab.data.benchmarks import build_federation
from pftlab.data.config import DataConfig
table, folder = sys.argv[1:]
fed = build_federation(DataConfig(benchmark="table", path=table, client_column="site", label_column="outcome"), 0)
pics = build_federation(DataConfig(benchmark="image-folder", path=folder, image_size=8, channels=1), 0)
print(json.dumps([[f.partition_hash, [c.domain for c in f.clients], f.clients[0].train.meta["classes"]]
                  for f in (fed, pics)]))
"""


def test_the_same_files_give_the_same_partition_under_any_hash_seed(tmp_path: Path) -> None:
    """Two processes with different PYTHONHASHSEED read the same spelt table and image folder: same partition.

    The old code sorted the distinct spellings by float value, so the order of equal values came from
    set iteration, which the hash seed changes: it failed here with other clients, classes and hashes.
    """
    import os
    import subprocess
    import sys

    table = _write_csv(tmp_path / "spelt.csv", _rows(SPELT_CLIENTS, SPELT_LABELS))
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for client, classes in {"a": ["1", "2", "3"], "b": ["01", "2.0", "3"], "c": ["1.0", "02", "+3"]}.items():
        for label in classes:
            (folder / client / label).mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / client / label / f"{k}.png")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PARTITION, str(table), str(folder)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    (table_hash, domains, classes), (_, clients, folder_classes) = outs[0]
    assert domains == ["1", "2", "3"] and classes == ["0", "1"]
    assert clients == ["a", "b", "c"] and folder_classes == ["1", "2", "3"]
    here = build_federation(_table(table), seed=0)  # this process has a third hash seed
    assert here.partition_hash == table_hash


def test_parquet_numbers_and_csv_text_name_the_same_clients(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = _rows(CLEAN_CLIENTS, CLEAN_LABELS)
    csv_path = _write_csv(tmp_path / "t.csv", [[f"{r[0]}.0", r[1], r[2], r[3]] for r in rows])
    columns = {
        "site": [int(r[0]) for r in rows],
        "outcome": [float(r[1]) for r in rows],
        "f0": [float(r[2]) for r in rows],
        "f1": [float(r[3]) for r in rows],
    }
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    a, b = build_federation(_table(csv_path), 0), build_federation(_table(tmp_path / "t.parquet"), 0)
    assert [c.domain for c in b.clients] == ["1", "2", "3"] and a.partition_hash == b.partition_hash


def test_bom_spaced_header_and_hidden_entries_are_read_as_meant(image_folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    text = "site , outcome,f0\n" + "".join(f"{c}, {k % 2}, {k}\n" for c in "ab" for k in range(8))
    path.write_text("\ufeff" + text, encoding="utf-8")
    assert [c.domain for c in build_federation(_table(path), 0).clients] == ["a", "b"]
    (image_folder / ".ipynb_checkpoints" / "3").mkdir(parents=True)
    (image_folder / "paper" / "3" / "._0.png").write_bytes(b"\0\x05\x16\x07 AppleDouble")  # macOS metadata
    (image_folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    fed = build_federation(DataConfig(benchmark="image-folder", path=str(image_folder), image_size=8), seed=0)
    assert [c.domain for c in fed.clients] == ["paper", "screen", "tablet"]


# ---- extreme magnitudes: standardised without loss, or refused naming the column


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(lambda z: z * 1e300, id="1e300"),  # the variance overflows float64
        pytest.param(lambda z: z * 1e30, id="1e30"),  # the variance overflows float32
        pytest.param(lambda z: z * 1e-30, id="1e-30"),  # the variance underflows float32
        pytest.param(lambda z: z * 1e-300, id="1e-300"),  # the values underflow float32
        pytest.param(lambda z: 1e8 + z, id="1e8+z"),  # float32 cannot tell the values apart
    ],
)
def test_a_column_of_extreme_magnitude_keeps_its_spread(tmp_path: Path, column: Any) -> None:
    z = np.random.default_rng(0).normal(size=24)
    rows = [[f"c{k % 3}", k % 2, repr(float(column(z[k]))), round(float(z[k]), 3)] for k in range(24)]
    fed = build_federation(_table(_write_csv(tmp_path / "t.csv", rows)), seed=0)
    x = np.concatenate([np.concatenate([c.train.x, c.val.x, c.test.x]) for c in fed.clients])
    assert np.isfinite(x).all() and np.allclose(x.std(0), 1, atol=1e-5), "no column zeroed"
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) > 0.99, "the extreme column is the standardised z"


def test_an_unstandardised_column_float32_cannot_hold_is_refused(tmp_path: Path) -> None:
    for scale, what in ((1e300, "inf"), (1e-300, "0")):
        rows = [[f"c{k % 3}", k % 2, repr(scale * (k + 1)), k] for k in range(24)]
        with pytest.raises(UserError, match=rf"column 'f0' reaches magnitude .* float32 stores as {what}") as err:
            build_federation(_table(_write_csv(tmp_path / "t.csv", rows), standardize=False), seed=0)
        assert "standardize" in str(err.value) and "\n" not in str(err.value)


# ---- data that does not fit the request: refused in one line before anything is decoded or trained


def _folder(root: Path, spec: dict[str, dict[str, int]]) -> Path:
    rng = np.random.default_rng(0)
    for client, classes in spec.items():
        for label, n in classes.items():
            (root / client / label).mkdir(parents=True)
            for k in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / client / label / f"{k}.png")
    return root


def _refusal(cfg: DataConfig) -> str:
    with pytest.raises(UserError) as err:
        build_federation(cfg, seed=0)
    assert "\n" not in str(err.value)
    return str(err.value)


FOLDER_REFUSALS = {
    "one client": ({"a": {"x": 4, "y": 4}}, {}, r"has one client folder \('a'\); a federation needs at least 2"),
    "one class": ({"a": {"x": 4}, "b": {"x": 4}}, {}, r"has one class \('x'\); a classifier needs at least 2"),
    "a class empty everywhere": (
        {"a": {"x": 4, "y": 4, "z": 0}, "b": {"x": 4, "y": 4, "z": 0}},
        {},
        r"class folder 'z' holds no images in any client",
    ),
    "a client without images": ({"a": {"x": 4, "y": 4}, "b": {"x": 0}}, {}, r"client folder 'b' .* holds no images"),
    "a client too small to split": (
        {"a": {"x": 4, "y": 4}, "b": {"x": 1}},
        {},
        r"client 1 \('b'\) has 1 sample, split into 1 train / 0 val / 0 test; every client needs at least one train "
        r"and one test sample: give it at least 2 samples \(add samples to it under data\.path\)",
    ),
    "clients_per_domain over a domain's images": (
        {"a": {"x": 2, "y": 2}, "b": {"x": 4, "y": 4}},
        {"layout": "domain/class", "clients_per_domain": 5},
        r"domain 'a' has 4 images, fewer than data\.clients_per_domain = 5",
    ),
    "domain clients without a test sample": (
        {"a": {"x": 2, "y": 2}, "b": {"x": 4, "y": 4}},
        {"layout": "domain/class", "clients_per_domain": 4},
        r"client 0 \('a/0'\) \(and 7 other clients\) has 1 sample",
    ),
    "spellings of one client": ({"1": {"x": 4, "y": 4}, "01": {"x": 4, "y": 4}}, {}, r"name the same client '1'"),
}


@pytest.mark.parametrize("case", list(FOLDER_REFUSALS))
def test_an_image_folder_that_does_not_fit_is_refused(tmp_path: Path, case: str) -> None:
    spec, keys, message = FOLDER_REFUSALS[case]
    root = _folder(tmp_path / "images", spec)
    cfg = DataConfig(benchmark="image-folder", path=str(root), image_size=8, **keys)
    assert re.search(message, _refusal(cfg))


def test_a_data_path_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file").write_text("x")
    assert "is a folder; benchmark 'table' expects a .csv" in _refusal(_table(tmp_path / "folder.csv"))
    folder = DataConfig(benchmark="image-folder", path=str(tmp_path / "file"))
    assert "is a file; benchmark 'image-folder' expects a folder" in _refusal(folder)


TABLE_REFUSALS: dict[str, tuple[str, str]] = {
    "one class": ("a,x,1\nb,x,2\n" * 4, r"column 'outcome' holds one label \('x'\); a classifier needs at least 2"),
    "one client": ("a,x,1\na,y,2\n" * 4, r"column 'site' holds one client \('a'\); a federation needs at least 2"),
    "an empty client cell": ("a,x,1\n,y,2\n" * 4, r"row 2 has no client \(column 'site' holds ''\)"),
    "a NaN label": ("a,x,1\nb,NaN,2\n" * 4, r"row 2 has no label \(column 'outcome' holds 'NaN'\)"),
    "a client with one row": (
        "a,x,1\nb,y,2\n" * 4 + "c,x,3\n",
        r"client 2 \('c'\) has 1 sample, split into 1 train / 0 val / 0 test",
    ),
    "clients with two rows": (
        "a,x,1\na,y,2\nb,x,1\nb,y,2\n",
        r"client 0 \('a'\) \(and 1 other client\) has 2 samples, split into 2 train / 0 val / 0 test; every client "
        r"needs at least one train and one test sample: raise data\.test_fraction \(now 0\.25\) to at least 0\.5 or "
        r"give clients more samples \(add samples to it under data\.path\)",
    ),
    "a value beyond float64": ("a,x,1\nb,y,1e400\n" * 4, r"row 2, column 'f0' is not finite \('1e400'\)"),
}


@pytest.mark.parametrize("case", list(TABLE_REFUSALS))
def test_a_table_that_does_not_fit_is_refused(tmp_path: Path, case: str) -> None:
    body, message = TABLE_REFUSALS[case]
    path = tmp_path / "t.csv"
    path.write_text("site,outcome,f0\n" + body)
    assert re.search(message, _refusal(_table(path)))


def test_a_split_that_leaves_a_client_no_train_or_test_sample_is_refused() -> None:
    from pftlab.data.federate import check_splits

    check_splits([(5, 1, 2), (1, 0, 1)], ["a", "b"], 0.1, 0.25)  # every client has both: fine
    with pytest.raises(UserError, match=r"^client 1 \('b'\) has 7 samples, split into 5 train / 2 val / 0 test; .*"
                       r"raise data\.test_fraction \(now 0\.01\) to at least 0\.15 or give clients more samples "
                       r"\(raise data\.min_client_size\)$"):  # fmt: skip
        check_splits([(90, 0, 1), (5, 2, 0)], ["a", "b"], 0.2, 0.01, "raise data.min_client_size")
    with pytest.raises(UserError, match=r"^client 0 has 3 samples, split into 0 train / 2 val / 1 test; .* lower "
                       r"data\.val_fraction \+ data\.test_fraction \(now 0\.8\)$"):  # fmt: skip
        check_splits([(0, 2, 1), (4, 3, 1)], ["", ""], 0.55, 0.25)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")
def test_a_tiny_test_fraction_on_heart_is_refused_naming_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: 0.004 x 123 Switzerland rows rounds to no test sample, and the run died after its global stage."""
    monkeypatch.setenv("PFTLAB_DATA", str(DATA))
    message = _refusal(DataConfig(benchmark="heart", test_fraction=0.004))
    assert message.startswith("client 2 ('switzerland') has 123 samples, split into 105 train / 18 val / 0 test")
    assert message.endswith("raise data.test_fraction (now 0.004) to at least 0.0082")
    assert build_federation(DataConfig(benchmark="heart", test_fraction=0.0082), seed=0).sizes()["test"] == [2, 2, 1, 2]
