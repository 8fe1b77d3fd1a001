from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.experiment.checkpoint import global_model, stage_stats
from pftlab.experiment.config import Config, FederatedConfig
from pftlab.federated import ALGORITHMS, ClientUpdate, dropped, run_global_stage, server_round
from pftlab.federated.rounds import StageStats


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def train_global(fed: FederatedData, new_model, **kw) -> tuple[dict[str, torch.Tensor], StageStats, list[float]]:
    losses: list[float] = []
    cfg = FederatedConfig(**{"rounds": 3, "lr": 0.05, **kw})
    weights, stats = run_global_stage(new_model(), fed, cfg, seed=0, on_round=lambda r, loss: losses.append(loss))
    return weights, stats, losses


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_learns_and_repeats_bit_exactly(fed, new_model, algorithm: str) -> None:
    w1, stats, losses = train_global(fed, new_model, algorithm=algorithm, rounds=4)
    w2, _, _ = train_global(fed, new_model, algorithm=algorithm, rounds=4)
    assert same(w1, w2)
    assert stats.as_dict() == {
        "rounds": 4,
        "rounds_skipped": 0,
        "updates_rejected": 0,
        "clients_dropped": 0,
        "updates_out_of_scale": 0,
        "updates_clipped": 0,
    }
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_dropout_one_skips_every_round_and_leaves_the_model_unchanged(fed, new_model) -> None:
    init = new_model().state_dict()
    weights, stats, losses = train_global(fed, new_model, dropout=1.0, clients_per_round=2)
    assert same(weights, init)
    assert stats.as_dict() == {
        "rounds": 3,
        "rounds_skipped": 3,
        "updates_rejected": 0,
        "clients_dropped": 6,
        "updates_out_of_scale": 0,
        "updates_clipped": 0,
    }
    assert all(math.isnan(x) for x in losses)


def test_partial_dropout_aggregates_the_survivors_drawn_from_the_seed(fed, new_model) -> None:
    weights, stats, _ = train_global(fed, new_model, dropout=0.5, rounds=6)
    expected = sum(dropped(0, r, c, 0.5) for r in range(6) for c in range(4))
    assert 0 < stats.clients_dropped == expected < 24
    assert stats.rounds_skipped == sum(all(dropped(0, r, c, 0.5) for c in range(4)) for r in range(6))
    assert not same(weights, new_model().state_dict())
    again, _, _ = train_global(fed, new_model, dropout=0.5, rounds=6)
    assert same(weights, again)


def with_nan_client(fed: FederatedData, cid: int) -> FederatedData:
    bad = fed.clients[cid].train
    x = bad.x.copy()
    x[0, 0] = np.nan
    clients = list(fed.clients)
    clients[cid] = ClientData(cid, Dataset(x, bad.y, bad.num_classes), clients[cid].val, clients[cid].test)
    return FederatedData(fed.name, clients, fed.num_classes, fed.input_shape, fed.partition_hash + "-nan")


@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold", "fedadam"])
def test_a_client_returning_nan_is_rejected_and_counted(fed, new_model, algorithm: str) -> None:
    weights, stats, losses = train_global(with_nan_client(fed, 2), new_model, algorithm=algorithm)
    assert stats.updates_rejected == 3 and stats.rounds_skipped == 0
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert all(math.isfinite(x) for x in losses)


def test_server_round_skips_when_every_update_is_rejected() -> None:
    g = {"w": torch.ones(2)}
    bad = ClientUpdate({"w": torch.tensor([1.0, math.inf])}, 5, 0.3)
    nan_loss = ClientUpdate({"w": torch.zeros(2)}, 5, math.nan)
    result = server_round(ALGORITHMS["fedavg"], g, [bad, nan_loss], {}, FederatedConfig(), 2, {"w"})
    assert result.skipped and result.accepted == [False, False] and result.weights is g and math.isnan(result.loss)
    good = ClientUpdate({"w": torch.zeros(2)}, 5, 0.1)
    result = server_round(ALGORITHMS["fedavg"], g, [bad, good], {}, FederatedConfig(), 2, {"w"})
    assert not result.skipped and result.accepted == [False, True] and torch.equal(result.weights["w"], torch.zeros(2))


def test_dropout_draw_depends_only_on_seed_round_and_client() -> None:
    draws = [dropped(3, r, c, 0.3) for r in range(20) for c in range(10)]
    assert draws == [dropped(3, r, c, 0.3) for r in range(20) for c in range(10)]
    assert 0 < sum(draws) < 200
    assert not any(dropped(3, r, c, 0.0) for r in range(5) for c in range(5))
    assert all(dropped(3, r, c, 1.0) for r in range(5) for c in range(5))


def test_the_checkpoint_keeps_the_counts_when_reused(fed, new_model) -> None:
    cfg = Config(federated=FederatedConfig(rounds=4, dropout=0.5, algorithm="fedprox"))
    _, path, reused = global_model(new_model(), fed, cfg)
    counts = stage_stats(path)
    assert not reused and counts["rounds"] == 4 and counts["clients_dropped"] > 0
    _, path2, reused2 = global_model(new_model(), fed, cfg, lambda r, loss: pytest.fail("retrained"))
    assert reused2 and path2 == path and stage_stats(path2) == counts


def test_config_bounds() -> None:
    from pftlab.core.errors import UserError
    from pftlab.experiment.config import from_dict

    for bad in ({"dropout": 1.5}, {"algorithm": "fedsgd"}, {"server_momentum": 1.0}, {"tau": 0.0}, {"prox_mu": -1.0}):
        with pytest.raises(UserError, match="federated"):
            from_dict({"federated": bad})
