"""Dataset sources on the real offline files (`../shared/data`): checksums, shapes, counts, errors and the cache."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pftlab.core.errors import UserError
from pftlab.data.dataset import Dataset
from pftlab.data.sources import (
    cifar10,
    cifar_jpeg,
    fashion_mnist,
    files,
    heart,
    heart_csv,
    mnist,
    mnist_m,
    qmnist_writers,
    usps,
    usps_mat,
)

DATA = Path(__file__).parents[2].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"offline datasets not found at {DATA}")


def assert_images(ds: Dataset, n: int, shape: tuple[int, ...], per_class: list[int] | None = None) -> None:
    assert ds.x.shape == (n, *shape) and ds.x.dtype == np.float32
    assert ds.y.shape == (n,) and ds.y.dtype == np.int64
    assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0 and float(ds.x.max()) > 0.5
    assert ds.num_classes == 10 and ds.y.min() == 0 and ds.y.max() == 9
    if per_class is not None:
        assert ds.label_counts().tolist() == per_class


def decoded_files(cache: Path) -> list[Path]:
    folder = cache / "decoded"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PFTLAB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Dataset]]:
    """Both CIFAR-10 splits, decoded once: the test split must come from the cache the train split wrote."""
    with pytest.MonkeyPatch.context() as mp:
        # module fixtures run before the autouse ones of conftest: set the same session cache and data root here
        mp.setenv("PFTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "pftlab-cache"))
        mp.setenv("PFTLAB_DATA", str(DATA))
        train = cifar10("train")

        def no_decode(paths: object) -> None:
            raise AssertionError("the cached CIFAR-10 archive was decoded twice")

        mp.setattr(cifar_jpeg, "_decode", no_decode)
        test = cifar10("test")
    yield {"train": train, "test": test}


def test_every_checksum_passes_and_matches_sha256sums() -> None:
    listed = dict(reversed(line.split()) for line in (DATA / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert listed == files.CHECKSUMS
    for rel in files.CHECKSUMS:
        assert files.verify(rel) == DATA / rel


@pytest.mark.parametrize("load", [mnist, fashion_mnist])
def test_idx_sources(load) -> None:
    train, test = load("train"), load("test")
    assert_images(train, 60_000, (1, 28, 28))
    assert_images(test, 10_000, (1, 28, 28))
    if load is fashion_mnist:
        assert train.label_counts().tolist() == [6000] * 10 and test.label_counts().tolist() == [1000] * 10
        assert train.meta["classes"][0] == "T-shirt/top"
    else:
        assert train.label_counts().tolist()[:2] == [5923, 6742] and test.label_counts().tolist()[:2] == [980, 1135]


def test_cifar10(cifar: dict[str, Dataset]) -> None:
    assert_images(cifar["train"], 50_000, (3, 32, 32), [5000] * 10)
    assert_images(cifar["test"], 10_000, (3, 32, 32), [1000] * 10)
    assert cifar["train"].meta["classes"] == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    # sorted by class, then by file number: labels never decrease
    assert (np.diff(cifar["test"].y) >= 0).all()
    # JPEG keeps the channel means of CIFAR-10 (0.491, 0.482, 0.447 on train) to within 0.1
    means = cifar["train"].x.mean(axis=(0, 2, 3), dtype=np.float64)
    assert np.allclose(means, [0.491, 0.482, 0.447], atol=0.1)


def test_mnist_m() -> None:
    train, test = mnist_m("train"), mnist_m("test")
    assert_images(train, 12_000, (3, 32, 32))
    assert_images(test, 9_001, (3, 32, 32))
    # MNIST-M's train images are MNIST's train digits in the same order: the labels agree
    assert (train.y == mnist("train").y[:12_000]).all()


def test_usps() -> None:
    ds = usps()
    assert_images(ds, 9_298, (1, 16, 16))
    assert ds.label_counts().tolist() == [1553, 1269, 929, 824, 852, 716, 834, 792, 708, 821]


def test_qmnist_writers_align_with_mnist() -> None:
    train, test = qmnist_writers("train"), qmnist_writers("test")
    assert len(train) == 60_000 and len(test) == 10_000
    assert (train.label == mnist("train").y).all() and (test.label == mnist("test").y).all()
    assert (train.nist_class == 30 + train.label).all()
    assert all(a.dtype == np.int64 for a in train.as_dict().values())
    assert len(np.unique(train.writer)) == 539
    assert len(np.unique(test.writer)) == 297
    assert not np.intersect1d(train.writer, test.writer).size
    assert set(np.unique(train.series)) <= {0, 1, 4}


def test_heart() -> None:
    sites = heart()
    assert {h: len(d) for h, d in sites.items()} == {"cleveland": 303, "hungarian": 294, "switzerland": 123, "va": 200}
    for h, ds in sites.items():
        assert ds.x.dtype == np.float32 and not np.isnan(ds.x).any()
        assert ds.num_classes == 2 and ds.name == f"heart-{h}"
        assert ds.x.shape[1] == len(ds.meta["features"]) == 13 + 10
        num = ds.meta["num"]
        assert num.min() >= 0 and num.max() <= 4 and (ds.y == (num > 0)).all()
        missing = ds.meta["missing"]
        flagged = [heart_csv.RAW_FEATURES.index(f.removesuffix("_missing")) for f in ds.meta["features"][13:]]
        assert (ds.x[:, 13:] == missing[:, flagged]).all()
        fills = np.array([ds.meta["fill_values"][f] for f in heart_csv.RAW_FEATURES], dtype=np.float32)
        assert (ds.x[:, :13][missing] == np.broadcast_to(fills, missing.shape)[missing]).all()
    assert sites["switzerland"].meta["missing"][:, heart_csv.RAW_FEATURES.index("chol")].all()  # chol 0 = missing
    assert sites["cleveland"].label_counts().tolist() == [164, 139]


def test_missing_file_is_a_one_line_user_error(tmp_path: Path, fresh_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(UserError) as err:
        usps()
    msg = str(err.value)
    assert "\n" not in msg
    assert "usps/usps.mat" in msg and "missing" in msg and files.CHECKSUMS["usps/usps.mat"] in msg
    assert "mazuelas/SMRC" in msg
    assert decoded_files(fresh_cache) == []


def test_corrupted_file_is_a_one_line_user_error(tmp_path: Path, fresh_cache: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    (root / "heart").mkdir(parents=True)
    for h in heart_csv.HOSPITALS:
        shutil.copy(DATA / heart_csv.source(h), root / heart_csv.source(h))
    bad = root / "heart" / "processed.switzerland.data"
    data = bytearray(bad.read_bytes())
    data[0] ^= 0x01  # "32,..." becomes "22,..."
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("PFTLAB_DATA", str(root))
    with pytest.raises(UserError) as err:
        heart()
    msg = str(err.value)
    assert "\n" not in msg
    assert "heart/processed.switzerland.data" in msg and "checksum" in msg
    assert files.CHECKSUMS["heart/processed.switzerland.data"] in msg and files.file_sha256(bad) in msg
    assert "RenHongJia" in msg
    assert decoded_files(fresh_cache) == []


def test_second_load_hits_the_cache_without_reading_sources(monkeypatch) -> None:
    first = usps()

    def fail(*args: object) -> None:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(usps_mat, "_decode", fail)
    monkeypatch.setattr(files, "verify", fail)
    again = usps()
    assert np.array_equal(first.x, again.x) and np.array_equal(first.y, again.y)


def test_cache_file_is_named_by_the_source_checksum(fresh_cache: Path, monkeypatch) -> None:
    usps()
    sha = files.CHECKSUMS["usps/usps.mat"]
    assert [p.name for p in decoded_files(fresh_cache)] == [f"usps-{sha[:16]}.npz"]
    monkeypatch.setitem(files.CHECKSUMS, "usps/usps.mat", "0" * 64)  # a new version of the source file
    assert files.cache_path("usps", ["usps/usps.mat"]).name == f"usps-{'0' * 16}.npz"


def test_unreadable_cache_is_rebuilt(fresh_cache: Path) -> None:
    expected = usps()
    (path,) = decoded_files(fresh_cache)
    path.write_bytes(b"not an npz file")
    rebuilt = usps()
    assert np.array_equal(rebuilt.x, expected.x)
    with np.load(path, allow_pickle=False) as f:
        assert f["x"].shape == (9_298, 16, 16)


def test_failed_decode_leaves_no_cache_file(fresh_cache: Path, monkeypatch) -> None:
    def broken(paths: object) -> None:
        raise RuntimeError("decoder broke")

    monkeypatch.setattr(usps_mat, "_decode", broken)
    with pytest.raises(RuntimeError, match="decoder broke"):
        usps()
    assert decoded_files(fresh_cache) == []


@pytest.mark.parametrize("load", [mnist, fashion_mnist, cifar10, mnist_m, qmnist_writers])
def test_unknown_split_is_a_user_error(load) -> None:
    with pytest.raises(UserError, match="unknown split 'val'"):
        load("val")
