"""Optional per-channel normalization and train-time augmentation of image benchmarks (off by default).

Normalization (`data.normalize = true`) subtracts each channel's mean and divides by its std,
both over the federation's pooled training splits (what one round of FedAvg-style averaging of
client statistics gives), from every split; the values are recorded with the federation.

Augmentation (`data.augment`): a random crop after zero padding by `data.crop_padding` pixels
and/or a horizontal flip with probability 1/2 (flip only where mirrored inputs are still the
same class: natural images, not digits or text). It is applied to training batches only, inside
the training loop, with random numbers drawn from (seed, purpose, client, epoch): every method
that shares a data order sees the same augmented images. Head-only phases (linear probing)
train on features of the un-augmented images, computed once, as without augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pftlab.core.errors import UserError
from pftlab.data.dataset import ClientData, Dataset, FederatedData

AUGMENT_KEY = "augment"  # where a training split carries its Augment in Dataset.meta


@dataclass(frozen=True)
class Augment:
    crop: bool
    flip: bool
    padding: int

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """A batch (B, C, H, W) augmented: per sample a crop offset in [0, 2 * padding]^2 and a coin for the flip."""
        b, _, h, w = x.shape
        if self.crop and self.padding:
            p = self.padding
            padded = F.pad(x, (p, p, p, p))
            dy, dx = (torch.from_numpy(rng.integers(0, 2 * p + 1, size=b)) for _ in range(2))
            rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (B, 1, H, 1)
            cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (B, 1, 1, W)
            batch = torch.arange(b)[:, None, None, None]
            channel = torch.arange(x.shape[1])[None, :, None, None]
            x = padded[batch, channel, rows, cols]
        if self.flip:
            flipped = torch.from_numpy(rng.random(b) < 0.5)
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        return x


def augment_of(kind: str, padding: int) -> Augment | None:
    if kind == "none":
        return None
    return Augment(crop="crop" in kind, flip="flip" in kind, padding=padding)


def training_augment(data: Dataset) -> Augment | None:
    found = data.meta.get(AUGMENT_KEY)
    return found if isinstance(found, Augment) else None


def channel_stats(fed: FederatedData) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the pooled training images, in float64."""
    total, sum1, sum2 = 0, 0.0, 0.0
    for c in fed.clients:
        x = c.train.x.astype(np.float64)
        axes = (0, *range(2, x.ndim))
        total += x.size // x.shape[1]
        sum1 = sum1 + x.sum(axis=axes)
        sum2 = sum2 + (x * x).sum(axis=axes)
    mean = np.asarray(sum1) / total
    std = np.sqrt(np.maximum(np.asarray(sum2) / total - mean**2, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def prepare(fed: FederatedData, normalize: bool, augment: Augment | None) -> FederatedData:
    """The federation with its images normalized and its training splits marked for augmentation, if asked."""
    if not normalize and augment is None:
        return fed
    if len(fed.input_shape) != 3:
        key = "data.normalize" if normalize else "data.augment"
        raise UserError(f"{key} applies to images (C, H, W); benchmark {fed.name!r} has inputs {fed.input_shape}")
    shape = (1, -1, 1, 1)
    mean, std = channel_stats(fed) if normalize else (np.zeros(1), np.ones(1))

    def norm(d: Dataset, train: bool) -> Dataset:
        x = ((d.x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32) if normalize else d.x
        meta = dict(d.meta)
        if normalize:
            meta["normalization"] = {"mean": mean.tolist(), "std": std.tolist()}
        if train and augment is not None:
            meta[AUGMENT_KEY] = augment
        return Dataset(x, d.y, d.num_classes, d.name, meta)

    clients = [
        ClientData(c.client_id, norm(c.train, True), norm(c.val, False), norm(c.test, False), c.domain)
        for c in fed.clients
    ]
    return FederatedData(
        fed.name, clients, fed.num_classes, fed.input_shape, fed.partition_hash, fed.partition, fed.description
    )
