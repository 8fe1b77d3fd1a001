from __future__ import annotations

import csv
from pathlib import Path

import torch

from pftlab.evaluate.distortion import distortion, linear_cka
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment


def test_linear_cka_properties() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert abs(linear_cka(a, a) - 1) < 1e-9
    assert abs(linear_cka(a, 3.0 * a @ q + 2.0) - 1) < 1e-9, "invariant to rotation, isotropic scale, offset"
    assert linear_cka(a, torch.randn(200, 16, generator=g)) < 0.2


def test_distortion_splits_own_and_other_samples() -> None:
    base = torch.zeros(6, 2)
    moved = base.clone()
    moved[:2] += torch.tensor([3.0, 4.0])  # client 0's two samples moved by 5
    d = distortion(moved, base, torch.tensor([0, 0, 1, 1, 2, 2]), client=0)
    assert d["distortion_own"] == 5.0 and d["distortion_others"] == 0.0


def test_distortion_is_zero_for_lp_and_positive_for_ft(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    summary = run_experiment(load_config(quickstart, tiny), tmp_path)
    m = summary["methods"]
    assert m["lp"]["distortion_own"] == 0.0 and m["lp"]["cka_own"] == 1.0
    assert m["ft"]["distortion_own"] > 0 and m["lp-ft"]["distortion_own"] > 0
    rows = list(csv.DictReader((tmp_path / "clients.csv").open()))
    own = {(r["method"], r["client"]): float(r["distortion_own"]) for r in rows}
    for client in {r["client"] for r in rows}:
        assert own["lp", client] == 0.0 < own["ft", client], f"client {client}: LP 0, FT > 0"
