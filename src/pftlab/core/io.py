"""Atomic writes (bytes, text, JSON, CSV, PNG) and safetensors weights: a reader never sees a half-written file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from pftlab.core.errors import CorruptFile
from pftlab.core.weights import Weights

if TYPE_CHECKING:  # matplotlib is imported by whoever draws the figure, never by this module
    from matplotlib.figure import Figure


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it.

    A file that already holds exactly `data` is left untouched (same bytes, same mtime): a rerun
    that adds one method to a run does not rewrite the other methods' files.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass  # unreadable: write it anew
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # so the one-line error names the file (ENOSPC, EIO...)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, fixed indentation, so equal data gives equal bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def csv_text(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    header: Sequence[str] | None = None,
    float_format: str | None = None,
) -> str:
    """The text `write_csv` writes: ',' between cells, '\\n' after every row, quotes only where a cell needs them.

    Rows are dicts, under the header `header` or else the first row's keys (a key outside the header is a
    ValueError, a missing one an empty cell), or lists, under `header` when one is given. A float cell is
    written as Python's repr (the shortest text that reads back as the same float), or with
    `float_format` (e.g. ".17g") when one is given.
    """
    columns: list[str] | None
    if rows and isinstance(rows[0], Mapping):
        named = list(header if header is not None else rows[0])
        table = [_dict_row(cast(Mapping[str, Any], row), named) for row in rows]
        columns = named
    elif header is not None or rows:
        columns = None if header is None else list(header)
        table = [list(cast(Sequence[Any], row)) for row in rows]
    else:
        raise ValueError("a CSV needs rows or a header; got neither")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if columns is not None:
        writer.writerow(columns)
    for row in table:
        writer.writerow([format(v, float_format) if float_format and isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _dict_row(row: Mapping[str, Any], columns: list[str]) -> list[Any]:
    extra = [k for k in row if k not in columns]
    if extra:
        raise ValueError(f"a CSV row has keys outside the header {columns}: {extra}")
    return [row.get(k, "") for k in columns]


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    header: Sequence[str] | None = None,
    float_format: str | None = None,
) -> None:
    """`rows` as a UTF-8 CSV file, written atomically (see `csv_text` for the format)."""
    atomic_write_text(path, csv_text(rows, header, float_format))


def write_png(path: Path, fig: Figure, dpi: int = 120) -> None:
    """A matplotlib figure as a PNG file, written atomically; the figure is closed.

    Cropped to its content (bbox_inches="tight") and with no "Software" metadata, so the bytes depend
    only on the figure and the matplotlib version, never on when or where it was drawn.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")  # a figure pyplot made is held by pyplot until closed
        if pyplot is not None:
            pyplot.close(fig)
    atomic_write_bytes(path, buf.getvalue())


CHECKSUM_KEY = "pftlab.sha256"


def weights_sha256(tensors: Weights, metadata: dict[str, str]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (sorted by name) and the other metadata.

    Safetensors checks the header and the file length but not the tensor bytes: a flipped bit in a
    weight would load silently. This checksum, stored in the file's metadata, catches it.
    """
    digest = hashlib.sha256()
    for key in sorted(metadata):
        if key != CHECKSUM_KEY:
            digest.update(f"meta\0{key}\0{metadata[key]}\0".encode())
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(f"tensor\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its header in one canonical form: equal content, equal bytes.

    safetensors' writer emits the header's `__metadata__` map in the order of a Rust hash map, which
    changes with every call, so equal weights and metadata gave different bytes. The header JSON is
    rewritten with sorted keys and no spaces, padded with spaces to a multiple of 8 bytes (as the
    format asks, so the data section stays aligned); the data section, and every tensor's offsets
    into it, are kept as they are.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def save_weights(path: Path, weights: Weights, metadata: dict[str, str] | None = None) -> None:
    """Safetensors, written atomically, with a content checksum in its metadata (verified by load_weights).

    The bytes depend only on the tensors and the metadata (see `_canonical_safetensors`).
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    meta = {k: v for k, v in (metadata or {}).items() if k != CHECKSUM_KEY}
    meta[CHECKSUM_KEY] = weights_sha256(tensors, meta)
    atomic_write_bytes(path, _canonical_safetensors(save(tensors, metadata=meta)))


def load_weights(path: Path, require_checksum: bool = True) -> Weights:
    """The tensors of a safetensors file, checked against the checksum save_weights stored.

    A truncated, altered or unreadable file raises `CorruptFile` (one line): callers that read a cache
    rebuild it, the CLI refuses an input with the message. `require_checksum=False` accepts
    safetensors written by other tools (no pftlab checksum) and still verifies one that is present.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        why = (str(err).splitlines() or [type(err).__name__])[0]
        raise CorruptFile(f"weights file {path} is not a readable safetensors file ({why}); replace it") from None
    expected = metadata.get(CHECKSUM_KEY)
    if expected is None:
        if require_checksum:
            raise CorruptFile(f"weights file {path} has no {CHECKSUM_KEY} checksum: not written by pftlab, or altered")
        return tensors
    if weights_sha256(tensors, metadata) != expected:
        raise CorruptFile(f"weights file {path} fails its {CHECKSUM_KEY} checksum: it was altered; replace it")
    return tensors


ARRAYS_MANIFEST = "__pftlab_sha256__"


def array_sha256(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode() + a.tobytes()).hexdigest()


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (no pickles) written atomically, with a manifest of every array's name and sha256."""
    manifest = np.array([f"{k}:{array_sha256(v)}" for k, v in sorted(arrays.items())])
    buf = io.BytesIO()
    np.savez(buf, **{**arrays, ARRAYS_MANIFEST: manifest})  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: Path, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays save_arrays wrote (only `keys`, if given), each checked against the manifest.

    The zip's CRC catches most flipped bytes; the manifest also catches a member that went missing
    or changed name, so a damaged file never loads as a smaller or different set of arrays.
    Raises `CorruptFile` (callers treating the file as a cache rebuild it).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            manifest = dict(line.split(":", 1) for line in f[ARRAYS_MANIFEST].tolist())
            names = list(manifest) if keys is None else list(keys)
            out = {k: f[k] for k in names}
    except Exception as err:  # zipfile, numpy and OS errors alike: the file is not what save_arrays wrote
        raise CorruptFile(f"array file {path} is damaged ({type(err).__name__}); delete it to rebuild") from None
    for k, a in out.items():
        if manifest.get(k) != array_sha256(a):
            raise CorruptFile(f"array file {path}: {k!r} fails its sha256 check; delete it to rebuild")
    return out


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_hash(obj: Any) -> str:
    """Content hash of any JSON-able object (key order does not matter)."""
    return sha256_hex(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def cache_dir() -> Path:
    """Where decoded data and global checkpoints are cached: $PFTLAB_CACHE, else the user cache dir."""
    if os.environ.get("PFTLAB_CACHE"):
        return Path(os.environ["PFTLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pftlab"


def safe_name(name: str) -> str:
    """`name` if it is one plain file-name component (no folder, no '..', no NUL), else a ValueError.

    File names in a run directory come from registry names (methods, benchmarks); this guard keeps
    a path built from them inside the run directory.
    """
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or Path(name).is_absolute():
        raise ValueError(f"{name!r} is not a plain file name: use letters, digits, '-', '_' or '.'")
    return name
