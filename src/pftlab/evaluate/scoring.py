"""How a run scores its models: on the whole pooled test set (full) or on a fixed sample of it.

`Scoring` is made once per run (the pool, the global model's features on it, the sample of
sampled mode) and scores one personalized model at a time into a JSON-able row (what a sealed
chunk holds) and its feature distortion; `fill` turns rows into one method's scores: the N x N
hit matrix (full) or `SampledScores` (sampled: nothing of size N x N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pftlab.core.compute import on_device
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.distortion import distortion, no_distortion
from pftlab.evaluate.matrix import EvalPool, correct_row_from_features, pool_features
from pftlab.evaluate.sampled import Sample, SampledScores, draw_sample, pack_bits
from pftlab.models import head_module
from pftlab.models.heads import features

FAILED = -1  # a failed client's matrix row: its model does not exist, its metrics are left out
Scores = np.ndarray | SampledScores


def domain_numbers(fed: FederatedData) -> np.ndarray:
    """A number per client for its domain (clients without a named domain share one)."""
    _, numbers = np.unique([c.domain for c in fed.clients], return_inverse=True)
    return numbers.astype(np.int64)


@dataclass
class Scoring:
    """The pool, the global model's features on all of it, and the sample (None: the full matrix)."""

    pool: EvalPool
    global_features: torch.Tensor
    sample: Sample | None
    head: str = "head"

    @classmethod
    def make(
        cls, fed: FederatedData, model: nn.Module, head: str, mode: str, images: int, clients: int, seed: int
    ) -> Scoring:
        """`model` holds the global weights. Sampled mode draws the seed's sample (images, clients),
        choosing worst's screened clients by the global model's accuracy on each client's test set:
        a choice of where to look, the same for every method; no method's training sees it."""
        pool = EvalPool.of(fed)
        global_features = pool_features(model, pool, head)
        sample = None
        if mode == "sampled":  # worst's clients: half where the global model does worst, half a random audit
            hits = correct_row_from_features(head_module(model, head), pool, global_features)
            with np.errstate(invalid="ignore", divide="ignore"):
                hardness = np.nan_to_num(hits / pool.sizes, nan=1.0)
            sample = draw_sample(pool.sizes, domain_numbers(fed), images, clients, seed, hardness)
        return cls(pool, global_features, sample, head)

    def __post_init__(self) -> None:
        if self.sample is None:
            return
        s = self.sample
        offsets = self._offsets = s.offsets  # computed once: every row needs its client's start
        whole = [np.arange(offsets[j], offsets[j] + s.sizes[j]) for j in s.clients]
        self._shared = on_device(torch.from_numpy(np.concatenate([s.images, *whole]).astype(np.int64)))
        positions = np.repeat(np.arange(len(s.clients)), s.sizes[s.clients]).astype(np.int64)
        self._client_pos = on_device(torch.from_numpy(positions))
        self._owner = on_device(torch.from_numpy(s.owner))

    @property
    def num_clients(self) -> int:
        return len(self.pool.sizes)

    def row(self, model: nn.Module, weights: Any, frozen: bool, client: int) -> tuple[Any, dict[str, float]]:
        """One personalized model's row (JSON-able) and its feature distortion."""
        model.load_state_dict(weights)
        head_net = head_module(model, self.head)
        if self.sample is None:
            if frozen:
                return correct_row_from_features(head_net, self.pool, self.global_features).tolist(), no_distortion()
            feats = pool_features(model, self.pool, self.head)
            row = correct_row_from_features(head_net, self.pool, feats)
            return row.tolist(), distortion(feats, self.global_features, self.pool.owner, client)
        return self._sampled_row(model, head_net, frozen, client)

    @torch.no_grad()
    def _sampled_row(
        self, model: nn.Module, head_net: nn.Module, frozen: bool, client: int
    ) -> tuple[Any, dict[str, float]]:
        s = self.sample
        assert s is not None
        start = int(self._offsets[client])
        device = self._shared.device
        own = torch.arange(start, start + int(s.sizes[client]), device=device)
        index = torch.cat([own, self._shared])
        glob = self.global_features[index]
        feats = glob if frozen else features(model, self.head, self.pool.x[index])
        head_net.eval()
        hits = (head_net(feats).argmax(1) == self.pool.y[index]).to(torch.int64)
        n_own, m = len(own), len(s.images)
        payload = {
            "local": int(hits[:n_own].sum()),
            "sample": pack_bits(hits[n_own : n_own + m].cpu().numpy()),
            "clients": torch.zeros(len(s.clients), dtype=torch.int64, device=device)
            .index_add_(0, self._client_pos, hits[n_own + m :])
            .tolist(),
        }
        if frozen:
            return payload, no_distortion()
        # distortion: own test set exactly, others on the sampled images of other clients
        rest = len(index) - n_own - m
        owner = torch.cat(
            [torch.full((n_own,), client, device=device), self._owner, torch.full((rest,), -1, device=device)]
        )
        keep = torch.cat(
            [torch.ones(n_own + m, dtype=torch.bool, device=device), torch.zeros(rest, dtype=torch.bool, device=device)]
        )
        keep &= (owner != client) | (torch.arange(len(index), device=device) < n_own)
        return payload, distortion(feats[keep], glob[keep], owner[keep], client)

    @torch.no_grad()
    def global_row(self, model: nn.Module) -> Scores:
        """The global model's scores as every client's row (`model` holds the global weights)."""
        head_net = head_module(model, self.head)
        n = self.num_clients
        row = correct_row_from_features(head_net, self.pool, self.global_features)  # hits per client
        if self.sample is None:
            return np.tile(row, (n, 1))
        scores = SampledScores.empty(n, len(self.sample.images), len(self.sample.clients))
        image = self.sample.images
        hits = (head_net(self.global_features[image]).argmax(1) == self.pool.y[image]).to(torch.uint8).cpu().numpy()
        scores.local_hits[:] = row  # client i's own test set
        scores.sample_hits[:] = hits[None, :]
        scores.client_hits[:] = row[self.sample.clients][None, :]
        scores.ok[:] = True
        return scores

    def empty(self) -> Scores:
        n = self.num_clients
        if self.sample is None:
            return np.full((n, n), FAILED, dtype=np.int64)
        return SampledScores.empty(n, len(self.sample.images), len(self.sample.clients))

    def failed_row(self) -> Any:
        return [FAILED] * self.num_clients if self.sample is None else None

    def fill(self, scores: Scores, i: int, row: Any) -> None:
        """Put a chunk's row for client i into the method's scores."""
        if isinstance(scores, SampledScores):
            scores.set_row(i, row)
        else:
            scores[i] = row


__all__ = ["FAILED", "Scores", "Scoring", "domain_numbers"]
