"""SynthDigits substitute: digits rendered from fonts, the way Ganin & Lempitsky (2015) made the Digit-5 domain.

The original SynthDigits (500k images rendered from Windows fonts) is not available offline, so this module renders
an equivalent domain with Pillow and the TrueType fonts that ship inside matplotlib (`matplotlib.get_data_path()` +
`fonts/ttf`). Each 32x32 RGB image shows one centred digit (the label) in a random font, size, rotation, position,
stroke and background colour, often with 1-2 neighbouring digits of the same string cut off at the sides (as in
SVHN / SynthDigits crops), then a small Gaussian blur and a little pixel noise.

Fonts (21, drawn by family first so each family is equally likely, then by style):

- DejaVu Sans: regular, bold, oblique, bold oblique
- DejaVu Sans Mono: regular, bold, oblique, bold oblique
- DejaVu Serif: regular, bold, italic, bold italic
- STIX General: regular, bold, italic, bold italic
- Computer Modern: cmr10 (roman), cmb10 (bold), cmti10 (text italic), cmss10 (sans), cmtt10 (typewriter)

Left out: cmmi10 (old-style figures), cmsy10 / cmex10 / STIXNonUni* / STIXSiz* / *Display (no digit glyphs),
LastResortHE (placeholder boxes).

Every random choice of image `i` comes from `numpy_rng(seed, "synth-digits", i)` and every label from a
permutation of 0-9 per block of ten images, so the first `k` images are the same whatever `n` is, and labels are
balanced (exactly, for `n` a multiple of 10). The rendered uint8 arrays are cached under
`cache_dir() / "decoded"`, keyed by (n, seed, RENDER_VERSION, and the Pillow, FreeType and font versions).
"""

from __future__ import annotations

import io
import json
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pftlab.core.errors import UserError
from pftlab.core.io import atomic_write_bytes, cache_dir, sha256_hex
from pftlab.core.seeding import numpy_rng
from pftlab.data.dataset import Dataset

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

NAME = "synth-digits"
# Bump when the rendering changes, so no stale cache is reused.
RENDER_VERSION = "1"

SIZE = 32
_SCALE = 2  # render at 2x and box-downsample, for clean anti-aliasing
_CANVAS = SIZE * _SCALE

FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf"),
    "DejaVu Sans Mono": (
        "DejaVuSansMono.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSansMono-Oblique.ttf",
        "DejaVuSansMono-BoldOblique.ttf",
    ),
    "DejaVu Serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf"),
    "STIX General": ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf"),
    "Computer Modern": ("cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmss10.ttf", "cmtt10.ttf"),
}
FONTS: tuple[str, ...] = tuple(f for files in FONT_FAMILIES.values() for f in files)

# Ranges of the per-image draws (fractions of the image side unless noted).
DIGIT_HEIGHT = (0.45, 0.78)
MAX_ROTATION_DEG = 15.0
MAX_SHIFT = 0.08
MIN_CONTRAST = 0.3  # |luma(foreground) - luma(background)|, luma in [0, 1]
P_NEIGHBOUR = 0.55  # chance of a cut-off digit on each side
BLUR_SIGMA = (0.0, 1.0)  # pixels of the 32x32 image
NOISE_SIGMA = (0.0, 0.03)

_LUMA = np.array([0.299, 0.587, 0.114])


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _font(name: str, size: int) -> FreeTypeFont:
    from PIL import ImageFont

    path = font_dir() / name
    try:
        # The basic layout engine, so the result does not depend on whether Pillow found libraqm.
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as e:
        raise UserError(
            f"cannot load font {name} from {path} ({e}); synth-digits needs matplotlib's bundled fonts"
        ) from None


@cache
def _digit_height_ratio(name: str) -> float:
    """Mean height of the digit glyphs of font `name`, per point of font size."""
    font = _font(name, 100)
    heights = []
    for d in "0123456789":
        _, top, _, bottom = font.getbbox(d)
        heights.append(bottom - top)
    return float(np.mean(heights)) / 100.0


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground RGB in [0, 1] whose luma differs by at least MIN_CONTRAST."""
    while True:
        bg, fg = rng.random(3), rng.random(3)
        # Desaturate some colours towards their grey, so not every image is garish.
        bg = bg + (bg @ _LUMA - bg) * rng.uniform(0.0, 0.7)
        fg = fg + (fg @ _LUMA - fg) * rng.uniform(0.0, 0.7)
        if abs(float((fg - bg) @ _LUMA)) >= MIN_CONTRAST:
            return bg, fg


def _render(rng: np.random.Generator, label: int) -> np.ndarray:
    """One image, uint8 (3, 32, 32)."""
    from PIL import Image, ImageDraw

    family = list(FONT_FAMILIES)[rng.integers(len(FONT_FAMILIES))]
    styles = FONT_FAMILIES[family]
    name = styles[rng.integers(len(styles))]
    height = rng.uniform(*DIGIT_HEIGHT) * _CANVAS
    font = _font(name, max(8, round(height / _digit_height_ratio(name))))
    angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * _CANVAS
    bg, fg = _colours(rng)
    bg2 = np.clip(bg + rng.normal(0.0, 0.12, size=3), 0.0, 1.0)  # background gradient end colour
    grad_angle = rng.uniform(0.0, 2 * np.pi)
    neighbours = rng.random(2) < P_NEIGHBOUR
    neighbour_digits = rng.integers(10, size=2)
    gap = rng.uniform(0.03, 0.15) * height
    blur = rng.uniform(*BLUR_SIGMA)
    noise = rng.uniform(*NOISE_SIGMA)
    noise_field = rng.standard_normal((SIZE, SIZE, 3))

    # The digit string as an anti-aliased mask: the label centred, neighbours on the same baseline.
    mask = Image.new("L", (_CANVAS, _CANVAS), 0)
    draw = ImageDraw.Draw(mask)
    left, top, right, bottom = font.getbbox(str(label))
    ox = _CANVAS / 2 + shift[0] - (left + right) / 2
    oy = _CANVAS / 2 + shift[1] - (top + bottom) / 2
    draw.text((ox, oy), str(label), font=font, fill=255)
    if neighbours[0]:
        d = str(neighbour_digits[0])
        draw.text((ox + left - gap - font.getbbox(d)[2], oy), d, font=font, fill=255)
    if neighbours[1]:
        d = str(neighbour_digits[1])
        draw.text((ox + right + gap - font.getbbox(d)[0], oy), d, font=font, fill=255)
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, center=(_CANVAS / 2, _CANVAS / 2))
    alpha = np.asarray(mask, dtype=np.float64) / 255.0
    alpha = alpha.reshape(SIZE, _SCALE, SIZE, _SCALE).mean(axis=(1, 3))[..., None]

    # Background: a linear gradient between two nearby colours.
    coords = (np.arange(SIZE) - (SIZE - 1) / 2) / SIZE
    t = np.cos(grad_angle) * coords[None, :] + np.sin(grad_angle) * coords[:, None] + 0.5
    background = bg + (bg2 - bg) * t[..., None]
    img = background * (1.0 - alpha) + fg * alpha

    if blur > 0.05:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(blur, blur, 0.0), mode="nearest")
    img = img + noise * noise_field
    scaled: np.ndarray = np.clip(img, 0.0, 1.0) * 255.0
    return np.round(scaled).astype(np.uint8).transpose(2, 0, 1)


def labels(n: int, seed: int) -> np.ndarray:
    """Labels of the first `n` images: a seeded permutation of 0-9 in every block of ten."""
    blocks = [numpy_rng(seed, "synth-digits-labels", b).permutation(10) for b in range(-(-n // 10))]
    return (np.concatenate(blocks)[:n] if blocks else np.zeros(0)).astype(np.int64)


def render(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render without the cache: x uint8 (n, 3, 32, 32), y int64 (n,)."""
    y = labels(n, seed)
    x = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        x[i] = _render(numpy_rng(seed, NAME, i), int(y[i]))
    return x, y


def _cache_key(n: int, seed: int) -> str:
    import matplotlib
    import PIL
    from PIL import features

    fonts = {name: (font_dir() / name).stat().st_size for name in FONTS}
    key = {
        "name": NAME,
        "version": RENDER_VERSION,
        "n": n,
        "seed": seed,
        "pillow": PIL.__version__,
        "freetype": features.version("freetype2"),
        "matplotlib": matplotlib.__version__,
        "fonts": fonts,
    }
    return sha256_hex(json.dumps(key, sort_keys=True).encode())[:16]


def cache_file(n: int, seed: int) -> Path:
    return cache_dir() / "decoded" / f"{NAME}-{_cache_key(n, seed)}.npz"


def synth_digits(n: int, seed: int, cache: bool = True) -> Dataset:
    """`n` rendered digit images, x float32 (n, 3, 32, 32) in [0, 1], y int64 in 0..9 (balanced), 10 classes.

    Deterministic in (n, seed); image i depends only on (seed, i). Renders about 2,500 images a second on one core;
    with `cache` the uint8 result is kept under `cache_dir() / "decoded"` and loaded on later calls.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise UserError(f"synth_digits: n must be a non-negative integer, got {n!r}")
    n, seed = int(n), int(seed)
    path = cache_file(n, seed) if cache else None
    x = y = None
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                x, y = f["x"], f["y"].astype(np.int64)
            if x.shape != (n, 3, SIZE, SIZE) or y.shape != (n,):
                raise ValueError("cached arrays have the wrong shape")
        except Exception:
            path.unlink(missing_ok=True)
            x = y = None
    if x is None or y is None:
        x, y = render(n, seed)
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, x=x, y=y.astype(np.uint8))
            atomic_write_bytes(path, buf.getvalue())
    meta = {
        "source": f"rendered from matplotlib's fonts ({os.fspath(font_dir())})",
        "fonts": list(FONTS),
        "seed": seed,
        "render_version": RENDER_VERSION,
        "classes": [str(d) for d in range(10)],
    }
    return Dataset(x.astype(np.float32) / np.float32(255.0), y, 10, NAME, meta)
