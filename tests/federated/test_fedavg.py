from __future__ import annotations

import numpy as np
import pytest
import torch

from pftlab.core.weights import weighted_average
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import Config, DataConfig, FederatedConfig
from pftlab.federated.sampling import participation_schedule
from pftlab.models import build_model


def test_weighted_average_is_sample_weighted() -> None:
    a = {"w": torch.tensor([0.0, 2.0]), "steps": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 2.0]), "steps": torch.tensor(5)}
    avg = weighted_average([a, b], [1, 3])
    assert torch.allclose(avg["w"], torch.tensor([3.0, 2.0]))
    assert avg["steps"].item() == 3


def test_schedule_is_drawn_from_the_seed() -> None:
    s1 = participation_schedule(20, 5, 10, seed=1)
    assert all(len(r) == 5 and len(set(r.tolist())) == 5 for r in s1)
    assert [r.tolist() for r in s1] == [r.tolist() for r in participation_schedule(20, 5, 10, seed=1)]
    assert [r.tolist() for r in s1] != [r.tolist() for r in participation_schedule(20, 5, 10, seed=2)]
    full = participation_schedule(20, 0, 3, seed=1)
    assert all(np.array_equal(r, np.arange(20)) for r in full)


@pytest.fixture(scope="module")
def fed():
    return build_federation(DataConfig(num_clients=4), seed=0)


def test_fedavg_learns_and_the_checkpoint_is_reused(fed) -> None:
    cfg = Config(data=DataConfig(num_clients=4), federated=FederatedConfig(rounds=5, clients_per_round=2))
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    losses: list[float] = []
    weights, path, reused = global_model(model, fed, cfg, lambda r, loss: losses.append(loss))
    assert not reused and path.is_file() and len(losses) == 5
    assert losses[-1] < losses[0]
    assert any(not torch.equal(init[k], weights[k]) for k in init)

    again = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights2, path2, reused2 = global_model(again, fed, cfg, lambda r, loss: pytest.fail("retrained"))
    assert reused2 and path2 == path
    assert all(torch.equal(weights[k], weights2[k]) for k in weights)
    assert all(torch.equal(again.state_dict()[k], weights[k]) for k in weights)


def test_a_different_config_or_a_corrupt_cache_retrains(fed) -> None:
    cfg = Config(data=DataConfig(num_clients=4), federated=FederatedConfig(rounds=2))
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    _, path, _ = global_model(model, fed, cfg)
    other = cfg.model_copy(update={"federated": FederatedConfig(rounds=2, lr=0.01)})
    _, path_other, reused = global_model(model, fed, other)
    assert path_other != path and not reused
    path.write_bytes(path.read_bytes()[:100])  # truncated
    weights, _, reused = global_model(build_model(cfg.model, fed.input_shape, 10, 0), fed, cfg)
    assert not reused and len(weights) == len(model.state_dict())
