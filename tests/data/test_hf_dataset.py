"""`hf-dataset`: a Hugging Face `datasets` dataset saved to disk (or from the Hub) as a benchmark.

These tests need the `hf` extra (`make test` installs it: `.[test,flower,hf]`); without `datasets`
only the refusal that names the extra runs, the others are skipped saying why.
"""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import BENCHMARKS, build_federation
from pftlab.data.benchmarks import hf_dataset as hf
from pftlab.data.config import DataConfig

needs_datasets = pytest.mark.skipif(
    find_spec("datasets") is None,
    reason="the hf extra (Hugging Face datasets) is not installed: pip install -e '.[hf]' (make test installs it)",
)
QUICKSTART = Path(__file__).parents[2] / "configs" / "quickstart.toml"
NAMES = ["zebra", "ant", "cat", "yak"]  # a ClassLabel's names: kept in this order; 'yak' labels no row
CLIENTS = ["a", "b", "c"]


@pytest.fixture
def image_dict(tmp_path: Path) -> Path:
    """A DatasetDict saved to disk: 'train' holds 3 clients x 16 RGB images of 8 x 8 (zebra, ant, cat), 'test' 2 x 6."""
    import datasets

    rng = np.random.default_rng(0)
    rows: dict[str, list[Any]] = {"img": [], "label": [], "client": []}
    for client in CLIENTS:
        for k in range(16):
            label = k % 3
            pixels = np.clip(rng.normal(60 + 70 * label, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            rows["img"].append(Image.fromarray(pixels))
            rows["label"].append(label)
            rows["client"].append(client)
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=NAMES), "client": datasets.Value("string")}
    )
    train = datasets.Dataset.from_dict(rows, features=features)
    path = tmp_path / "images"
    test = train.select([*range(6), *range(16, 22)])  # 6 images of client a, 6 of client b
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(path))
    return path


@pytest.fixture
def table_dataset(tmp_path: Path) -> Path:
    """One Dataset (no splits) saved to disk: 3 sites x 20 rows, text labels 'yes' / 'no', 3 numeric features."""
    import datasets

    rng = np.random.default_rng(1)
    n = 60
    label = np.arange(n) % 2
    data = {
        "site": [f"s{i % 3}" for i in range(n)],
        "region": ["north" if i % 3 < 2 else "south" for i in range(n)],
        "outcome": ["yes" if v else "no" for v in label],
        "age": (40 + 10 * label + rng.normal(0, 5, n)).tolist(),
        "dose": (1e4 * rng.normal(size=n)).tolist(),
        "flag": rng.integers(0, 2, n).tolist(),
    }
    path = tmp_path / "table"
    datasets.Dataset.from_dict(data).save_to_disk(str(path))
    return path


def _images_cfg(path: Path, **keys: Any) -> DataConfig:
    return DataConfig(benchmark="hf-dataset", path=str(path), **{"image_column": "img", "image_size": 8, **keys})


def _table_cfg(path: Path, **keys: Any) -> DataConfig:
    keys = {"client_column": "site", "label_column": "outcome", "feature_columns": ["age", "dose", "flag"], **keys}
    return DataConfig(benchmark="hf-dataset", path=str(path), **keys)


def _all(client: Any, part: str) -> np.ndarray:
    return np.concatenate([getattr(client.train, part), getattr(client.val, part), getattr(client.test, part)])


@needs_datasets
def test_images_with_a_class_label_give_one_client_per_value(image_dict: Path) -> None:
    fed = build_federation(_images_cfg(image_dict), seed=0)
    assert [c.domain for c in fed.clients] == CLIENTS
    assert fed.num_classes == 4 and fed.clients[0].train.meta["classes"] == NAMES, "the ClassLabel's names, unsorted"
    assert fed.input_shape == (3, 8, 8)
    for c in fed.clients:
        assert np.bincount(_all(c, "y"), minlength=4).tolist() == [6, 5, 5, 0]
    x, y = _all(fed.clients[0], "x"), _all(fed.clients[0], "y")
    assert x.min() >= 0 and x.max() <= 1
    assert x[y == 0].mean() < x[y == 1].mean() < x[y == 2].mean(), "pixels follow the labels they were drawn for"
    grey = build_federation(_images_cfg(image_dict, channels=1, image_size=4), seed=0)
    assert grey.input_shape == (1, 4, 4)
    test = build_federation(_images_cfg(image_dict, split="test"), seed=0)
    assert [c.domain for c in test.clients] == ["a", "b"] and [len(_all(c, "y")) for c in test.clients] == [6, 6]


@needs_datasets
def test_undecoded_images_are_decoded_the_same(image_dict: Path, tmp_path: Path) -> None:
    import datasets

    raw = datasets.load_from_disk(str(image_dict))["train"].cast_column("img", datasets.Image(decode=False))
    raw.save_to_disk(str(tmp_path / "raw"))
    a, b = build_federation(_images_cfg(image_dict), 0), build_federation(_images_cfg(tmp_path / "raw"), 0)
    assert all(np.array_equal(ca.train.x, cb.train.x) for ca, cb in zip(a.clients, b.clients, strict=True))


@needs_datasets
def test_feature_columns_are_standardised_and_labels_sorted(table_dataset: Path) -> None:
    fed = build_federation(_table_cfg(table_dataset), seed=0)
    assert [c.domain for c in fed.clients] == ["s0", "s1", "s2"]
    assert fed.input_shape == (3,) and fed.clients[0].train.meta["classes"] == ["no", "yes"]
    x = np.concatenate([_all(c, "x") for c in fed.clients])
    assert np.allclose(x.mean(0), 0, atol=1e-5) and np.allclose(x.std(0), 1, atol=1e-4)
    y = np.concatenate([_all(c, "y") for c in fed.clients])
    assert np.corrcoef(x[:, 0], y)[0, 1] > 0.5, "'age' was drawn higher for 'yes' (sorted after 'no': class 1)"


@needs_datasets
def test_a_domain_column_splits_each_domain_into_clients(table_dataset: Path) -> None:
    cfg = _table_cfg(table_dataset, domain_column="region", clients_per_domain=2)
    fed = build_federation(cfg, seed=0)
    assert [c.domain for c in fed.clients] == ["north/0", "north/1", "south/0", "south/1"]
    assert [len(_all(c, "y")) for c in fed.clients] == [20, 20, 10, 10]
    again = build_federation(cfg, seed=0)
    assert fed.partition_hash == again.partition_hash
    assert build_federation(cfg, seed=1).partition_hash != fed.partition_hash, "the split is drawn from the seed"


@needs_datasets
@pytest.mark.parametrize("kind", ["images", "table"])
def test_pftlab_run_on_a_saved_dataset(
    kind: str, image_dict: Path, table_dataset: Path, tmp_path: Path, tiny: list[str]
) -> None:
    if kind == "images":
        data = f'{{benchmark="hf-dataset", path={json.dumps(str(image_dict))}, image_column="img", image_size=8}}'
        clients, classes = CLIENTS, len(NAMES)
    else:
        data = (
            f'{{benchmark="hf-dataset", path={json.dumps(str(table_dataset))}, client_column="site", '
            'label_column="outcome", feature_columns=["age", "dose", "flag"]}'
        )
        clients, classes = ["s0", "s1", "s2"], 2
    sets = [f"data={data}", 'model.name="auto"', *(s for s in tiny if not s.startswith("data."))]  # 3 rounds
    out = tmp_path / "run"
    argv = ["run", str(QUICKSTART), "--out", str(out), "--no-progress", *(a for s in sets for a in ("--set", s))]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "hf-dataset" and summary["num_clients"] == len(clients)
    assert set(summary["methods"]) >= {"ft", "lp", "lp-ft"}
    domains = [line.split(",")[2] for line in (out / "clients.csv").read_text().splitlines()[1:]]
    assert domains[: len(clients)] == clients
    assert load_file(str(out / "global.safetensors"))["head.weight"].shape[0] == classes


@needs_datasets
def test_data_show_prints_the_clients(image_dict: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = [f"data.path={json.dumps(str(image_dict))}", 'data.image_column="img"', "data.image_size=8"]
    argv = ["data", "show", "hf-dataset", "--out", str(tmp_path / "show.png")]
    assert main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    out = capsys.readouterr().out
    assert "hf-dataset: 3 clients, 4 classes" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert [r[1] for r in rows] == CLIENTS
    assert (tmp_path / "show.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["data", "list"]) == 0 and "hf-dataset" in capsys.readouterr().out


def _refusal(cfg: DataConfig) -> str:
    with pytest.raises(UserError) as err:
        build_federation(cfg, seed=0)
    assert "\n" not in str(err.value)
    return str(err.value)


@needs_datasets
def test_bad_input_is_refused_in_one_line_before_decoding(
    image_dict: Path, table_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: Any) -> np.ndarray:
        raise AssertionError("an image was decoded before the refusal")

    monkeypatch.setattr(hf, "image_array", no_decoding)
    assert _refusal(_images_cfg(image_dict, client_column="writer")).endswith(
        "(split 'train') has no column 'writer'; its columns: img, label, client"
    )
    assert _refusal(_images_cfg(image_dict, split="validation")).endswith(
        "has no split 'validation'; its splits: train, test"
    )
    assert "one Dataset, not a DatasetDict, so it has no split 'test'" in _refusal(
        _table_cfg(table_dataset, split="test")
    )
    assert "does not exist" in _refusal(_images_cfg(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "is not a folder written by Dataset.save_to_disk" in _refusal(_images_cfg(tmp_path / "empty"))
    assert "data.path or data.hub is required" in _refusal(DataConfig(benchmark="hf-dataset"))
    assert "column 'img' holds images: set data.image_column = 'img'" in _refusal(
        DataConfig(benchmark="hf-dataset", path=str(image_dict))
    )
    not_images = _refusal(_table_cfg(table_dataset, feature_columns=[], image_column="age"))
    assert "column 'age' holds" in not_images and "not images (datasets' Image feature)" in not_images
    every = _refusal(_table_cfg(table_dataset, feature_columns=[]))  # by default, every column but client and label
    assert every.endswith("row 1, column 'region': 'north' is not a number")
    one = _table_cfg(table_dataset, domain_column="region", clients_per_domain=41)
    assert "domain 'north' has 40 rows, fewer than data.clients_per_domain = 41" in _refusal(one)
    with pytest.raises(ValueError, match=r"data\.path .* or data\.hub .*, not both"):
        _table_cfg(table_dataset, hub="user/name")
    with pytest.raises(ValueError, match=r"clients_per_domain splits domains: set data\.domain_column"):
        _table_cfg(table_dataset, clients_per_domain=2)


@needs_datasets
def test_the_cli_refuses_an_unknown_split_with_exit_2(image_dict: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = [f"data.path={json.dumps(str(image_dict))}", 'data.image_column="img"', 'data.split="valid"']
    assert main(["data", "show", "hf-dataset", *(a for s in sets for a in ("--set", s))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pftlab: error: ") and "\n" not in err
    assert err.endswith("has no split 'valid'; its splits: train, test")


@needs_datasets
def test_a_hub_name_goes_through_load_dataset(image_dict: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network in tests: `datasets.load_dataset` is replaced by one reading the saved dataset."""
    import datasets

    asked: list[tuple[str, str]] = []

    def load_dataset(name: str, split: str) -> Any:
        asked.append((name, split))
        if name == "user/offline":
            raise ConnectionError("Couldn't reach 'user/offline' on the Hub (LocalEntryNotFoundError)\nmore")
        return datasets.load_from_disk(str(image_dict))[split]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    cfg = DataConfig(benchmark="hf-dataset", hub="user/name", image_column="img", image_size=8)
    assert [c.domain for c in build_federation(cfg, seed=0).clients] == CLIENTS
    assert asked == [("user/name", "train")]
    offline = DataConfig(benchmark="hf-dataset", hub="user/offline", image_column="img")
    assert _refusal(offline) == (
        "cannot load 'user/offline' (split 'train') from the Hugging Face Hub: "
        "Couldn't reach 'user/offline' on the Hub (LocalEntryNotFoundError)"
    )
    assert BENCHMARKS["hf-dataset"].size(cfg.params()) == "from data.hub 'user/name'"


def test_without_the_extra_the_refusal_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    (tmp_path / "saved").mkdir()
    message = _refusal(DataConfig(benchmark="hf-dataset", path=str(tmp_path / "saved")))
    assert message == "reading a Hugging Face dataset needs the hf extra: pip install 'pftlab[hf]'"
