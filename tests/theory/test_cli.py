"""`pftlab theory ...`: every subcommand writes its CSV and PNG; user mistakes raise UserError."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pftlab.core.errors import UserError
from pftlab.theory.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _check(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == PNG
    if path.suffix == ".csv":
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert rows


@pytest.mark.parametrize(
    ("argv", "files"),
    [
        (["onestep", "--lambda", "0.7"], ["onestep.csv", "onestep.png"]),
        (
            ["sweep", "--setting", "covariate", "--lambdas", "0.5", "1", "--steps", "1", "3", "--step-size", "0.3"],
            ["sweep_covariate.csv", "sweep_covariate_heatmap.png", "sweep_covariate_losses.png"],
        ),
        (
            ["threshold", "--grid", "6", "--lambda-max", "2", "--steps", "2"],
            ["threshold_covariate.csv", "threshold_covariate.png", "threshold_covariate.json"],
        ),
        (
            ["threshold", "--setting", "concept", "--grid", "5", "--step-size", "0.7", "--lambda-max", "1"],
            ["threshold_concept.csv", "threshold_concept.png"],
        ),
        (
            [
                *("relu", "--settings", "concept", "--lambdas", "0.5", "1", "--steps", "1", "2"),
                *("--step-size", "0.3", "--n-train", "100", "--n-eval", "200"),
            ],
            ["relu.csv", "relu.png"],
        ),
    ],
)
def test_subcommands_write_csv_and_png(
    argv: list[str], files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 0
    for name in files:
        _check(tmp_path / name)
    assert "wrote" in capsys.readouterr().out


def test_onestep_reports_the_formula_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onestep", "--out", str(tmp_path)]) == 0
    assert "formula check: OK" in capsys.readouterr().out


def test_threshold_prints_lambda_star(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["threshold", "--eps", "1", "--step-size", "0.5", "--steps", "5", "--lambda-min", "1", "--lambda-max", "2.5"]
    assert main([*argv, "--grid", "16", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "client mean: lambda* = 1.74" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["sweep", "--setting", "label"],
        ["sweep", "--lambdas", "-1"],
        ["sweep", "--steps", "x"],
        ["sweep", "--steps", "-2"],
        ["sweep", "--step-size", "0"],
        ["threshold", "--lambda-min", "3", "--lambda-max", "1"],
        ["threshold", "--grid", "1"],
        ["threshold", "--steps", "0"],
        ["onestep", "--d", "3"],
        ["onestep", "--C", "1"],
        ["onestep", "--head-norm", "nan"],
        ["relu", "--n-train", "0"],
        ["relu", "--settings", "label"],
    ],
)
def test_bad_arguments_raise_user_error(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        main([*argv, "--out", str(tmp_path / "out")] if argv[:1] not in ([], ["bogus"]) else argv)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError):
        main(["onestep", "--out", str(f)])
