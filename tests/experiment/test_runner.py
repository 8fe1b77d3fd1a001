from __future__ import annotations

import csv
import json
from collections import OrderedDict
from io import StringIO
from pathlib import Path

import numpy as np
from rich.console import Console

from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment


def test_end_to_end_run_directory(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, tiny)
    log = StringIO()
    summary = run_experiment(cfg, tmp_path / "run", console=Console(file=log, width=200))
    out = tmp_path / "run"
    # without progress bars (tiny sets progress=false) each finished stage gets one line, in order
    done = [line.split(":")[0] for line in log.getvalue().splitlines() if ": done in " in line]
    assert done == ["global model", *cfg.personalize.methods]
    for name in (
        "config.toml",
        "partition.json",
        "summary.json",
        "clients.csv",
        "run.json",
        "global.safetensors",
        "local_vs_global.png",
        "matrices.png",
    ):
        assert (out / name).is_file(), name
    assert load_config(out / "config.toml").resolved() == cfg.resolved()
    assert set(summary["methods"]) == {"global-model", "ft", "lp", "lp-ft"}
    for metrics in summary["methods"].values():
        assert 0 <= metrics["worst"] <= metrics["global_balanced"] <= 100
        assert abs(metrics["average3"] - (metrics["local"] + metrics["global"] + metrics["worst"]) / 3) < 1e-3
    gm = summary["methods"]["global-model"]
    # the un-personalized model is one model: its local and global_balanced rows average the same numbers
    assert abs(gm["local"] - gm["global_balanced"]) < 1e-3

    rows = list(csv.DictReader((out / "clients.csv").open()))
    assert len(rows) == 4 * cfg.data.num_clients
    matrix = np.loadtxt(out / "matrices" / "ft.csv", delimiter=",", skiprows=1, usecols=range(1, 5))
    local = [float(r["local"]) for r in rows if r["method"] == "ft"]
    assert np.allclose(np.diag(matrix), local, atol=1e-3)
    partition = json.loads((out / "partition.json").read_text())
    assert partition["hash"] == summary["partition_hash"]
    assert len(partition["clients"]) == cfg.data.num_clients


def test_same_config_and_seed_give_byte_identical_summary(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, tiny)
    run_experiment(cfg, tmp_path / "a")
    run_experiment(cfg, tmp_path / "b")  # second run reuses the cached global model
    assert json.loads((tmp_path / "b" / "run.json").read_text())["global_checkpoint_reused"]
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    other = load_config(quickstart, [*tiny, "seed=1"])
    run_experiment(other, tmp_path / "c")
    assert (tmp_path / "a" / "summary.json").read_bytes() != (tmp_path / "c" / "summary.json").read_bytes()


def test_determinism_does_not_depend_on_the_cache(
    quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch
) -> None:
    cfg = load_config(quickstart, tiny)
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache1"))
    run_experiment(cfg, tmp_path / "a")
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache2"))
    run_experiment(cfg, tmp_path / "b")
    assert not json.loads((tmp_path / "b" / "run.json").read_text())["global_checkpoint_reused"]
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()


def test_any_torch_module_runs_by_naming_its_head(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    import torch
    from torch import nn

    def model_fn(shape: tuple[int, ...], classes: int) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            OrderedDict(body=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()), fc=nn.Linear(32, classes))
        )

    summary = run_experiment(load_config(quickstart, tiny), tmp_path / "run", model_fn=model_fn, head="fc")
    assert set(summary["methods"]) == {"global-model", "ft", "lp", "lp-ft"}
    assert summary["methods"]["lp"]["local"] > 0
