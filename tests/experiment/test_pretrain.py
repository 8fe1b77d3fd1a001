"""`pftlab pretrain` and `model.init`: weights from data no client holds, checked before they are used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.core.io import load_weights, save_weights
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import finished_run, run_experiment
from pftlab.models import build_model
from pftlab.models.init import load_init

# pretrain on colored-mnist's digits (3 x 28 x 28, 2 classes), then start mnist-writers-like runs from it:
# for a test both need one input shape; colored-mnist (RGB) -> colored-mnist with other correlations
PRETRAIN = (
    'pretrain.data.benchmark="colored-mnist"',
    'pretrain.data.size="quick"',
    "pretrain.data.correlations=[0.5]",
    "pretrain.epochs=1",
)
RUN = ('personalize.methods=["ft", "lp-ft"]',)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "colored.toml"
    path.write_text('[data]\nbenchmark = "colored-mnist"\nsize = "quick"\n')
    return path


def sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def test_pretrain_writes_verified_weights_and_reuses_them(
    config: Path, tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pre.safetensors"
    assert main(["pretrain", str(config), *sets(*RUN, *PRETRAIN), "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert "colored-mnist: " in first and "test accuracy" in first and "(reused)" not in first
    weights = load_weights(out)
    assert main(["pretrain", str(config), *sets(*RUN, *PRETRAIN), "--out", str(tmp_path / "again.safetensors")]) == 0
    assert "(reused)" in capsys.readouterr().out
    again = load_weights(tmp_path / "again.safetensors")
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    # a run started from them: its global stage starts at the pretrained weights, so its results differ
    cfg = load_config(config, [*tiny, *RUN])
    plain = run_experiment(cfg, tmp_path / "plain")
    init_cfg = load_config(config, [*tiny, *RUN, f"model.init='{out}'"])
    started = run_experiment(init_cfg, tmp_path / "init")
    assert started["methods"] != plain["methods"]
    info = json.loads((tmp_path / "init" / "run.json").read_text())
    assert info["model"]["init"] == str(out)
    # a study reuses the finished run: its key is built from the same start (it once was not)
    assert finished_run(tmp_path / "init", init_cfg) == started


def test_init_loads_the_weights_and_keeps_a_fresh_head_when_asked(quickstart: Path, tmp_path: Path) -> None:
    cfg = load_config(quickstart)
    model = build_model(cfg.model, (3, 28, 28), 2, 0)
    source = build_model(cfg.model, (3, 28, 28), 2, 1)
    path = tmp_path / "w.safetensors"
    save_weights(path, source.state_dict())
    load_init(model, str(path))
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values(), strict=True)
    )
    fresh = build_model(cfg.model, (3, 28, 28), 2, 0)
    head_before = fresh.state_dict()["head.weight"].clone()
    load_init(fresh, str(path), keep_head=False)
    assert torch.equal(fresh.state_dict()["head.weight"], head_before)
    assert torch.equal(fresh.state_dict()["backbone.block1.0.weight"], source.state_dict()["backbone.block1.0.weight"])


def test_init_refuses_a_mismatch_naming_the_tensor(quickstart: Path, tmp_path: Path) -> None:
    cfg = load_config(quickstart)
    path = tmp_path / "ten.safetensors"
    save_weights(path, build_model(cfg.model, (3, 28, 28), 10, 1).state_dict())
    model = build_model(cfg.model, (3, 28, 28), 2, 0)
    with pytest.raises(
        UserError,
        match=r"model.init: 'head.weight' is \(10, .*\) in .* but \(2, .*\) in the model; "
        r"set model.init_head = false",
    ):
        load_init(model, str(path))
    load_init(model, str(path), keep_head=False)  # only the backbone: fits
    with pytest.raises(UserError, match=r"model.init: no file at"):
        load_init(model, str(tmp_path / "missing.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match=r"model.init: "):
        load_init(model, str(bad))
