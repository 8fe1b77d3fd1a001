"""CIFAR-10-C corruptions (Hendrycks & Dietterich, ICLR 2019): 15 types x 5 severities of input-level covariate shift.

`corrupt(x, name, severity, rng)` applies one corruption to a batch of float32 (N, 3, H, W) images in [0, 1] and
returns the same shape and dtype, in [0, 1], truncated to 8-bit levels as CIFAR-10-C itself (stored as uint8).

Why not a corruption library: the ones that install here (imagecorruptions 1.1.2 does not even run on numpy 2;
imagecorruptions-imaug 1.1.5 and corrupt-tta 0.1.7 do) all implement the ImageNet-C severities, which are set in
pixels of a 224x224 image. On 32x32 CIFAR images those are several times too strong: their severity 1 already
changes an image more than CIFAR-10-C's severity 5 for defocus, pixelate, jpeg, fog and snow (mean absolute
difference 0.053 vs 0.032 for defocus), and their elastic_transform scatters the pixels. So this module implements
the definitions and severity tables of the CIFAR-10-C generator (`make_cifar_c.py` in github hendrycks/robustness)
with numpy, scipy and Pillow only. It is vectorised over the batch and draws every random number from the `rng`
passed in (never the global numpy state), so the result is a function of (x, name, severity, rng state).
Checked against the generator run on 128 CIFAR-10 test images: contrast, pixelate and jpeg_compression give the same
bytes, defocus_blur, zoom_blur and brightness are within one 8-bit level, and the random ones match its mean
absolute difference per severity to within 5%.

Where the generator's actual behaviour is followed:

- glass_blur: its pixel "swap" `x[h, w], x[h', w'] = x[h', w'], x[h, w]` acts on numpy views and so only copies
  `x[h', w']` into `x[h, w]`; with offsets in {-1, 0} every read sees an unmodified pixel, so a pass is one gather.
- motion_blur (and the streaks of snow): ImageMagick's MotionBlurImage, which it called through Wand: a one-sided
  Gaussian kernel of 2*ceil(radius)+1 taps along a random angle, edge pixels repeated.
- elastic_transform: CIFAR-10-C's severity 1 is a pure random affine warp with the largest shift (2.6 px), so the
  change from the clean image decreases with severity for this one corruption.
- frost: a random crop of one of the five frost photos frost1-frost5, shrunk 5x, blended in. The photos are data:
  they are read from `pftlab/data/assets/frost` if vendored there, else from the folder `imagecorruptions/frost`
  of an installed imagecorruptions-imaug (or imagecorruptions) distribution, which is located, never imported,
  and checked against their sha256. Without them frost alone raises a `UserError`; the other 14 need nothing
  beyond numpy, scipy and Pillow.

Cost on one core, per 1,000 32x32 images (severity 1 / 5): zoom_blur 0.16 / 0.47 s, elastic_transform 0.6 / 0.65 s,
motion_blur 0.23 / 0.34 s, snow, shot_noise and jpeg_compression 0.1-0.17 s, glass_blur 0.07 / 0.09 s, the rest
0.02-0.07 s. None is excluded: all 15 run on 32x32 images.

Any H, W of at least 8 is accepted (the severities stay CIFAR's, in pixels); frost needs H, W <= 62, the size of
the smallest shrunk photo.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pftlab.core.errors import UserError

if TYPE_CHECKING:
    from PIL import Image as PILImage

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
CHUNK = 1000  # images corrupted at once

# The frost photos of ImageNet-C / CIFAR-10-C, as shipped in the `imagecorruptions` package folder.
FROST_PACKAGE = "imagecorruptions"
FROST_FILES: dict[str, str] = {
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
}
_FROST_SHRINK = 5  # cv2.resize(fx=0.2, INTER_LINEAR) samples pixels 2, 7, 12, ... exactly

Batch = np.ndarray  # (N, H, W, 3) float64 in [0, 1], channels last inside this module


# ---------------------------------------------------------------- helpers


def _gray(a: Batch) -> np.ndarray:
    """(N, H, W, 1) luma with OpenCV's RGB2GRAY weights."""
    luma: np.ndarray = a @ np.array([0.299, 0.587, 0.114])
    return luma[..., None]


def _to_uint8(a: Batch) -> np.ndarray:
    scaled: np.ndarray = np.clip(a, 0.0, 1.0) * 255.0
    return np.round(scaled).astype(np.uint8)


def _zoom_matrix(n_in: int, factor: float, keep: int) -> np.ndarray:
    """(keep, n_in) linear-interpolation matrix of scipy.ndimage.zoom(order=1) by `factor`, centre `keep` rows."""
    n_out = round(n_in * factor)
    pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos).astype(np.int64), max(n_in - 2, 0))
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1.0 - frac
    if n_in > 1:
        m[np.arange(n_out), lo + 1] += frac
    trim = (n_out - keep) // 2
    return m[trim : trim + keep]


def _clipped_zoom(a: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of every (N, H, W, C) image by `factor` (>= 1) and crop back to H x W, as CIFAR-10-C.

    Equal to scipy.ndimage.zoom(crop, (factor, factor, 1), order=1) then the centre crop, done as two small matrix
    products (order-1 zoom is separable), which is ~50x faster on a batch.
    """
    h, w = a.shape[1:3]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = a[:, top : top + ch, left : left + cw].transpose(0, 3, 1, 2)  # (N, C, ch, cw)
    out: np.ndarray = _zoom_matrix(ch, factor, h) @ crop @ _zoom_matrix(cw, factor, w).T
    return out.transpose(0, 2, 3, 1)


def _motion_blur(a: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick's MotionBlurImage on (N, H, W, C) images, one angle per image, edge pixels repeated."""
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width)
    kernel = np.exp(-(taps**2) / (2.0 * sigma**2))
    kernel /= kernel.sum()
    theta = np.deg2rad(angles_deg)[:, None]
    off_x = np.ceil(taps[None, :] * np.cos(theta) - 0.5).astype(np.int64)  # (N, width)
    off_y = np.ceil(taps[None, :] * np.sin(theta) - 0.5).astype(np.int64)
    n, h, w = a.shape[:3]
    rows, cols, idx = np.arange(h), np.arange(w), np.arange(n)[:, None, None]
    out = np.zeros(a.shape, dtype=np.float64)
    for i in range(width):
        r = np.clip(rows[None, :] + off_y[:, i : i + 1], 0, h - 1)[:, :, None]
        c = np.clip(cols[None, :] + off_x[:, i : i + 1], 0, w - 1)[:, None, :]
        out += kernel[i] * a[idx, r, c]
    return out


def _plasma_fractal(n: int, mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """n diamond-square height maps (n, mapsize, mapsize) in [0, 1], as CIFAR-10-C's fog."""
    maps = np.zeros((n, mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def wibbled_mean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        square = corners + np.roll(corners, -1, axis=1)
        square += np.roll(square, -1, axis=2)
        maps[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(square)
        dr = maps[:, half:mapsize:step, half:mapsize:step]
        ul = maps[:, 0:mapsize:step, 0:mapsize:step]
        lt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=2)
        maps[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(lt)
        tt = dr + np.roll(dr, 1, axis=2) + ul + np.roll(ul, -1, axis=1)
        maps[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    normalised: np.ndarray = maps / maps.max(axis=(1, 2), keepdims=True)
    return normalised


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """CIFAR-10-C's defocus kernel: a normalised disk, smoothed by a 3x3 Gaussian, cropped to its support."""
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * alias_blur**2))
    g /= g.sum()
    disk = ndimage.correlate1d(ndimage.correlate1d(disk, g, axis=0, mode="mirror"), g, axis=1, mode="mirror")
    rows, cols = np.nonzero(disk)
    cropped: np.ndarray = disk[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return cropped


def _per_image_pil(a: Batch, fn: Callable[[PILImage.Image], PILImage.Image]) -> Batch:
    from PIL import Image

    u8 = _to_uint8(a)
    out = np.empty_like(u8)
    for i in range(len(u8)):
        out[i] = np.asarray(fn(Image.fromarray(u8[i])).convert("RGB"))
    return out.astype(np.float64) / 255.0


def frost_dir() -> Path | None:
    """The folder that holds the five frost photos, or None.

    Looked for first in pftlab's own package data (`pftlab/data/assets/frost`, should the photos be vendored), then
    in the installed `imagecorruptions` package, which is located without being imported.
    """
    candidates = [Path(__file__).parent / "assets" / "frost"]
    try:
        spec = importlib.util.find_spec(FROST_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / "frost" for location in spec.submodule_search_locations]
    for folder in candidates:
        if all((folder / name).is_file() for name in FROST_FILES):
            return folder
    return None


@lru_cache(maxsize=1)
def _frost_textures() -> tuple[np.ndarray, ...]:
    """The five frost photos, RGB float64 in [0, 1], shrunk 5x the way CIFAR-10-C did (cv2 INTER_LINEAR, fx=0.2)."""
    import hashlib

    from PIL import Image

    folder = frost_dir()
    if folder is None:
        raise UserError(
            "corruption frost needs the frost photos that ship in the imagecorruptions-imaug package "
            f"(folder {FROST_PACKAGE}/frost); install it with: pip install imagecorruptions-imaug"
        )
    textures = []
    for name, expected in FROST_FILES.items():
        data = (folder / name).read_bytes()
        got = hashlib.sha256(data).hexdigest()
        if got != expected:
            raise UserError(f"frost photo {folder / name} has sha256 {got}, expected {expected}; reinstall the package")
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        s = _FROST_SHRINK
        textures.append(arr[s // 2 :: s, s // 2 :: s])
    return tuple(textures)


# ---------------------------------------------------------------- the corruptions (severity tables of CIFAR-10-C)


def gaussian_noise(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    c = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    return a + rng.normal(size=a.shape, scale=c)


def shot_noise(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    c = [500, 250, 100, 75, 50][severity - 1]
    return rng.poisson(a * c) / c


def impulse_noise(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    c = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    flipped = rng.random(a.shape) <= c
    salted = rng.random(a.shape) <= 0.5
    out = a.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return out


def defocus_blur(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    kernel = _disk(radius, alias)
    blurred: np.ndarray = ndimage.correlate(a, kernel[None, :, :, None], mode="mirror")
    return blurred


def glass_blur(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    # (sigma, max_delta, iterations); max_delta is 1 at every severity, which the gather below relies on.
    sigma, _, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    n, h, w = a.shape[:3]
    blurred = ndimage.gaussian_filter(a, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)
    x = np.floor(np.clip(blurred, 0.0, 1.0) * 255.0)  # the generator's np.uint8(... * 255)
    rows, cols = np.arange(2, h), np.arange(2, w)  # CIFAR-10-C: range(32 - 1, 1, -1)
    idx = np.arange(n)[:, None, None]
    for _ in range(iterations):
        dy = rng.integers(-1, 1, size=(n, len(rows), len(cols)))  # offsets in {-1, 0}
        dx = rng.integers(-1, 1, size=(n, len(rows), len(cols)))
        src = x[idx, rows[None, :, None] + dy, cols[None, None, :] + dx]
        x = x.copy()
        x[:, 2:, 2:] = src
    out: np.ndarray = ndimage.gaussian_filter(x / 255.0, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)
    return out


def motion_blur(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angles = rng.uniform(-45, 45, size=len(a))
    return _motion_blur(_to_uint8(a) / 255.0, radius, sigma, angles)


def zoom_blur(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    factors = [
        np.arange(1, 1.06, 0.01),
        np.arange(1, 1.11, 0.01),
        np.arange(1, 1.16, 0.01),
        np.arange(1, 1.21, 0.01),
        np.arange(1, 1.26, 0.01),
    ][severity - 1]
    out = a.copy()
    for factor in factors:
        out += _clipped_zoom(a, float(factor))
    return out / (len(factors) + 1)


def snow(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ][severity - 1]
    n, h, w = a.shape[:3]
    layer = rng.normal(size=(n, h, w, 1), loc=loc, scale=scale)
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0  # the generator's 8-bit PNG of the layer
    layer = _motion_blur(layer, radius, sigma, rng.uniform(-135, -45, size=int(n)))
    layer = np.round(layer * 255.0) / 255.0
    a = a.astype(np.float32).astype(np.float64)
    a = keep * a + (1 - keep) * np.maximum(a, _gray(a) * 1.5 + 0.5)
    return a + layer + np.rot90(layer, k=2, axes=(1, 2))


def frost(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    keep, amount = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    textures = _frost_textures()
    n, h, w = a.shape[:3]
    limit_h = min(t.shape[0] for t in textures)
    limit_w = min(t.shape[1] for t in textures)
    if h >= limit_h or w >= limit_w:
        raise UserError(f"corruption frost needs images smaller than {limit_h}x{limit_w}, got {h}x{w}")
    which = rng.integers(len(textures), size=int(n))
    starts_y = rng.integers(0, np.array([textures[k].shape[0] - h for k in which]))
    starts_x = rng.integers(0, np.array([textures[k].shape[1] - w for k in which]))
    crops = np.stack([textures[k][y : y + h, x : x + w] for k, y, x in zip(which, starts_y, starts_x, strict=True)])
    out: np.ndarray = keep * a + amount * crops
    return out


def fog(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    amount, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    n, h, w = a.shape[:3]
    mapsize = max(32, 1 << (max(h, w) - 1).bit_length())
    max_val = a.max(axis=(1, 2, 3), keepdims=True)
    out = a + amount * _plasma_fractal(n, mapsize, decay, rng)[:, :h, :w, None]
    fogged: np.ndarray = out * max_val / (max_val + amount)
    return fogged


def brightness(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    # HSV value + c, back to RGB: RGB is linear in V at fixed hue and saturation, so scale by V'/V.
    c = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    v = a.max(axis=3, keepdims=True)
    v_new = np.minimum(v + c, 1.0)
    brightened: np.ndarray = np.where(v > 0, a * (v_new / np.where(v > 0, v, 1.0)), v_new)
    return brightened


def contrast(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    c = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    means = a.mean(axis=(1, 2), keepdims=True)
    out: np.ndarray = (a - means) * c + means
    return out


def elastic_transform(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    alpha, sigma, affine = (
        32 * np.array([(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)])
    )[severity - 1]
    n, h, w = a.shape[:3]
    a = a.astype(np.float32).astype(np.float64)
    # Random affine: three points around the centre, each moved by up to `affine` pixels (cv2.warpAffine, reflect101).
    centre, half = np.array([h // 2, w // 2], dtype=np.float64)[::-1], min(h, w) // 3  # (x, y)
    src = np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    dst = src[None] + rng.uniform(-affine, affine, size=(n, 3, 2))
    dst_h = np.concatenate([dst, np.ones((n, 3, 1))], axis=2)
    inverse = np.linalg.solve(dst_h, np.broadcast_to(src, (n, 3, 2)))  # (n, 3, 2): affine map dst -> src
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    grid = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # (h, w, 3)
    src_xy = np.einsum("hwk,nkj->nhwj", grid, inverse)
    a = _sample(a, src_xy[..., 1], src_xy[..., 0], mode="mirror")
    # Elastic displacement: smoothed uniform noise scaled by alpha.
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), (0, sigma, sigma), mode="reflect", truncate=3)
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), (0, sigma, sigma), mode="reflect", truncate=3)
    dx, dy = (dx * alpha).astype(np.float32), (dy * alpha).astype(np.float32)
    return _sample(a, ys[None] + dy, xs[None] + dx, mode="reflect")


def _sample(a: Batch, rows: np.ndarray, cols: np.ndarray, mode: str) -> Batch:
    """Bilinear sample of every channel of image n at (rows[n], cols[n])."""
    n, h, w, c = a.shape
    nn = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None, None], (n, h, w, c))
    rr = np.broadcast_to(rows[..., None], (n, h, w, c))
    cc = np.broadcast_to(cols[..., None], (n, h, w, c))
    ch = np.broadcast_to(np.arange(c, dtype=np.float64), (n, h, w, c))
    sampled: np.ndarray = ndimage.map_coordinates(a, [nn, rr, cc, ch], order=1, mode=mode)
    return sampled


def pixelate(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    from PIL import Image

    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    h, w = a.shape[1:3]

    def fn(im: PILImage.Image) -> PILImage.Image:
        return im.resize((int(w * c), int(h * c)), Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)

    return _per_image_pil(a, fn)


def jpeg_compression(a: Batch, severity: int, rng: np.random.Generator) -> Batch:
    from PIL import Image

    quality = [80, 65, 58, 50, 40][severity - 1]

    def fn(im: PILImage.Image) -> PILImage.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf)

    return _per_image_pil(a, fn)


_FUNCTIONS: dict[str, Callable[[Batch, int, np.random.Generator], Batch]] = {
    name: globals()[name] for name in CORRUPTIONS
}


def corrupt(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Corruption `name` at `severity` (1-5) of float32 images (N, 3, H, W) in [0, 1]; same shape, float32 in [0, 1].

    Deterministic given the state of `rng` (which it advances). The output is truncated to 8-bit levels. Images are
    processed in chunks of CHUNK, so memory stays bounded and the first CHUNK results do not depend on N.
    """
    if name not in _FUNCTIONS:
        raise UserError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or int(severity) not in SEVERITIES:
        raise UserError(f"corruption severity must be one of 1, 2, 3, 4, 5, got {severity!r}")
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] < 8 or x.shape[3] < 8:
        raise UserError(f"corrupt expects images of shape (N, 3, H, W) with H, W >= 8, got {x.shape}")
    result = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        a = np.clip(x[start : start + CHUNK].astype(np.float64).transpose(0, 2, 3, 1), 0.0, 1.0)
        out = _FUNCTIONS[name](a, int(severity), rng)
        # Truncate to 8 bits as the generator's np.uint8(...) did (the epsilon keeps exact levels from float drift).
        out = np.floor(np.clip(out, 0.0, 1.0) * 255.0 + 1e-6) / 255.0
        result[start : start + CHUNK] = out.transpose(0, 3, 1, 2)
    return result
