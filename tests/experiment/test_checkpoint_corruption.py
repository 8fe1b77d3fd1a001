"""A damaged global-checkpoint cache is never reused: it is retrained to the identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pftlab.core.io import save_weights
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import Config, DataConfig, FederatedConfig
from pftlab.models import build_model


def test_a_damaged_checkpoint_is_rebuilt_to_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    cfg = Config(data=DataConfig(num_clients=3, size="quick"), federated=FederatedConfig(rounds=2))
    fed = build_federation(cfg.data, cfg.seed)

    def train() -> tuple[dict[str, torch.Tensor], Path, bool]:
        return global_model(build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed), fed, cfg)

    expected, path, reused = train()
    assert not reused
    good = path.read_bytes()
    wrong_shapes = tmp_path / "other.safetensors"
    save_weights(wrong_shapes, {k: torch.zeros(1) for k in expected})
    n = len(good)
    damage = {
        "truncated to half": good[: n // 2],
        "truncated by one byte": good[:-1],
        "empty": b"",
        "a flipped byte in the last weight": good[:-3] + bytes([good[-3] ^ 0x10]) + good[-2:],
        "a flipped byte in the first weights": good[: n // 2] + bytes([good[n // 2] ^ 0x01]) + good[n // 2 + 1 :],
        "a flipped byte in the header": good[:20] + bytes([good[20] ^ 0x01]) + good[21:],
        "garbage appended": good + b"garbage",
        "another model's weights": wrong_shapes.read_bytes(),
    }
    for name, data in damage.items():
        path.write_bytes(data)
        weights, _, reused = train()
        assert not reused, f"{name}: a damaged checkpoint was reused"
        assert all(torch.equal(weights[k], v) for k, v in expected.items()), f"{name}: different weights"
        assert train()[2], f"{name}: the rebuilt checkpoint is not reused"
    print(f"checkpoint corruptions tried: {len(damage)}")
