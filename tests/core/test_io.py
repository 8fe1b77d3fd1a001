"""Weights files: every truncation, flipped bit and appended garbage is refused, never loaded as other weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pftlab.core.errors import CorruptFile
from pftlab.core.io import load_weights, save_weights

WEIGHTS = {
    "conv.weight": torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(0)),
    "head.bias": torch.tensor([0.5, -1.0]),
    "steps": torch.tensor(7),
    "half": torch.tensor([1.5, 2.0], dtype=torch.bfloat16),
    "empty": torch.zeros(0),
}


def outcome(path: Path, data: bytes) -> str:
    """'refused' (CorruptFile with a one-line message), 'same' (identical tensors) or 'WRONG'."""
    path.write_bytes(data)
    try:
        got = load_weights(path)
    except CorruptFile as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return "refused"
    same = got.keys() == WEIGHTS.keys() and all(
        got[k].dtype == v.dtype and torch.equal(got[k], v) for k, v in WEIGHTS.items()
    )
    return "same" if same else "WRONG"


def corruptions(data: bytes) -> list[tuple[str, bytes]]:
    """Every single-bit flip (low and high bit of every byte), every truncation, and three kinds of appended garbage."""
    cases = []
    for i in range(len(data)):
        for bit in (0, 7):
            b = bytearray(data)
            b[i] ^= 1 << bit
            cases.append((f"flip byte {i} bit {bit}", bytes(b)))
    cases += [(f"truncate to {n}", data[:n]) for n in range(len(data))]
    cases += [(f"append {g[:8]!r}", data + g) for g in (b"\0", b"garbage", b"\xff" * 4096)]
    return cases


def test_every_corruption_of_a_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, WEIGHTS, metadata={"key": "abc"})
    data = path.read_bytes()
    assert outcome(path, data) == "same"
    results = {name: outcome(path, corrupt) for name, corrupt in corruptions(data)}
    wrong = [name for name, r in results.items() if r == "WRONG"]
    print(f"weights corruptions tried: {len(results)}, refused: {sum(r == 'refused' for r in results.values())}")
    assert not wrong, wrong[:10]
    assert len(results) > 1000


def test_the_checksum_covers_tensor_bytes_that_safetensors_does_not_check(tmp_path: Path) -> None:
    """A flipped bit inside a float loads fine without the checksum: that is the case the checksum exists for."""
    path = tmp_path / "w.safetensors"
    save_weights(path, WEIGHTS)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x04  # inside the tensor data section
    path.write_bytes(bytes(data))
    plain = load_file(str(path))  # safetensors alone: loads, with one value silently changed
    assert any(not torch.equal(plain[k], v) for k, v in WEIGHTS.items())
    with pytest.raises(CorruptFile, match=r"fails its pftlab\.sha256 checksum"):
        load_weights(path)


def test_foreign_safetensors_load_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(CorruptFile, match=r"no pftlab\.sha256 checksum"):
        load_weights(path)
    assert torch.equal(load_weights(path, require_checksum=False)["w"], torch.ones(2))
    with pytest.raises(CorruptFile, match="not a readable safetensors file"):
        load_weights(tmp_path / "missing.safetensors")


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pftlab.core import io

    path = tmp_path / "summary.json"
    path.write_text("old")

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # stands in for a kill between writing and renaming

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


_SAVE = """
import sys, torch
from pathlib import Path
from pftlab.core.io import save_weights
weights = {"z.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.tensor([1, 2], dtype=torch.int64),
           "m": torch.tensor([0.5], dtype=torch.float64)}
for path in sys.argv[1:]:
    save_weights(Path(path), weights, metadata={f"key{i:02d}": f"value {i} \\u00e9" for i in range(24)})
"""


def test_equal_weights_and_metadata_give_equal_bytes_in_every_process(tmp_path: Path) -> None:
    """safetensors writes `__metadata__` in a Rust hash map's order, which changes with every save.

    With 25 metadata keys two saves agree on that order with odds of 1 in 25!, so the old writer failed
    this test every time; save_weights now writes one canonical header. Two saves in each of two
    processes with different PYTHONHASHSEED must give four equal files.
    """
    import os
    import subprocess
    import sys

    from safetensors import safe_open

    files = [tmp_path / f"w{seed}-{k}.safetensors" for seed in (0, 1) for k in (0, 1)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVE, str(files[2 * seed]), str(files[2 * seed + 1])],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        )
        for seed in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    data = [p.read_bytes() for p in files]
    assert data[0] == data[1] == data[2] == data[3]
    header_len = int.from_bytes(data[0][:8], "little")
    assert header_len % 8 == 0 and data[0][8 : 8 + header_len].rstrip(b" ").endswith(b"}")
    loaded = load_weights(files[0])
    assert torch.equal(loaded["z.weight"], torch.arange(6.0).reshape(2, 3)) and loaded["a.bias"].dtype == torch.int64
    assert torch.equal(load_file(str(files[0]))["m"], torch.tensor([0.5], dtype=torch.float64))
    with safe_open(str(files[0]), framework="pt") as f:
        assert f.metadata()["key03"] == "value 3 \u00e9"
