"""Corrupted data files: caches are rebuilt to the identical result, inputs are refused in one line.

For each file kind the file is truncated, has a byte flipped, or has garbage appended; the test counts every
corruption tried and fails on any that gives a result other than the original or a one-line refusal.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pftlab.core.errors import CorruptFile, UserError
from pftlab.data.benchmarks import build_federation
from pftlab.data.sources import files
from pftlab.data.sources.synth_digits import cache_file, synth_digits
from pftlab.experiment.config import DataConfig

SOURCE = "fake/source.bin"


def damaged(data: bytes, step: int) -> list[tuple[str, bytes]]:
    """Byte flips at every `step`-th position, truncations at every `step`-th length, three kinds of garbage."""
    cases = []
    for i in range(0, len(data), step):
        b = bytearray(data)
        b[i] ^= 0x01
        cases.append((f"flip {i}", bytes(b)))
    cases += [(f"truncate {n}", data[:n]) for n in range(0, len(data), step)]
    cases += [(f"append {g[:4]!r}", data + g) for g in (b"\0", b"garbage\n", b"\xff" * 1000)]
    return cases


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One source file under a private data root, registered with its sha256."""
    root = tmp_path / "data"
    (root / "fake").mkdir(parents=True)
    payload = bytes(range(256)) * 4
    (root / SOURCE).write_bytes(payload)
    monkeypatch.setenv(files.DATA_ENV, str(root))
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(files.CHECKSUMS, SOURCE, hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(files.ORIGINS, "fake", "the test")
    return root / SOURCE


def decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    raw = np.frombuffer(paths[SOURCE].read_bytes(), dtype=np.uint8)
    return {"x": raw.reshape(-1, 16).astype(np.float32) / 255, "y": raw[:64].astype(np.int64), "names": np.array(["a"])}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_a_corrupt_decoded_cache_is_rebuilt_to_the_same_arrays(fake_source: Path) -> None:
    builds = []

    def build(paths: dict[str, Path]) -> dict[str, np.ndarray]:
        builds.append(1)
        return decode(paths)

    expected = files.cached_arrays("fake", [SOURCE], build)
    cache = files.cache_path("fake", [SOURCE])
    good = cache.read_bytes()
    outcomes = {"loaded": 0, "rebuilt": 0}
    for name, data in damaged(good, 29):
        cache.write_bytes(data)
        before = len(builds)
        got = files.cached_arrays("fake", [SOURCE], build)
        assert same(got, expected), f"{name}: a corrupt cache gave different arrays"
        outcomes["rebuilt" if len(builds) > before else "loaded"] += 1
        assert same(files.cached_arrays("fake", [SOURCE], build), expected)  # the rebuilt cache is good
    print(f"decoded-cache corruptions tried: {sum(outcomes.values())} ({outcomes})")
    assert outcomes["rebuilt"] > 100


def test_a_corrupt_source_file_is_refused_in_one_line(fake_source: Path) -> None:
    good = fake_source.read_bytes()
    tried = 0
    for name, data in damaged(good, 11):
        fake_source.write_bytes(data)
        files.cache_path("fake", [SOURCE]).unlink(missing_ok=True)
        with pytest.raises(CorruptFile) as err:
            files.cached_arrays("fake", [SOURCE], decode)
        assert "fails its checksum" in str(err.value) and "\n" not in str(err.value), name
        assert not files.cache_path("fake", [SOURCE]).exists(), "a refused source must not leave a cache"
        tried += 1
    print(f"source-file corruptions tried: {tried}")


def test_a_corrupt_synth_digits_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    expected = synth_digits(20, 0)
    path = cache_file(20, 0)
    good = path.read_bytes()
    tried = 0
    for name, data in damaged(good, 331):
        path.write_bytes(data)
        got = synth_digits(20, 0)
        assert np.array_equal(got.x, expected.x) and np.array_equal(got.y, expected.y), name
        tried += 1
    print(f"synth-digits cache corruptions tried: {tried}")


def write_table(path: Path) -> bytes:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["client", "label", "f0", "f1"])
        for i in range(60):
            w.writerow([f"c{i % 3}", i % 2, *np.round(rng.normal(size=2), 3)])
    return path.read_bytes()


def test_a_corrupt_user_table_is_refused_or_recorded(tmp_path: Path) -> None:
    """A CSV has no checksum: garbage, a cut row and a bad cell are refused in one line (never a traceback); a
    change that still parses gives a different partition hash (it covers each client's data sha256), which
    summary.json records and the checkpoint cache keys on, so it is never mistaken for the original."""
    path = tmp_path / "t.csv"
    good = write_table(path)
    cfg = DataConfig(benchmark="table", path=str(path))
    reference = build_federation(cfg, 0).partition_hash
    outcomes = {"refused": 0, "recorded": 0, "same data": 0}
    for name, data in damaged(good, 13):
        path.write_bytes(data)
        try:
            got = build_federation(cfg, 0).partition_hash
        except UserError as err:
            assert "\n" not in str(err), name
            outcomes["refused"] += 1
            continue
        outcomes["same data" if got == reference else "recorded"] += 1  # e.g. a renamed feature column
    print(f"user-table corruptions tried: {sum(outcomes.values())} ({outcomes})")
    assert outcomes["refused"] > 0 and outcomes["recorded"] > 0


def test_a_corrupt_user_image_is_refused_or_recorded(tmp_path: Path) -> None:
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for client in ("a", "b"):
        for label in ("0", "1"):
            (root / client / label).mkdir(parents=True)
            for k in range(4):
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / client / label / f"{k}.png")
    cfg = DataConfig(benchmark="image-folder", path=str(root), image_size=8, channels=1, val_fraction=0.25)
    reference = build_federation(cfg, 0).partition_hash
    target = root / "a" / "1" / "2.png"
    good = target.read_bytes()
    outcomes = {"refused": 0, "recorded": 0, "same pixels": 0}
    for name, data in damaged(good, 3):
        target.write_bytes(data)
        try:
            got = build_federation(cfg, 0).partition_hash
        except UserError as err:
            assert "\n" not in str(err) and "2.png" in str(err), name
            outcomes["refused"] += 1
            continue
        # PNG ignores bytes after its end chunk and some ancillary bytes: then the pixels are the originals
        outcomes["same pixels" if got == reference else "recorded"] += 1
    target.write_bytes(good)
    print(f"user-image corruptions tried: {sum(outcomes.values())} ({outcomes})")
    assert outcomes["refused"] > 0
