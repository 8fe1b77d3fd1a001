"""One client's partition as one file, so a SuperNode loads its own data and nothing else.

The file is safetensors (numpy arrays, no pickle): train / val / test samples and labels, plus
string metadata naming the client, the federation and the partition's content hash.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from pftlab.core.errors import UserError
from pftlab.core.io import atomic_write_bytes
from pftlab.data.dataset import ClientData, Dataset, FederatedData

FORMAT = "pftlab-client-partition/1"
SPLITS = ("train", "val", "test")


def client_file(out: Path, client_id: int) -> Path:
    return Path(out) / f"client{client_id}.safetensors"


def save_client(path: Path, fed: FederatedData, client_id: int) -> None:
    """Write client `client_id` of `fed` (its three splits and what identifies them) to `path`."""
    c = fed.clients[client_id]
    arrays = {}
    for split in SPLITS:
        d: Dataset = getattr(c, split)
        arrays[f"{split}_x"] = np.ascontiguousarray(d.x)
        arrays[f"{split}_y"] = np.ascontiguousarray(d.y)
    meta = {
        "format": FORMAT,
        "benchmark": fed.name,
        "client_id": str(client_id),
        "num_clients": str(fed.num_clients),
        "num_classes": str(fed.num_classes),
        "input_shape": json.dumps(list(fed.input_shape)),
        "domain": c.domain,
        "partition_hash": fed.partition_hash,
        "partition": json.dumps(fed.partition[client_id] if fed.partition else {}, sort_keys=True),
    }
    atomic_write_bytes(path, save(arrays, metadata=meta))


def load_client(path: Path) -> tuple[ClientData, dict[str, str]]:
    """(the client's splits, the file's metadata); a missing or foreign file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"partition file {str(path)!r} not found (write it with 'pftlab flower export')")
    raw = path.read_bytes()
    try:
        arrays = load(raw)
        meta = _metadata(raw)
    except (SafetensorError, ValueError) as err:
        raise UserError(f"partition file {str(path)!r} is not a safetensors file: {err}") from None
    if meta.get("format") != FORMAT or any(f"{s}_{k}" not in arrays for s in SPLITS for k in "xy"):
        raise UserError(f"partition file {str(path)!r} is not a pftlab client partition ({FORMAT})")
    k = int(meta["num_classes"])
    splits = {s: Dataset(arrays[f"{s}_x"], arrays[f"{s}_y"], k, meta["benchmark"]) for s in SPLITS}
    return ClientData(int(meta["client_id"]), splits["train"], splits["val"], splits["test"], meta["domain"]), meta


def _metadata(raw: bytes) -> dict[str, str]:
    """The safetensors header's __metadata__ (the format: 8-byte little-endian length, then JSON)."""
    n = int.from_bytes(raw[:8], "little")
    metadata: dict[str, str] = json.loads(raw[8 : 8 + n]).get("__metadata__", {})
    return metadata


def client_info(client: ClientData, meta: dict[str, str]) -> dict[str, str | int]:
    """What a node tells the server about itself: identity and sizes, never samples."""
    return {
        "client-id": client.client_id,
        "num-clients": int(meta["num_clients"]),
        "num-classes": int(meta["num_classes"]),
        "input-shape": meta["input_shape"],
        "benchmark": meta["benchmark"],
        "domain": client.domain,
        "partition-hash": meta["partition_hash"],
        "partition": meta["partition"],
        "n-train": len(client.train),
        "n-val": len(client.val),
        "n-test": len(client.test),
    }


def client_from_federation(fed: FederatedData, client_id: int) -> tuple[ClientData, dict[str, str]]:
    """The same (client, metadata) pair as load_client, taken from a federation built in memory."""
    if not 0 <= client_id < fed.num_clients:
        raise UserError(f"partition-id {client_id} is out of range: the federation has {fed.num_clients} clients")
    meta = {
        "benchmark": fed.name,
        "num_clients": str(fed.num_clients),
        "num_classes": str(fed.num_classes),
        "input_shape": json.dumps(list(fed.input_shape)),
        "partition_hash": fed.partition_hash,
        "partition": json.dumps(fed.partition[client_id] if fed.partition else {}, sort_keys=True),
    }
    return fed.clients[client_id], meta
