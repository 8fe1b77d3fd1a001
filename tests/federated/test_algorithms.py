"""Each global-stage algorithm's defining property, on the tiny federation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pftlab.data.dataset import Dataset
from pftlab.experiment.config import FederatedConfig
from pftlab.federated import ALGORITHMS, ClientUpdate, fedadam, fedavgm, run_global_stage, scaffold


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run(fed, new_model, **kw) -> dict[str, torch.Tensor]:
    weights, _ = run_global_stage(new_model(), fed, FederatedConfig(**{"rounds": 3, **kw}), seed=0)
    return weights


def test_fedprox_with_mu_zero_is_fedavg_bit_exactly(fed, new_model) -> None:
    assert same(run(fed, new_model, algorithm="fedprox", prox_mu=0.0), run(fed, new_model, algorithm="fedavg"))
    assert not same(run(fed, new_model, algorithm="fedprox", prox_mu=1.0), run(fed, new_model, algorithm="fedavg"))


def test_fedprox_keeps_local_models_closer_to_the_global_one(fed, new_model) -> None:
    model = new_model()
    g = {k: v.clone() for k, v in model.state_dict().items()}
    moved = {}
    for name, mu in (("fedavg", 0.0), ("fedprox", 5.0)):
        cfg = FederatedConfig(algorithm=name, prox_mu=mu, local_epochs=3)
        update = ALGORITHMS[name].local_update(model, g, {}, fed.clients[0].train, cfg, 0, 0, 0, {})
        moved[name] = sum(float((update.weights[k] - g[k]).norm() ** 2) for k in g)
    assert moved["fedprox"] < moved["fedavg"]


def test_fedavgm_without_momentum_at_server_lr_one_is_fedavg(fed, new_model) -> None:
    m = run(fed, new_model, algorithm="fedavgm", server_momentum=0.0, server_lr=1.0)
    a = run(fed, new_model, algorithm="fedavg")
    assert all(torch.allclose(m[k], a[k], rtol=0, atol=1e-6) for k in a)
    assert not same(run(fed, new_model, algorithm="fedavgm"), a)


def test_fedavgm_momentum_accumulates_the_pseudo_gradient() -> None:
    cfg = FederatedConfig(algorithm="fedavgm", server_momentum=0.5, server_lr=0.1)
    g = {"w": torch.tensor([1.0, 2.0])}
    w1, s1 = fedavgm.server_update(g, [ClientUpdate({"w": torch.tensor([0.0, 2.0])}, 1, 0.0)], {}, cfg, 2, {"w"})
    assert torch.allclose(s1["momentum/w"], torch.tensor([1.0, 0.0]))
    assert torch.allclose(w1["w"], torch.tensor([0.9, 2.0]))
    w2, s2 = fedavgm.server_update(w1, [ClientUpdate({"w": torch.tensor([0.9, 1.0])}, 1, 0.0)], s1, cfg, 2, {"w"})
    assert torch.allclose(s2["momentum/w"], torch.tensor([0.5, 1.0]))
    assert torch.allclose(w2["w"], torch.tensor([0.85, 1.9]))


def test_fedadam_one_step_by_hand() -> None:
    cfg = FederatedConfig(algorithm="fedadam", server_lr=0.1, beta1=0.9, beta2=0.99, tau=0.01)
    g = {"w": torch.tensor([1.0, -1.0]), "buf": torch.tensor([0.0]), "steps": torch.tensor(7)}
    updates = [
        ClientUpdate({"w": torch.tensor([2.0, -1.0]), "buf": torch.tensor([1.0]), "steps": torch.tensor(8)}, 1, 0.0),
        ClientUpdate({"w": torch.tensor([0.0, 1.0]), "buf": torch.tensor([4.0]), "steps": torch.tensor(8)}, 3, 0.0),
    ]
    out, state = fedadam.server_update(g, updates, {}, cfg, 2, {"w"})
    d = np.array([0.25 * 2 + 0.75 * 0 - 1, 0.25 * -1 + 0.75 * 1 + 1])  # mean - w = [-0.5, 1.5]
    m, v = 0.1 * d, 0.01 * d**2
    expected = np.array([1.0, -1.0]) + 0.1 * m / (np.sqrt(v) + 0.01)
    assert np.allclose(out["w"].numpy(), expected, atol=1e-6)
    assert np.allclose(state["m/w"].numpy(), m) and np.allclose(state["v/w"].numpy(), v)
    assert torch.allclose(out["buf"], torch.tensor([3.25]))  # buffers are averaged, not stepped
    assert out["steps"].item() == 8


def test_scaffold_round_zero_is_fedavg_and_later_rounds_differ(fed, new_model) -> None:
    assert same(run(fed, new_model, algorithm="scaffold", rounds=1), run(fed, new_model, algorithm="fedavg", rounds=1))
    assert not same(run(fed, new_model, algorithm="scaffold"), run(fed, new_model, algorithm="fedavg"))


def test_scaffold_control_variates_follow_the_paper(fed, new_model) -> None:
    model = new_model()
    g = {k: v.clone() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    c = {n: 0.1 * torch.randn(g[n].shape, generator=gen) for n in names}
    c_i = {n: 0.1 * torch.randn(g[n].shape, generator=gen) for n in names}
    data = fed.clients[1].train
    cfg = FederatedConfig(algorithm="scaffold", lr=0.05, local_epochs=2, batch_size=16)
    update = scaffold.local_update(model, g, c, data, cfg, 0, 0, 1, c_i)
    steps = 2 * math.ceil(len(data) / 16)
    effective = sum((1 - 0.9**m) / (1 - 0.9) for m in range(1, steps + 1))  # momentum 0.9 (the default)
    assert scaffold.effective_steps(len(data), cfg) == pytest.approx(effective)
    assert scaffold.effective_steps(len(data), cfg.model_copy(update={"momentum": 0.0})) == steps
    for n in names:
        c_new = c_i[n] - c[n] + (g[n] - update.weights[n]) / (effective * 0.05)
        assert torch.allclose(update.client_state[n], c_new, atol=1e-6)
        assert torch.allclose(update.extra[n], c_new - c_i[n], atol=1e-6)
    # the server: c <- c + sum(delta c_i) / N over the N clients of the federation
    state = {f"c/{n}": c[n] for n in names}
    _, new_state = scaffold.server_update(g, [update, update], state, cfg, 4, set(names))
    for n in names:
        assert torch.allclose(new_state[f"c/{n}"], c[n] + 2 * update.extra[n] / 4)
    assert same(scaffold.payload(new_state), {n: new_state[f"c/{n}"] for n in names})


def test_scaffold_adds_c_minus_c_i_to_every_gradient(new_model) -> None:
    """One full-batch plain-SGD step: the corrected step differs from FedAvg's by -lr (c - c_i)."""
    rng = np.random.default_rng(0)
    data = Dataset(rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, 8), 3)
    model = new_model()
    g = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = FederatedConfig(algorithm="scaffold", lr=0.1, momentum=0.0, batch_size=8)
    c = {n: torch.full_like(p, 0.5) for n, p in model.named_parameters()}
    plain = ALGORITHMS["fedavg"].local_update(model, g, {}, data, cfg, 0, 0, 0, {}).weights
    corrected = scaffold.local_update(model, g, c, data, cfg, 0, 0, 0, {}).weights
    for n in c:
        assert torch.allclose(corrected[n] - plain[n], torch.full_like(c[n], -0.05), atol=1e-6)


def test_fedbabu_leaves_the_head_bit_identical_and_trains_the_body(fed, new_model) -> None:
    init = new_model().state_dict()
    weights = run(fed, new_model, algorithm="fedbabu", clients_per_round=2)
    head = [k for k in init if k.startswith("head.")]
    assert head and all(torch.equal(weights[k], init[k]) for k in head)
    assert all(not torch.equal(weights[k], init[k]) for k in init if k not in head)


def test_scaffold_refuses_adam_local_steps() -> None:
    from pftlab.core.errors import UserError
    from pftlab.experiment.config import from_dict

    with pytest.raises(UserError, match="scaffold"):
        from_dict({"federated": {"algorithm": "scaffold", "optimizer": "adam"}})
