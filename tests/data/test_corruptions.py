"""CIFAR-10-C corruptions on real 32x32 RGB images (MNIST-M test images: fast to decode)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from pftlab.core.errors import UserError
from pftlab.data import corruptions
from pftlab.data.corruptions import CORRUPTIONS, corrupt

DATA = Path(__file__).parents[2].parent / "shared" / "data"
HAVE_FROST = corruptions.frost_dir() is not None

# Severity tables that strictly grow: the change from the clean image must not shrink from one severity to the next.
MONOTONE = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "fog",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
}


def needs(name: str) -> list:
    if name == "frost":
        return [pytest.mark.skipif(not HAVE_FROST, reason="frost photos not installed (imagecorruptions-imaug)")]
    return []


ALL = [pytest.param(name, marks=needs(name)) for name in CORRUPTIONS]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """64 MNIST-M test images, float32 (64, 3, 32, 32) in [0, 1]."""
    if not DATA.is_dir():
        pytest.skip(f"offline datasets not found at {DATA}")
    from pftlab.data.sources import mnist_m

    with pytest.MonkeyPatch.context() as mp:
        # module fixtures run before the autouse ones of conftest: set the same session cache and data root here
        mp.setenv("PFTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "pftlab-cache"))
        mp.setenv("PFTLAB_DATA", str(DATA))
        return mnist_m("test").x[:64].copy()


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def test_the_fifteen_cifar10c_corruptions() -> None:
    assert len(CORRUPTIONS) == 15 == len(set(CORRUPTIONS))
    assert set(CORRUPTIONS) == set(corruptions._FUNCTIONS)


@pytest.mark.parametrize("name", ALL)
def test_shape_range_and_severity(images: np.ndarray, name: str) -> None:
    before = images.copy()
    diffs = []
    for severity in (1, 2, 3, 4, 5):
        out = corrupt(images, name, severity, np.random.default_rng(severity))
        assert out.shape == images.shape and out.dtype == np.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        levels = out * 255.0
        assert np.abs(levels - np.round(levels)).max() < 1e-3  # 8-bit levels, as CIFAR-10-C
        diffs.append(mad(out, images))
    np.testing.assert_array_equal(images, before)  # the input is not modified
    # Every severity changes the images (mean absolute difference, pixel values in [0, 1]).
    assert min(diffs) > 0.004, diffs
    if name == "elastic_transform":
        # CIFAR-10-C's elastic severity 1 is a pure affine warp with the largest shift: the change shrinks.
        assert diffs[0] > diffs[4], diffs
    else:
        assert diffs[4] > 1.2 * diffs[0], diffs
    if name in MONOTONE:
        assert all(b >= a - 0.002 for a, b in pairwise(diffs)), diffs


@pytest.mark.parametrize("name", ALL)
def test_deterministic_given_rng(images: np.ndarray, name: str) -> None:
    x = images[:16]
    state = np.random.get_state()
    a = corrupt(x, name, 3, np.random.default_rng(7))
    b = corrupt(x, name, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    # The global numpy random state is neither used nor changed.
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    deterministic = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}
    c = corrupt(x, name, 3, np.random.default_rng(8))
    assert np.array_equal(a, c) == (name in deterministic)


def test_brightness_matches_hsv_round_trip(images: np.ndarray) -> None:
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    x = images[:8]
    hsv = rgb_to_hsv(x.transpose(0, 2, 3, 1).astype(np.float64))
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    expected = np.floor(np.clip(hsv_to_rgb(hsv), 0, 1) * 255 + 1e-6).transpose(0, 3, 1, 2) / 255
    got = corrupt(x, "brightness", 5, np.random.default_rng(0))
    assert np.abs(got - expected).max() <= 1.0 / 255 + 1e-6


def test_contrast_keeps_the_channel_means_and_a_flat_image() -> None:
    flat = np.full((2, 3, 32, 32), 100 / 255, dtype=np.float32)
    np.testing.assert_allclose(corrupt(flat, "contrast", 5, np.random.default_rng(0)), flat, atol=1e-7)
    np.testing.assert_allclose(corrupt(flat, "pixelate", 5, np.random.default_rng(0)), flat, atol=1e-7)


def test_other_sizes_and_empty_batch() -> None:
    x = np.random.default_rng(0).random((3, 3, 28, 40)).astype(np.float32)
    for name in CORRUPTIONS:
        if name == "frost" and not HAVE_FROST:
            continue
        assert corrupt(x, name, 2, np.random.default_rng(0)).shape == x.shape
    assert corrupt(x[:0], "fog", 1, np.random.default_rng(0)).shape == (0, 3, 28, 40)


@pytest.mark.parametrize(
    ("name", "severity", "match"),
    [
        ("gaussian", 1, "unknown corruption 'gaussian'; choose one of gaussian_noise, shot_noise,"),
        ("gaussian_noise", 0, "severity must be one of 1, 2, 3, 4, 5, got 0"),
        ("gaussian_noise", 6, "severity must be one of 1, 2, 3, 4, 5, got 6"),
        ("gaussian_noise", 2.0, "severity must be one of"),
        ("gaussian_noise", True, "severity must be one of"),
    ],
)
def test_errors(name: str, severity, match: str) -> None:
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(UserError, match=match) as info:
        corrupt(x, name, severity, np.random.default_rng(0))
    assert "\n" not in str(info.value)


def test_bad_shape() -> None:
    with pytest.raises(UserError, match=r"\(N, 3, H, W\)"):
        corrupt(np.zeros((2, 32, 32, 3), dtype=np.float32), "fog", 1, np.random.default_rng(0))


def test_frost_without_the_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corruptions, "frost_dir", lambda: None)
    corruptions._frost_textures.cache_clear()
    try:
        with pytest.raises(UserError, match="pip install imagecorruptions-imaug"):
            corrupt(np.zeros((1, 3, 32, 32), dtype=np.float32), "frost", 1, np.random.default_rng(0))
    finally:
        corruptions._frost_textures.cache_clear()


def test_chunks_make_the_first_results_independent_of_n(images: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corruptions, "CHUNK", 10)
    whole = corrupt(images[:25], "snow", 4, np.random.default_rng(3))
    first = corrupt(images[:10], "snow", 4, np.random.default_rng(3))
    np.testing.assert_array_equal(whole[:10], first)
