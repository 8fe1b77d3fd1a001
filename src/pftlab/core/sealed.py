"""Saved state that is verified before it is reused: sealed JSON records and folder manifests.

A result saved for a later run (a chunk of clients, a baseline's result, a finished run) is only
as good as the check made when it is read back. Two kinds of check live here:

- a *sealed record* is one JSON file holding its payload, the sha256 of the payload and the key
  of the computation it belongs to; an edited digit, a truncated file or a record of another
  computation reads back as "not verified" (with the reason), never as a result;
- a *manifest* (`manifest.json` in a folder) lists the sha256 of the folder's files and the key
  of the run that wrote them; a folder whose files do not match it is not reused.

Both are integrity checks against accident and careless edits (a user who also rewrites the
checksum can fool them; nothing here is a signature).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pftlab.core.io import config_hash, write_json

FORMAT = 1
MANIFEST = "manifest.json"


def write_sealed(path: Path, key: str, payload: Any) -> None:
    """`payload` (JSON-able, finite) saved atomically with its sha256 and the key of its computation."""
    write_json(path, {"format": FORMAT, "key": key, "sha256": config_hash(payload), "payload": payload})


def read_sealed(path: Path, key: str) -> tuple[Any, str | None]:
    """(payload, None) if `path` is a sealed record of `key` whose payload verifies, else (None, why not)."""
    if not path.is_file():
        return None, "absent"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable ({type(err).__name__})"
    if not isinstance(record, dict) or record.get("format") != FORMAT or "payload" not in record:
        return None, "not a sealed record of this pftlab"
    if record.get("key") != key:
        return None, "computed for another configuration"
    if record.get("sha256") != config_hash(record["payload"]):
        return None, "fails its sha256 check (edited or damaged)"
    return record["payload"], None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Every regular file under `folder` (relative, '/'-separated, sorted) except the manifest and
    hidden entries (temporary files, `.results/`, locks)."""
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        hidden = any(part.startswith(".") for part in rel.parts)
        if path.is_file() and not path.is_symlink() and rel.as_posix() != MANIFEST and not hidden:
            out.append(rel.as_posix())
    return sorted(out)


def write_manifest(folder: Path, key: str, parts: dict[str, Any], about: dict[str, Any] | None = None) -> None:
    """manifest.json: the sha256 of every file now in `folder`, and the run key (with its readable
    `parts`) they belong to; `about` (e.g. the writing pftlab's version) is recorded, not checked."""
    files = {rel: file_sha256(folder / rel) for rel in folder_files(folder)}
    write_json(folder / MANIFEST, {"format": FORMAT, "key": key, "key_parts": parts, "files": files, **(about or {})})


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        return None
    return manifest


def verify_folder(folder: Path, key: str | None, required: Iterable[str] | None = None) -> str | None:
    """None if `folder`'s manifest belongs to `key` (any key when None) and its files verify, else
    why not (one phrase).

    `required`: the files the caller will read (each must be listed and match); None = every file
    the manifest lists. A file added to the folder later is not the run's and is ignored.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return "it has no readable manifest.json"
    if key is not None and manifest.get("key") != key:
        return "its manifest belongs to another configuration, model or compute setting"
    files: dict[str, Any] = manifest["files"]
    names = list(files) if required is None else list(required)
    for rel in names:
        path = folder / rel
        if rel not in files:
            return f"{rel} is not in its manifest"
        try:
            if not path.is_file() or file_sha256(path) != files[rel]:
                return f"{rel} is missing or changed since the run wrote it"
        except OSError:
            return f"{rel} cannot be read"
    return None
