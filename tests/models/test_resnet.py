"""The CIFAR-style ResNets: published sizes, hand-counted FLOPs, a backbone plus `head` that every
method, the features, the batched engine and a whole run take unchanged, and every norm trains."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pftlab.experiment.runner as runner
from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import DataConfig, FederatedConfig, ModelConfig, PersonalizeConfig
from pftlab.federated import run_global_stage
from pftlab.models import MODELS, build_model, features, head_module, head_param_names
from pftlab.models.cost import forward_flops, parameter_count
from pftlab.models.norm import group_count
from pftlab.personalize import METHODS, personalize_batch, personalize_client, supports

NORMS = ("batch", "group", "none")
RESNETS = ("resnet8", "resnet20", "resnet18")


def _cifar_params(blocks: int, widths: tuple[int, ...], c_in: int, classes: int, norm: str) -> int:
    """He et al.'s CIFAR ResNet counted by hand: 3x3 convolutions, option-A shortcuts (no parameters);
    each convolution is followed by a norm (scale and shift: 2 per channel) or has a bias (1 per channel)."""
    per_channel = 1 if norm == "none" else 2
    total = 9 * c_in * widths[0] + per_channel * widths[0]  # stem
    c = widths[0]
    for w in widths:
        for _ in range(blocks):
            total += 9 * c * w + 9 * w * w + 2 * per_channel * w
            c = w
    return total + c * classes + classes


@pytest.mark.parametrize(
    ("name", "norm", "expected"),
    [
        ("resnet20", "batch", 269_722),  # He et al. 2016, table 6: 0.27M (the usual PyTorch port's exact count)
        ("resnet20", "group", 269_722),  # GroupNorm has BatchNorm's scale and shift, no running statistics
        ("resnet20", "none", 269_722 - 688),  # 688 norm layers' channels: 2 parameters each become 1 bias
        ("resnet8", "batch", 75_290),
        ("resnet18", "batch", 11_173_962),  # the usual CIFAR ResNet-18 (3x3 stem, no max-pool, 1x1 projections)
    ],
)
def test_parameter_counts_are_the_published_ones(name: str, norm: str, expected: int) -> None:
    model = build_model(ModelConfig(name=name, norm=norm), (3, 32, 32), 10, seed=0)
    assert parameter_count(model) == expected
    if name != "resnet18":
        assert expected == _cifar_params(1 if name == "resnet8" else 3, (16, 32, 64), 3, 10, norm)


@pytest.mark.parametrize(("multiplier", "widths"), [(0.5, (8, 16, 32)), (2.0, (32, 64, 128)), (1.3, (21, 42, 83))])
def test_width_multiplier_scales_every_stage(multiplier: float, widths: tuple[int, ...]) -> None:
    cfg = ModelConfig(name="resnet20", width_multiplier=multiplier, norm="group")
    model = build_model(cfg, (1, 28, 28), 7, seed=0)
    assert parameter_count(model) == _cifar_params(3, widths, 1, 7, "group")
    assert features(model, "head", torch.rand(2, 1, 28, 28)).shape == (2, widths[-1])


def test_the_cnn_ignores_the_resnet_keys() -> None:
    """model.width_multiplier is the ResNets' key: the CNN's weights do not change with it."""
    a = build_model(ModelConfig(name="cnn"), (1, 8, 8), 10, seed=0).state_dict()
    b = build_model(ModelConfig(name="cnn", width_multiplier=3.0), (1, 8, 8), 10, seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", RESNETS)
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 64, 64), (1, 8, 8)])
def test_shapes_features_and_head(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(ModelConfig(name=name, norm="group"), shape, 10, seed=0)
    assert isinstance(head_module(model, "head"), nn.Linear)
    assert head_param_names(model, "head") == {"head.weight", "head.bias"}
    assert [n for n, _ in model.named_children()] == ["backbone", "head"]
    x = torch.rand(3, *shape)
    feats = features(model, "head", x)
    assert model.training  # features put back the mode it found
    width = 512 if name == "resnet18" else 64
    assert feats.shape == (3, width)
    model.eval()
    with torch.no_grad():
        maps = model.backbone[:-1](x)  # every stage, before the pooling
        assert maps.shape[:2] == (3, width)
        torch.testing.assert_close(feats, maps.mean((2, 3)), rtol=1e-5, atol=1e-5)  # the pooled vector
        torch.testing.assert_close(head_module(model, "head")(feats), model(x), rtol=1e-5, atol=1e-5)


def test_stages_are_named_blocks() -> None:
    """Surgical FT names a block: the stem, one block per stage, the pooling; its default `backbone.block1` exists."""
    for name, stages in (("resnet8", 3), ("resnet20", 3), ("resnet18", 4)):
        model = build_model(ModelConfig(name=name), (3, 32, 32), 10, seed=0)
        blocks = [n for n, _ in model.backbone.named_children()]
        assert blocks == ["stem", *(f"block{i + 1}" for i in range(stages)), "pool"]


@pytest.mark.parametrize("name", RESNETS)
def test_init_depends_only_on_the_seed(name: str) -> None:
    a, b, c = (build_model(ModelConfig(name=name, norm="group"), (3, 16, 16), 10, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.state_dict()["backbone.stem.0.weight"], c.state_dict()["backbone.stem.0.weight"])
    assert not torch.equal(a.state_dict()["head.weight"], c.state_dict()["head.weight"])


def test_without_norm_the_init_is_fixup() -> None:
    """norm = "none": each block starts as its shortcut (the last convolution of every branch is zero),
    the first convolution of each of L branches at L^-1/2 of He's scale."""
    model = build_model(ModelConfig(name="resnet20"), (3, 32, 32), 10, seed=0)
    last = {n: p for n, p in model.named_parameters() if n.endswith("branch.2.weight")}
    assert len(last) == 9
    assert all(not p.any() for p in last.values())
    first = {n: p for n, p in model.named_parameters() if n.endswith("branch.0.weight")}
    assert len(first) == 9 and all(p.abs().sum() > 0 for p in first.values())
    # He fan-in std is sqrt(2 / fan_in); the first convolution of each of the 9 branches has 1/3 of it
    for p in first.values():
        std = math.sqrt(2 / (p.shape[1] * 9)) / 3
        assert 0.85 * std < float(p.detach().std()) < 1.15 * std


def test_group_count() -> None:
    assert [group_count(c) for c in (1, 4, 8, 16, 32, 64, 128, 512, 21, 83)] == [1, 1, 2, 4, 8, 16, 32, 32, 3, 1]
    model = build_model(ModelConfig(name="resnet8", norm="group"), (3, 32, 32), 10, seed=0)
    groups = [m.num_groups for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert groups == [4, 4, 4, 8, 8, 16, 16]


def _fit(model: nn.Module, epochs: int = 8, lr: float = 0.05) -> list[float]:
    """Each epoch's mean loss: SGD with momentum 0.9 at the global stage's default learning rate, batches
    of 32 from 128 random images (noisy copies of 10 random prototypes, one per class)."""
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.randn(10, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)
    x = prototypes[y] + torch.randn(128, 3, 16, 16, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(128, generator=gen), 0.0
        for i in range(0, 128, 32):
            loss = F.cross_entropy(model(x[order[i : i + 32]]), y[order[i : i + 32]])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            opt.step()
            total += float(loss.detach()) / 4
        losses.append(total)
    return losses


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ["resnet8", "resnet20"])
def test_every_norm_trains(name: str, norm: str) -> None:
    """At the default learning rate, every norm (none: Fixup's initialisation) lowers the loss steadily."""
    model = build_model(ModelConfig(name=name, norm=norm), (3, 16, 16), 10, seed=0)
    losses = _fit(model)
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < 0.6 * losses[0], losses  # measured: at most 0.47 of the first epoch's loss (resnet20, none)
    assert all(b < a for a, b in itertools.pairwise(losses[3:])), losses  # no spike once it learns


def test_resnet18_trains_without_norm() -> None:
    model = build_model(ModelConfig(name="resnet18", width_multiplier=0.25), (3, 16, 16), 10, seed=0)
    losses = _fit(model, epochs=6)
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < 0.6 * losses[0], losses


def test_without_norm_training_needs_the_fixup_init() -> None:
    """The initialisation is what `none` rests on: He init alone starts resnet20 with a much larger loss."""
    fixup = _fit(build_model(ModelConfig(name="resnet20"), (3, 16, 16), 10, seed=0), epochs=1)[0]
    model = build_model(ModelConfig(name="resnet20"), (3, 16, 16), 10, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the re-initialisation draws from the global generator: seeded, so the test is too
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    he = _fit(model, epochs=1)[0]
    assert math.isnan(he) or he > fixup + 0.5, (he, fixup)  # larger, or diverged outright


def _conv(c_in: int, c_out: int, side: int, kernel: int = 3) -> int:
    """FLOPs of one convolution producing a side x side map: a multiply-add counts 2; its bias is not counted."""
    return 2 * c_out * side * side * c_in * kernel * kernel


RESNET8_FLOPS_3x32 = (
    _conv(3, 16, 32)  # stem: 884,736
    + 2 * _conv(16, 16, 32)  # stage 1, one block at 32x32: 2 x 4,718,592
    + _conv(16, 32, 16)  # stage 2: stride 2 to 16x16 (2,359,296); the shortcut only pads (no FLOPs)
    + _conv(32, 32, 16)  # 4,718,592
    + _conv(32, 64, 8)  # stage 3 at 8x8: 2,359,296
    + _conv(64, 64, 8)  # 4,718,592
    + 2 * 64 * 10  # head: 1,280
)


@pytest.mark.parametrize("norm", NORMS)
def test_flops_match_a_hand_count(norm: str) -> None:
    assert RESNET8_FLOPS_3x32 == 24_478_976
    model = build_model(ModelConfig(name="resnet8", norm=norm), (3, 32, 32), 10, seed=0)
    assert forward_flops(model, (3, 32, 32)) == RESNET8_FLOPS_3x32
    resnet20 = build_model(ModelConfig(name="resnet20", norm=norm), (3, 32, 32), 10, seed=0)
    hand = RESNET8_FLOPS_3x32 + 4 * (_conv(16, 16, 32) + _conv(32, 32, 16) + _conv(64, 64, 8))  # 2 more blocks a stage
    assert forward_flops(resnet20, (3, 32, 32)) == hand == 81_102_080  # 40.6M multiply-adds, as published (41M)


def test_models_lists_the_resnets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in RESNETS:
        row = lines.index(next(line for line in lines if line.split()[:1] == [name]))
        model = build_model(ModelConfig(name=name), (1, 8, 8), 10, seed=0)
        cost = f"{parameter_count(model):,} parameters, {forward_flops(model, (1, 8, 8)):,} FLOPs"
        assert cost in lines[row + 1], lines[row : row + 2]
    assert "74,762 parameters, 1,494,272 FLOPs" in "\n".join(lines)  # resnet8 on 1x8x8 digits, counted by hand


def test_resnets_refuse_non_images() -> None:
    for name in RESNETS:
        with pytest.raises(UserError, match=f"model '{name}' needs square images"):
            build_model(ModelConfig(name=name), (13,), 2, seed=0)
        assert MODELS[name].accepts((3, 32, 32)) is None


# --- the batched engine -------------------------------------------------------------------------

BUDGET = PersonalizeConfig(epochs=3, methods=["ft"], batch_size=16, weight_decay=1e-3)


@pytest.fixture(scope="module")
def federation():
    return build_federation(DataConfig(num_clients=5), seed=0)


@pytest.fixture(scope="module")
def trained(federation):
    """resnet8 per buffer-free norm after 2 FedAvg rounds, in float64: (model, global weights)."""
    out = {}
    for norm in ("group", "none"):
        model = build_model(ModelConfig(name="resnet8", norm=norm), federation.input_shape, 10, seed=0)
        start = run_global_stage(model, federation, FederatedConfig(rounds=2), 0)[0]
        out[norm] = model.double(), {k: v.double() for k, v in start.items()}
    return out


CASES = [("ft", {}), ("proximal-ft", {"mu": 0.5}), ("surgical-ft", {"block": "backbone.block1"})]


@pytest.mark.parametrize("norm", ["group", "none"])
@pytest.mark.parametrize(("name", "params"), CASES, ids=[c[0] for c in CASES])
def test_batched_equals_loop(federation, trained, norm, name, params):
    """The same computation, so in float64 the same weights to 1e-12. (In float32 the two differ by kernel
    rounding, about 1e-6 of a gradient per step; with GroupNorm 3 epochs of FT grew that to 4e-3 in
    weights that moved 0.43, so a float32 comparison would have to be loose enough to hide a real bug.)"""
    model, start = trained[norm]
    method = METHODS[name]
    p = method.Params.model_validate(params)
    assert not list(model.buffers())
    assert supports(model, method, p, BUDGET)
    clients = federation.clients[:4]  # sizes differ, so some clients sit out the last steps
    assert len({len(c.train) for c in clients}) > 1
    data = [dataclasses.replace(c.train, x=c.train.x.astype(np.float64)) for c in clients]
    with torch.no_grad():  # only `start` may matter
        for t in model.parameters():
            t.normal_()
    batched, losses = personalize_batch(model, start, method, p, BUDGET, data, [c.client_id for c in clients], seed=3)
    assert all(math.isfinite(v) for v in losses)
    for c, d, got in zip(clients, data, batched, strict=True):
        want = personalize_client(model, start, method, p, BUDGET, d, 3, c.client_id)
        assert got.keys() == want.keys()
        assert max(float((want[k] - start[k]).abs().max()) for k in want) > 1e-2
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("norm", ["group", "none"])
def test_batched_lp_equals_loop_in_float32(federation, trained, norm):
    """Head-only phases read fp32 features; a convex head problem keeps the float32 rounding small."""
    model, start = trained[norm]
    model, start = model.float(), {k: v.float() for k, v in start.items()}
    try:
        method = METHODS["lp"]
        p = method.Params()
        clients = federation.clients[:4]
        batched, _ = personalize_batch(
            model, start, method, p, BUDGET, [c.train for c in clients], [c.client_id for c in clients], seed=3
        )
        for c, got in zip(clients, batched, strict=True):
            want = personalize_client(model, start, method, p, BUDGET, c.train, 3, c.client_id)
            assert float((want["head.weight"] - start["head.weight"]).abs().max()) > 1e-2
            for k in want:
                torch.testing.assert_close(got[k], want[k], rtol=1e-3, atol=1e-4)
    finally:
        model.double()


def test_batch_norm_goes_to_the_loop(federation):
    model = build_model(ModelConfig(name="resnet8", norm="batch"), federation.input_shape, 10, seed=0)
    assert any(True for _ in model.buffers())  # BatchNorm's running statistics
    for name, params in CASES:
        method = METHODS[name]
        assert not supports(model, method, method.Params.model_validate(params), BUDGET)


# --- a whole run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "batched"),
    [
        ([], True),  # norm none, engine auto: LP's head steps run batched
        (['model.norm="batch"', 'runtime.engine="batched"'], False),  # BatchNorm: the loop, whatever is asked
    ],
    ids=["none", "batch"],
)
def test_quickstart_runs_with_resnet8(
    quickstart: Path,
    tiny: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sets: list[str],
    batched: bool,
) -> None:
    calls: list[int] = []
    original = runner.personalize_batch
    monkeypatch.setattr(runner, "personalize_batch", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    out = tmp_path / "run"
    overrides = [*tiny, 'model.name="resnet8"', *sets]
    assert main(["run", str(quickstart), "--out", str(out), *(a for o in overrides for a in ("--set", o))]) == 0
    assert "lp-ft" in capsys.readouterr().out  # the summary table
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"global-model", "ft", "lp", "lp-ft"}
    for metrics in summary["methods"].values():
        assert 0 <= metrics["average"] <= 100
    assert 0 < summary["methods"]["ft"]["cka_own"] <= 1 + 1e-9  # distortion on the pooled ResNet features
    assert summary["methods"]["ft"]["distortion_own"] > 0
    assert "pftlab.models.resnet.ResNet" in (out / "run.json").read_text()
    assert bool(calls) is batched
