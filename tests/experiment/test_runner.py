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


def matrices_agree_with_summary(out: Path, summary: dict) -> None:
    """summary.json's metrics are those of matrices/<method>.csv (and clients.csv): every method, every metric."""
    n, sizes = summary["num_clients"], np.array(summary["test_sizes"], dtype=float)
    assert sizes.shape == (n,) and (sizes > 0).all()
    assert {p.stem for p in (out / "matrices").glob("*.csv")} == set(summary["methods"])
    rows = list(csv.DictReader((out / "clients.csv").open()))
    assert len(rows) == n * len(summary["methods"])
    others = ~np.eye(n, dtype=bool)
    for method, metrics in summary["methods"].items():
        path = out / "matrices" / f"{method}.csv"
        header = path.read_text().splitlines()[0].split(",")
        assert header[1:] == [f"client{k}" for k in range(n)], method
        a = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, n + 1), ndmin=2)
        assert a.shape == (n, n) and ((a >= 0) & (a <= 100)).all(), method
        hits = a * sizes[None, :] / 100  # the entries are hit counts over the test sizes
        assert np.allclose(hits, np.round(hits), atol=1e-2), method
        off = a[others].reshape(n, n - 1)
        weighted = (a * sizes[None, :] * others).sum(1) / (sizes[None, :] * others).sum(1)
        want = {
            "local": np.diag(a).mean(),
            "global": weighted.mean(),
            "global_balanced": off.mean(),
            "worst": off.min(1).mean(),
            "c_std": np.diag(a).std(),
        }
        for key, value in want.items():
            assert abs(metrics[key] - value) < 1e-3, (method, key, metrics[key], value)
            assert 0 <= metrics[key] <= 100, (method, key)
        assert abs(metrics["average3"] - (metrics["local"] + metrics["global"] + metrics["worst"]) / 3) < 1e-3
        mine = [r for r in rows if r["method"] == method]
        assert [int(r["client"]) for r in mine] == list(range(n)), method
        assert np.allclose([float(r["local"]) for r in mine], np.diag(a), atol=1e-3), method
        assert np.allclose([float(r["worst"]) for r in mine], off.min(1), atol=1e-3), method
    gm = np.loadtxt(out / "matrices" / "global-model.csv", delimiter=",", skiprows=1, usecols=range(1, n + 1))
    assert (gm == gm[0]).all(), "the global model is one model: every row of its matrix is the same"


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
    matrices_agree_with_summary(out, summary)
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
    from safetensors.torch import load_file
    from torch import nn

    def model_fn(shape: tuple[int, ...], classes: int) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            OrderedDict(body=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()), fc=nn.Linear(32, classes))
        )

    cfg = load_config(quickstart, tiny)
    out = tmp_path / "run"
    summary = run_experiment(cfg, out, model_fn=model_fn, head="fc")
    assert list(summary["methods"]) == ["global-model", *cfg.personalize.methods]
    assert set(summary["methods"]) == {"global-model", "ft", "lp", "lp-ft"}
    assert json.loads((out / "summary.json").read_text()) == summary
    matrices_agree_with_summary(out, summary)
    # the run trained this module, not the configured model: the global checkpoint holds its parameters
    weights = load_file(str(out / "global.safetensors"))
    assert tuple(weights["fc.weight"].shape) == (10, 32)  # digits: 10 classes
    want = model_fn((8, 8), 10).state_dict()
    assert {k: tuple(v.shape) for k, v in weights.items()} == {k: tuple(v.shape) for k, v in want.items()}
    assert not all(torch.equal(weights[k], want[k]) for k in want), "the global stage did not train it"
    # `head="fc"` was honoured: LP trains the fc layer only (the body's features stay the global ones),
    # FT trains the body too, and both personalize (their matrices are not the global model's)
    methods = summary["methods"]
    assert methods["lp"]["distortion_own"] == 0 and methods["lp"]["cka_own"] == 1
    assert methods["ft"]["distortion_own"] > 0 and methods["ft"]["cka_own"] < 1
    gm = (out / "matrices" / "global-model.csv").read_text().splitlines()[1:]
    for method in ("ft", "lp", "lp-ft"):
        assert (out / "matrices" / f"{method}.csv").read_text().splitlines()[1:] != gm, method
