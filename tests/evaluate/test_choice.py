"""The choice rules' arithmetic and config: what each rule maximises, and bad [choice] tables refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pftlab.core.errors import UserError
from pftlab.data.dataset import ClientData, Dataset
from pftlab.evaluate.choice import ValidationPool, named, objective, others_mean
from pftlab.experiment.config import from_dict


def test_objective_weighs_own_and_others() -> None:
    assert objective("local", 80.0, 40.0, 0.5) == 80.0
    assert objective("cross-site", 80.0, 40.0, 0.5) == 60.0
    assert objective("cross-site", 80.0, 40.0, 0.25) == pytest.approx(70.0)
    assert objective("cross-site", 80.0, 40.0, 0.0) == 80.0  # weight 0: the local rule
    assert objective("cross-site", 80.0, math.nan, 0.5) == 80.0  # nothing scored on the others


def test_others_mean_leaves_out_the_client_and_unpooled_clients() -> None:
    acc = np.array([90.0, 10.0, np.nan, 30.0])
    assert others_mean(acc, 0) == 20.0
    assert others_mean(acc, 1) == 60.0
    assert math.isnan(others_mean(np.array([50.0]), 0))


def test_named() -> None:
    rules = ["local", "cross-site"]
    assert named("ft", "local", rules) == "ft"
    assert named("ft", "cross-site", rules) == "ft@cross-site"
    assert named("ft", "cross-site", ["cross-site", "local"]) == "ft"


def _client(i: int, n_val: int) -> ClientData:
    x = np.full((n_val, 1), float(i), dtype=np.float32)
    y = (np.arange(n_val) % 2).astype(np.int64)
    data = Dataset(x, y, 2)
    return ClientData(i, data, data, data)


def test_validation_pool_is_spread_evenly_and_fixed_by_the_seed() -> None:
    clients = [_client(0, 100), _client(1, 3), _client(2, 100)]
    pool = ValidationPool.of(clients, 60, seed=7)
    assert pool.sizes.tolist() == [20, 3, 20]  # 60 // 3 each, fewer where a client has fewer
    assert pool.owner.tolist() == [0] * 20 + [1] * 3 + [2] * 20
    again = ValidationPool.of(clients, 60, seed=7)
    assert np.array_equal(pool.y.numpy(), again.y.numpy())
    other = ValidationPool.of(clients, 60, seed=8)
    assert not np.array_equal(pool.y.numpy(), other.y.numpy())


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"rules": ["local", "local"]}, "rules must not repeat"),
        ({"rules": ["global"]}, "choice.rules"),
        ({"rules": []}, "choice.rules"),
        ({"weight": 1.5}, "choice.weight"),
        ({"pool_images": 0}, "choice.pool_images"),
    ],
)
def test_bad_choice_tables_are_refused(choice: dict, expected: str) -> None:
    with pytest.raises(UserError) as info:
        from_dict({"choice": choice})
    assert expected in str(info.value) and "\n" not in str(info.value)
