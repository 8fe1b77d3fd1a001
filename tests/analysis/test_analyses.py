from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from pftlab.analysis.common import setup
from pftlab.analysis.curves import VARIANTS, run_curves
from pftlab.analysis.distortion_drop import run_distortion
from pftlab.analysis.flooding import run_flooding
from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.experiment.config import ModelConfig, PersonalizeConfig, load_config
from pftlab.experiment.runner import run_experiment
from pftlab.models import build_model
from pftlab.personalize import Phase
from pftlab.training.loop import train


@pytest.fixture
def small(quickstart: Path, tiny: list[str]):
    return setup(load_config(quickstart, [*tiny, "personalize.epochs=2"]))


def test_curves_start_at_the_global_model_and_cover_every_variant(small, tmp_path: Path) -> None:
    curves = run_curves(small, tmp_path, clients=1)
    start = {(r["local"], r["global"]) for r in curves if r["epoch"] == 0}
    assert len(start) == 1, "every variant starts from the same global model"
    labels = {r["variant"] for r in curves}
    assert all(label in labels for vs in VARIANTS.values() for label, _, _ in vs) and "LP-FT" in labels
    assert max(r["epoch"] for r in curves) == 2
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with (tmp_path / "curves.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(curves)


def test_flooding_holds_losses_apart(small, tmp_path: Path) -> None:
    table = run_flooding(small, tmp_path, [0.05, 2.0], clients=1)
    loss = {(r["method"], r["level"]): r["train_loss"] for r in table}
    assert loss["ft", 2.0] > loss["ft", 0.05] and loss["lp-ft", 2.0] > loss["lp-ft", 0.05]
    assert (tmp_path / "flooding.png").is_file()


def test_distortion_analysis_reads_a_run(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    run_experiment(load_config(quickstart, tiny), tmp_path / "run")
    run_distortion(tmp_path / "run", tmp_path)
    rows = list(csv.DictReader((tmp_path / "distortion.csv").open()))
    assert {r["method"] for r in rows} == {"ft", "lp", "lp-ft"}
    assert all(float(r["distortion_own"]) == 0.0 for r in rows if r["method"] == "lp")
    with pytest.raises(UserError, match="not found"):
        run_distortion(tmp_path / "nowhere", tmp_path)


def test_cli_analyze_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["analyze", "curves", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "a")]) == 2
    assert main(["analyze", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err


def test_an_evaluating_callback_does_not_leave_training_in_eval_mode(quickstart: Path) -> None:
    """BatchNorm statistics keep updating after on_epoch evaluated the model."""
    from pftlab.data.benchmarks import build_federation
    from pftlab.experiment.config import DataConfig

    data = build_federation(DataConfig(num_clients=4), 0).clients[0].train
    model = build_model(ModelConfig(norm="batch", width=8, hidden=16), data.input_shape, 10, seed=0)
    seen = []

    def evaluate(epoch: int, loss: float) -> None:
        model.eval()
        seen.append(model.backbone.block1[1].running_mean.clone())

    budget = PersonalizeConfig(epochs=3, methods=["ft"])
    train(model, [Phase("all", 3, 0.01)], data, budget, 0, "p", 0, on_epoch=evaluate)
    assert not torch.equal(seen[1], seen[2]), "running statistics froze after the first callback"


def test_a_diverged_client_is_left_out_of_the_curves_and_named(
    small, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client whose loss turns non-finite drops out of every mean, its earlier epochs too; all of them: refused."""
    import pftlab.analysis.curves as curves
    from pftlab.analysis.common import local_and_global

    real = curves.train
    first, second = (c.client_id for c in small.fed.clients[:2])
    failing: set[int] = {first}

    def diverging(*args, on_epoch=None, **kwargs):
        if args[6] in failing:
            on_epoch(1, 123.0)  # one epoch recorded, then the loss blows up
            raise FloatingPointError(f"client {args[6]}: training loss became nan in epoch 1")
        return real(*args, on_epoch=on_epoch, **kwargs)

    monkeypatch.setattr(curves, "train", diverging)
    rows = run_curves(small, tmp_path / "one", clients=2)
    small.model.load_state_dict(small.weights)
    own, _ = local_and_global(small.model, small.pool, second)
    assert {round(r["local"], 4) for r in rows if r["epoch"] == 0} == {round(own, 4)}, "only the second client"
    assert max(r["epoch"] for r in rows) == 2, "the other client trained the whole budget"
    assert f"1 of 2 clients diverged and are left out, e.g. client {first}" in capsys.readouterr().err
    failing.add(second)
    with pytest.raises(UserError, match="training diverged on every client"):
        run_curves(small, tmp_path / "all", clients=2)
    assert not (tmp_path / "all").exists()
