from __future__ import annotations

import pytest
import torch
from torch import nn

from pftlab.core.errors import UserError
from pftlab.experiment.config import ModelConfig
from pftlab.models import build_model, features, head_module, head_param_names


@pytest.mark.parametrize(
    ("name", "shape"), [("cnn", (1, 8, 8)), ("cnn", (3, 32, 32)), ("cnn", (1, 28, 28)), ("mlp", (13,))]
)
def test_models_split_into_backbone_and_head(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(ModelConfig(name=name, hidden=64), shape, 7, seed=0)
    x = torch.rand(5, *shape)
    feats = features(model, "head", x)
    assert feats.shape == (5, 64)
    assert torch.allclose(head_module(model, "head")(feats), model(x), atol=1e-6)
    assert head_param_names(model, "head") == {"head.weight", "head.bias"}


def test_init_depends_only_on_the_seed() -> None:
    a, b, c = (build_model(ModelConfig(), (1, 8, 8), 10, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.state_dict()["head.weight"], c.state_dict()["head.weight"])


def test_any_module_works_by_naming_its_head() -> None:
    model = nn.Sequential()
    model.add_module("body", nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh()))
    model.add_module("fc", nn.Linear(6, 3))
    x = torch.rand(4, 3, 4)
    assert features(model, "fc", x).shape == (4, 6)
    assert isinstance(model.fc, nn.Linear), "the head must be put back"
    with pytest.raises(ValueError, match="no submodule 'head'"):
        head_module(model, "head")


def test_cnn_refuses_non_images() -> None:
    with pytest.raises(UserError, match="square images"):
        build_model(ModelConfig(name="cnn"), (13,), 2, seed=0)
