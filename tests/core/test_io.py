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
