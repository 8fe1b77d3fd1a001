"""cifar100c end to end on a tiny stand-in in CIFAR-100's official binary layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import from_dict

CONFIG = Path(__file__).parents[2] / "configs" / "benchmarks" / "cifar100c.toml"
SMALL = (
    "data.num_clients=4",
    "data.samples_per_client=40",
    "data.labels=coarse",
    'data.corruptions=["fog", "contrast"]',
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_cifar: Callable[..., dict[str, np.ndarray]]) -> Path:
    tiny_cifar(tmp_path / "data", monkeypatch, n=200)
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path / "data"))
    return tmp_path


def test_cifar100c_runs_end_to_end_and_data_show_draws_it(
    root: Path, tiny: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sets = [a for s in (*tiny, *SMALL) for a in ("--set", s)]
    assert main(["run", str(CONFIG), *sets, "--out", str(root / "run")]) == 0
    assert (root / "run" / "summary.json").is_file()
    png = root / "clients.png"
    assert main(["data", "show", "cifar100c", *[a for s in SMALL for a in ("--set", s)], "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert png.is_file() and "fog-5" in out and "contrast-5" in out


def test_each_client_sees_its_corruption_and_fine_labels_have_100_classes(root: Path) -> None:
    cfg = from_dict({"data": {"benchmark": "cifar100c", "num_clients": 4, "samples_per_client": 40}})
    fed = build_federation(cfg.data, 0)
    assert fed.num_classes == 100 and [c.domain for c in fed.clients][:2] == ["gaussian_noise-5", "shot_noise-5"]
    coarse = build_federation(
        from_dict(
            {"data": {"benchmark": "cifar100c", "labels": "coarse", "num_clients": 4, "samples_per_client": 40}}
        ).data,
        0,
    )
    assert coarse.num_classes == 20 and coarse.partition_hash != fed.partition_hash


def test_cifar100c_without_its_archive_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path / "empty"))
    from pftlab.experiment.check import check_data

    with pytest.raises(UserError, match=r"cifar-100-binary\.tar\.gz .*'pftlab data fetch cifar100c'"):
        check_data(from_dict({"data": {"benchmark": "cifar100c"}}))
