"""data.normalize and data.augment: off by default, seeded, the same for every method, training batches only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pftlab.core.errors import UserError
from pftlab.data.augment import Augment, training_augment
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import from_dict
from pftlab.models import build_model
from pftlab.training.config import OptimizerConfig
from pftlab.training.loop import train
from pftlab.training.phase import Phase


def federation(**data: object):  # type: ignore[no-untyped-def]
    return build_federation(from_dict({"data": {"benchmark": "digits-quick", **data}}).data, 0)


def test_defaults_leave_the_federation_as_it_was() -> None:
    plain, marked = federation(), federation(normalize=False, augment="none")
    assert plain.partition_hash == marked.partition_hash
    for a, b in zip(plain.clients, marked.clients, strict=True):
        assert np.array_equal(a.train.x, b.train.x) and training_augment(a.train) is None
        assert "normalization" not in a.train.meta


def test_normalize_uses_the_pooled_training_statistics_for_every_split() -> None:
    plain, norm = federation(), federation(normalize=True)
    pooled = np.concatenate([c.train.x for c in norm.clients]).astype(np.float64)
    assert np.allclose(pooled.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert np.allclose(pooled.std(axis=(0, 2, 3)), 1, atol=1e-4)
    stats = norm.clients[0].train.meta["normalization"]
    mean, std = np.array(stats["mean"]), np.array(stats["std"])
    for a, b in zip(plain.clients, norm.clients, strict=True):
        for split in ("train", "val", "test"):
            want = (getattr(a, split).x - mean[None, :, None, None]) / std[None, :, None, None]
            np.testing.assert_allclose(getattr(b, split).x, want, rtol=1e-5, atol=1e-5)


def test_only_training_splits_carry_the_augmentation() -> None:
    fed = federation(augment="crop-flip", crop_padding=2)
    c = fed.clients[0]
    assert training_augment(c.train) == Augment(crop=True, flip=True, padding=2)
    assert training_augment(c.val) is None and training_augment(c.test) is None


def test_a_crop_is_a_window_of_the_padded_image_and_a_flip_mirrors_it() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    rng = np.random.default_rng(7)
    out = Augment(crop=True, flip=False, padding=2)(x, rng)
    same = np.random.default_rng(7)
    dy, dx = same.integers(0, 5, size=2), same.integers(0, 5, size=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + 5, dx[i] : dx[i] + 5])
    coins = np.random.default_rng(3).random(2) < 0.5
    flipped = Augment(crop=False, flip=True, padding=0)(x, np.random.default_rng(3))
    for i in range(2):
        assert torch.equal(flipped[i], x[i].flip(-1) if coins[i] else x[i])


def _trained(fed, seed: int = 0) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    cfg = from_dict({})
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, 0)
    phases = [Phase(train="all", epochs=2, lr=0.05)]
    train(model, phases, fed.clients[0].train, OptimizerConfig(batch_size=16), seed, "ft", 0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_with_augmentation_is_seeded_and_differs_from_without() -> None:
    plain, aug = federation(), federation(augment="crop", crop_padding=2)
    a, b, c = _trained(aug), _trained(aug), _trained(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert any(not torch.equal(a[k], v) for k, v in _trained(aug, seed=1).items())


def test_augmenting_a_table_is_refused_in_one_line() -> None:
    with pytest.raises(UserError, match=r"data\.augment applies to images \(C, H, W\); benchmark 'heart'"):
        build_federation(from_dict({"data": {"benchmark": "heart", "augment": "flip"}}).data, 0)
