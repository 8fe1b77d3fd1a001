"""The robust global stage: out-of-scale updates left out or clipped and counted, robust aggregation, and a
global model that blows up stopped with one line naming the round and the clients."""

from __future__ import annotations

import math

import pytest
import torch

from pftlab.core.errors import UserError
from pftlab.experiment.config import FederatedConfig, from_dict
from pftlab.federated import (
    ALGORITHMS,
    ClientUpdate,
    GlobalStageDiverged,
    average,
    run_global_stage,
    scaffold,
    server_round,
)
from pftlab.federated.algorithm import robust_center, snapshot, trimmed_count
from pftlab.federated.rounds import MIN_SCALE, blown_up, clip, drive_rounds, norm_ratios

FEDAVG = ALGORITHMS["fedavg"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def upd(*values: float, n: int = 10, loss: float = 0.1) -> ClientUpdate:
    return ClientUpdate({"w": torch.tensor(values, dtype=torch.float32)}, n, loss)


ZERO = {"w": torch.zeros(2)}  # global weights of norm 0: the round's scale is its median alone


def one_round(updates: list[ClientUpdate], g: dict[str, torch.Tensor] = ZERO, **kw: object):
    cfg = FederatedConfig(**{"max_update_norm": 10.0, **kw})
    return server_round(FEDAVG, g, updates, {}, cfg, len(updates), {"w"})


# -- the update-norm bound -------------------------------------------------------------------------------------


def test_an_update_far_over_the_median_is_rejected_and_the_rest_averaged() -> None:
    honest = [upd(1, 0), upd(0, 1), upd(1, 1)]
    result = one_round([*honest, upd(1000, 0)])  # norms 1, 1, 1.41, 1000: median 1.21, bound 12.1
    assert result.accepted == [True, True, True, False] and result.out_of_scale == [False, False, False, True]
    assert result.clipped == [False] * 4 and not result.skipped
    assert torch.allclose(result.weights["w"], torch.tensor([2 / 3, 2 / 3]))
    assert same(result.weights, one_round(honest).weights)  # exactly as if it had not come


def test_clip_scales_the_update_down_to_the_bound_and_keeps_it() -> None:
    result = one_round([upd(1, 0), upd(0, 1), upd(1, 1), upd(1000, 0)], outlier_updates="clip")
    assert result.accepted == [True] * 4 and result.clipped == [False, False, False, True]
    assert result.out_of_scale == [False] * 4
    bound = 10 * (1 + math.sqrt(2)) / 2  # max_update_norm (10) times the median norm
    assert torch.allclose(result.weights["w"], torch.tensor([(2 + bound) / 4, 2 / 4]))
    # the change of the weights and the extras (SCAFFOLD's) scale by one factor
    g = {"w": torch.tensor([1.0, 1.0]), "steps": torch.tensor(3)}
    update = ClientUpdate({"w": torch.tensor([3.0, 5.0]), "steps": torch.tensor(4)}, 5, 0.2, {"c": torch.tensor([8.0])})
    half = clip(g, update, 0.5)
    assert torch.equal(half.weights["w"], torch.tensor([2.0, 3.0])) and half.weights["steps"].item() == 4
    assert torch.equal(half.extra["c"], torch.tensor([4.0])) and torch.equal(
        update.weights["w"], torch.tensor([3.0, 5.0])
    )


def test_fewer_than_three_finite_updates_are_never_judged() -> None:
    assert one_round([upd(1, 0), upd(1e6, 0)]).accepted == [True, True]
    result = one_round([upd(1, 0), upd(1e6, 0), upd(math.inf, 0)])  # 2 finite ones: not judged
    assert result.accepted == [True, True, False] and result.out_of_scale == [False] * 3
    assert math.isnan(norm_ratios(ZERO, [upd(1, 0), upd(1e6, 0)])[1])
    # nothing moved (median and weights' norm 0): no scale to judge by
    assert one_round([upd(0, 0), upd(0, 0), upd(5, 0)]).accepted == [True] * 3
    # 0 turns the bound off
    assert one_round([upd(1, 0), upd(0, 1), upd(1, 1), upd(1000, 0)], max_update_norm=0).accepted == [True] * 4


def test_the_median_is_taken_as_at_least_a_percent_of_the_weights_norm() -> None:
    """Clients that fit their data barely move: an ordinary update is not out of scale against them."""
    g = {"w": torch.tensor([100.0, 0.0])}  # norm 100: the scale is at least MIN_SCALE * 100 = 1
    assert MIN_SCALE == 0.01
    near = [ClientUpdate({"w": g["w"] + torch.tensor([0.0, d])}, 10, 0.1) for d in (0.01, 0.01, 0.02)]
    ordinary = ClientUpdate({"w": g["w"] + torch.tensor([5.0, 0.0])}, 10, 0.1)  # over 300 x the median, 5 x the scale
    assert one_round([*near, ordinary], g).accepted == [True] * 4
    far = ClientUpdate({"w": g["w"] + torch.tensor([50.0, 0.0])}, 10, 0.1)
    assert one_round([*near, far], g).out_of_scale == [False, False, False, True]


def scaled_send(fed, model, algorithm, cfg, poisoned: int, factor: float):
    """In-process transport whose client `poisoned` sends its change of the weights times `factor` (0: nothing)."""

    def send(rnd, clients, weights, payload):
        out = {}
        for c in clients:
            u = algorithm.local_update(model, weights, payload, fed.clients[c].train, cfg, 0, rnd, c, {})
            if c == poisoned:
                if factor == 0:
                    continue
                u = clip(weights, u, factor)
            out[c] = u
        return out

    return send


@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold"])
def test_an_out_of_scale_client_is_counted_logged_and_as_if_absent(fed, new_model, algorithm: str) -> None:
    cfg = FederatedConfig(algorithm=algorithm, rounds=3)
    alg, model = ALGORITHMS[algorithm], new_model()
    params, start = frozenset(n for n, _ in model.named_parameters()), snapshot(model)
    weights, stats, log = drive_rounds(alg, start, params, 4, cfg, 0, scaled_send(fed, model, alg, cfg, 2, 1e6))
    assert stats.updates_out_of_scale == 3 and stats.updates_clipped == stats.updates_rejected == 0
    assert [r.out_of_scale for r in log] == [[2]] * 3 and [r.clipped for r in log] == [[]] * 3
    assert log[0].as_dict()["out_of_scale"] == [2] and log[0].rejected == []
    absent, _, _ = drive_rounds(alg, start, params, 4, cfg, 0, scaled_send(fed, model, alg, cfg, 2, 0))
    assert same(weights, absent)
    clipped, stats, log = drive_rounds(
        alg, start, params, 4, cfg.model_copy(update={"outlier_updates": "clip"}), 0,
        scaled_send(fed, model, alg, cfg, 2, 1e6),
    )  # fmt: skip
    assert stats.updates_clipped == 3 and stats.updates_out_of_scale == 0 and [r.clipped for r in log] == [[2]] * 3
    assert all(bool(torch.isfinite(v).all()) for v in clipped.values()) and not same(clipped, absent)


# -- robust aggregation ------------------------------------------------------------------------------------------


def test_median_and_trimmed_mean_by_hand_resist_one_huge_update() -> None:
    g = {"w": torch.zeros(2), "steps": torch.tensor(0), "frozen": torch.ones(1)}

    def u(a: float, b: float, n: int) -> ClientUpdate:
        w = torch.tensor([a, b], dtype=torch.float32)
        return ClientUpdate({"w": w, "steps": torch.tensor(n), "frozen": torch.ones(1)}, n, 0.0)

    five = [u(1, 50, 1), u(2, 40, 100), u(3, 30, 1), u(4, 20, 1), u(1e30, 10, 1)]  # per coordinate
    median = average(g, five, FederatedConfig(aggregate="median"))
    assert torch.equal(median["w"], torch.tensor([3.0, 30.0]))  # unweighted: client 1's 100 samples count once
    assert median["steps"].item() == 1 and median["frozen"] is g["frozen"]  # first update's integers; unchanged kept
    trimmed = average(g, five, FederatedConfig(aggregate="trimmed-mean", trim=0.1))  # ceil(0.5) = 1 from each end
    assert torch.allclose(trimmed["w"], torch.tensor([3.0, 30.0]))
    four = five[:3] + five[4:]  # even count: the median is the mean of the two middle values
    assert torch.allclose(average(g, four, FederatedConfig(aggregate="median"))["w"], torch.tensor([2.5, 35.0]))
    assert torch.allclose(robust_center([torch.tensor([1.0]), torch.tensor([5.0])], "median", 0), torch.tensor([3.0]))
    untrimmed = average(g, five[:4], FederatedConfig(aggregate="trimmed-mean", trim=0.0))  # the unweighted mean
    assert torch.allclose(untrimmed["w"], torch.tensor([2.5, 35.0]))
    assert average(g, five, FederatedConfig())["w"][0] > 1e27  # the sample-weighted mean does not resist


@pytest.mark.parametrize(
    ("n", "how", "trim", "k"),
    [(5, "median", 0.0, 2), (4, "median", 0.0, 1), (2, "median", 0.0, 0), (4, "trimmed-mean", 0.1, 1),
     (10, "trimmed-mean", 0.1, 1), (30, "trimmed-mean", 0.1, 3), (31, "trimmed-mean", 0.1, 4),
     (3, "trimmed-mean", 0.45, 1), (2, "trimmed-mean", 0.3, 0), (10, "trimmed-mean", 0.0, 0), (10, "mean", 0.4, 0)],
)  # fmt: skip
def test_how_many_each_end_loses(n: int, how: str, trim: float, k: int) -> None:
    assert trimmed_count(n, how, trim) == k


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_honours_the_aggregate(fed, new_model, algorithm: str) -> None:
    def run(**kw: object) -> dict[str, torch.Tensor]:
        cfg = FederatedConfig(algorithm=algorithm, rounds=2, **kw)
        return run_global_stage(new_model(), fed, cfg, seed=0)[0]

    mean, median = run(), run(aggregate="median")
    assert not same(mean, median) and same(median, run(aggregate="median"))
    assert all(bool(torch.isfinite(v).all()) for v in median.values())
    # untrimmed, it is the unweighted mean: the sample-weighted one here, where every client has 40 samples
    untrimmed = run(aggregate="trimmed-mean", trim=0.0)
    assert all(torch.allclose(untrimmed[k], mean[k], rtol=0, atol=1e-6) for k in mean)
    if algorithm == "fedbabu":  # a key nobody changed stays bit-identical
        init = new_model().state_dict()
        assert all(torch.equal(median[k], init[k]) for k in init if k.startswith("head."))


def test_scaffold_moves_its_control_variate_by_the_robust_centre() -> None:
    cfg = FederatedConfig(algorithm="scaffold", aggregate="median")
    g = {"w": torch.zeros(1)}
    ups = [
        ClientUpdate({"w": torch.tensor([v])}, 1, 0.0, {"w": torch.tensor([e])})
        for v, e in ((1.0, 1.0), (2.0, 2.0), (9.0, 90.0))
    ]
    out, state = scaffold.server_update(g, ups, {"c/w": torch.tensor([1.0])}, cfg, 6, {"w"})
    assert torch.equal(out["w"], torch.tensor([2.0]))
    assert torch.allclose(state["c/w"], torch.tensor([1.0 + 3 * 2.0 / 6]))  # |S| x median / N


# -- the defaults change nothing on an honest federation ---------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_the_defaults_leave_an_honest_federation_bit_identical(fed, new_model, algorithm: str) -> None:
    for extra in ({}, {"clients_per_round": 3, "dropout": 0.2}):
        cfg = FederatedConfig(algorithm=algorithm, rounds=4, **extra)
        off = cfg.model_copy(update={"max_update_norm": 0.0, "max_weight": 0.0})
        weights, stats = run_global_stage(new_model(), fed, cfg, seed=0)
        assert same(weights, run_global_stage(new_model(), fed, off, seed=0)[0])
        assert stats.updates_out_of_scale == stats.updates_clipped == 0


# -- a global model that blows up ------------------------------------------------------------------------------


def test_a_diverging_global_model_stops_the_stage_naming_the_round_and_the_clients(fed, new_model) -> None:
    with pytest.raises(GlobalStageDiverged, match=r"fedavg diverged in round 2 of 3: \|weight\| .* exceeds") as err:
        run_global_stage(new_model(), fed, FederatedConfig(rounds=3, lr=100), seed=0)
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    for part in ("clients [0, 1, 2, 3]", "federated.max_weight = 10000", "federated.lr (now 100)", "aggregate"):
        assert part in message
    # a finite but huge update with the norm bound off: the first round's global model is stopped
    cfg = FederatedConfig(rounds=3, max_update_norm=0)
    model = new_model()
    params = frozenset(n for n, _ in model.named_parameters())
    with pytest.raises(
        GlobalStageDiverged, match=r"round 1 of 3: .* clients \[0, 1, 2, 3\]; .*turn federated.max_update_norm on"
    ):
        drive_rounds(FEDAVG, snapshot(model), params, 4, cfg, 0, scaled_send(fed, model, FEDAVG, cfg, 1, 1e18))
    # clipped clients are named as such
    clip_cfg = cfg.model_copy(update={"max_update_norm": 10.0, "outlier_updates": "clip", "max_weight": 1e-3})
    with pytest.raises(GlobalStageDiverged, match=r"round 1 of 3: .* clients \[0, 1, 2, 3\] \(clipped: \[1\]\)"):
        drive_rounds(
            FEDAVG, snapshot(model), params, 4, clip_cfg, 0, scaled_send(fed, model, FEDAVG, clip_cfg, 1, 1e18)
        )


def test_blown_up_finds_non_finite_weights_and_parameters_over_the_bound() -> None:
    w = {"a": torch.tensor([1.0, -5e4]), "bn.var": torch.tensor([1e9]), "n": torch.tensor(10**6)}
    assert blown_up(w, {"a"}, 1e4) == ("a", 5e4)
    assert blown_up(w, {"a"}, 0) is None and blown_up(w, {"a"}, 1e5) is None  # buffers are not bounded
    key, value = blown_up({**w, "bn.var": torch.tensor([math.nan])}, {"a"}, 0)
    assert key == "bn.var" and math.isnan(value)  # non-finite: always


def test_config_bounds() -> None:
    for bad in (
        {"trim": 0.5}, {"trim": -0.1}, {"aggregate": "mode"}, {"max_update_norm": -1.0},
        {"outlier_updates": "drop"}, {"max_weight": -1.0}, {"max_update_norm": 0.5},
    ):  # fmt: skip
        with pytest.raises(UserError, match="federated"):
            from_dict({"federated": bad})
    cfg = from_dict({"federated": {"aggregate": "trimmed-mean", "trim": 0.2, "outlier_updates": "clip"}}).federated
    assert (cfg.max_update_norm, cfg.max_weight, cfg.trim) == (100.0, 1e4, 0.2)
