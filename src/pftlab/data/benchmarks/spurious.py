"""Concept shift through a spurious attribute on a real dataset: what `celeba` and `chexpert` share.

A pool of samples has a binary label y and a binary attribute a (each 0 or 1). Client c gets
`samples_per_client` = n samples, labels balanced (n // 2 with y = 1), and exactly
round(rho_c * n) of them with a = y, where rho_c = correlations[c % len]: as colored-mnist does
with colour (its `exact_share` places the agreements), so the attribute is a shortcut whose
strength is a client property (0.9 strong, 0.5 uninformative, 0.1 reversed). The four
(label, attribute) groups are each shuffled once from the whole pool and dealt to the clients in
turn, so clients are disjoint and every choice derives from the seed. Only the chosen images are
decoded (`decode_square`: centre crop to a square, then resize), after every check has passed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.colored_mnist import exact_share
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool


class SpuriousParams(Strict):
    """The keys both spurious-correlation benchmarks share."""

    num_clients: int = Field(10, ge=2, le=1000)
    samples_per_client: int = Field(1_000, ge=20, le=100_000)
    correlations: list[float] = Field(
        default=[0.9, 0.8, 0.9, 0.8, 0.1],
        min_length=1,
        max_length=1000,
        description="share of a client's samples whose attribute agrees with the label, cycled over clients",
    )
    image_size: int = Field(32, ge=4, le=512, description="images are centre-cropped to a square, then resized")

    @field_validator("correlations")
    @classmethod
    def _in_unit_interval(cls, values: list[float]) -> list[float]:
        if any(not 0 <= c <= 1 for c in values):
            raise ValueError("each correlation must lie in [0, 1]")
        return values

    def rho(self, client: int) -> float:
        return self.correlations[client % len(self.correlations)]


def deal(
    y: np.ndarray, a: np.ndarray, p: SpuriousParams, seed: int, labels: Sequence[str], attribute: Sequence[str]
) -> list[np.ndarray]:
    """Each client's sorted indices into the pool (y, a); refuses in one line a request the pool cannot fill.

    `labels` and `attribute` name the values 0 and 1 of y and a, for that message.
    """
    n = p.samples_per_client
    groups = [np.flatnonzero((y == label) & (a == value)) for label in (0, 1) for value in (0, 1)]
    counts = []
    for c in range(p.num_clients):
        rng = numpy_rng(seed, "spurious", c)
        yc = rng.permutation(np.arange(n) < n // 2).astype(np.int64)
        ac = np.where(exact_share(n, p.rho(c), rng), yc, 1 - yc)
        counts.append(np.bincount(2 * yc + ac, minlength=4))
    need = np.sum(counts, axis=0)
    for g, (want, have) in enumerate(zip(need, groups, strict=True)):
        if want > len(have):
            raise UserError(
                f"the clients need {want:,} samples with {labels[g // 2]} and {attribute[g % 2]}, "
                f"but the data has {len(have):,}: lower data.samples_per_client ({n}) or data.num_clients "
                f"({p.num_clients}), or choose data.correlations that need fewer of them"
            )
    shuffled = [numpy_rng(seed, "spurious-pool", g).permutation(have) for g, have in enumerate(groups)]
    taken = np.zeros(4, dtype=np.int64)
    out = []
    for wants in counts:
        out.append(np.sort(np.concatenate([shuffled[g][taken[g] : taken[g] + wants[g]] for g in range(4)])))
        taken += wants
    return out


def decode_square(data: bytes, size: int, mode: Literal["RGB", "L"]) -> np.ndarray:
    """One encoded image as uint8 (C, size, size): centre-cropped to a square, then resized (bilinear).

    A JPEG is decoded at the smallest DCT scale that still leaves both sides >= size (Pillow's
    draft mode), which makes decoding a large photo to 32 px several times faster. Raises
    ValueError or OSError (Pillow's) for bytes that are not an image.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.draft(mode, (size, size))
        im = opened.convert(mode)
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return arr.transpose(2, 0, 1) if mode == "RGB" else arr[None]


def client_pools(
    name: str, x: np.ndarray, y: np.ndarray, a: np.ndarray, source: np.ndarray, sizes: np.ndarray, p: SpuriousParams
) -> list[ClientPool]:
    """The clients, from their samples laid end to end: uint8 images `x`, labels, attributes, source rows, sizes."""
    out = []
    ends = np.cumsum(sizes)
    for c, (start, end) in enumerate(zip(ends - sizes, ends, strict=True)):
        rho = p.rho(c)
        part = slice(int(start), int(end))
        meta = {"spurious": a[part], "correlation": rho}
        data = Dataset(x[part].astype(np.float32) / 255.0, y[part], 2, name, meta)
        out.append(ClientPool(data, f"rho={rho:g}", source[part]))
    return out


def refuse_image(what: str, err: Exception) -> UserError:
    """The one-line error for an image that cannot be decoded."""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return UserError(f"cannot decode image {what}: {reason}; replace it with the original")
