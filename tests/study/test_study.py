"""pftlab study: tables match the runs, a rerun recomputes nothing, an interrupted sweep resumes to the same tables."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.experiment.checkpoint import stage_seconds
from pftlab.study.plan import CONFIGS, default_methods
from pftlab.study.report import drop_section, global_drop, measured, table_markdown, table_rows, verdict, winner
from pftlab.study.run import Request, run_study
from pftlab.study.sweep import study_lock

METHODS = ("ft", "lp-ft", "proximal-ft", "sparse-ft")
SMALL = ("runtime.threads=1", "data.num_clients=3", "federated.rounds=2", "personalize.epochs=2")


def _study(out: Path, **kw) -> dict:
    args = {"quick": True, "seeds": (0, 1), "benchmarks": ("digits-quick",), "methods": METHODS, "overrides": SMALL}
    return run_study(Request(out, progress=False, **{**args, **kw}))


def _tables(out: Path) -> tuple[bytes, bytes]:
    return (out / "table.md").read_bytes(), (out / "table.csv").read_bytes()


def test_tables_match_runs_rerun_reuses_and_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "study"
    record = _study(out)
    assert (record["cells_computed"], record["cells_reused"]) == (2, 0)
    for name in ("table.md", "table.csv", "report.md", "study.json", "figures/digits-quick.png"):
        assert (out / name).is_file(), name

    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [(r["benchmark"], r["method"]) for r in rows] == [("digits-quick", m) for m in ["global-model", *METHODS]]
    md_rows = [line for line in (out / "table.md").read_text().splitlines() if line.startswith("| digits-quick |")]
    assert len(md_rows) == len(METHODS) + 1
    summaries = [json.loads((out / "runs" / "digits-quick" / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    for r in rows:
        for metric in ("local", "global", "worst", "average", "average3", "c_std", "distortion_own"):
            values = np.array([s["methods"][r["method"]][metric] for s in summaries])
            assert float(r[f"{metric}_mean"]) == pytest.approx(values.mean(), abs=1e-4)
            assert float(r[f"{metric}_std"]) == pytest.approx(values.std(ddof=1), abs=1e-4)
    lpft = next(r for r in rows if r["method"] == "lp-ft")
    assert f"{float(lpft['global_mean']):.2f} ± {float(lpft['global_std']):.2f}" in md_rows[2]

    first = _tables(out)
    for s in (0, 1):  # the study fixes the thread count of its cells unless --set says otherwise (here 1)
        assert json.loads((out / "runs" / "digits-quick" / f"seed{s}" / "run.json").read_text())["threads"] == 1
    # cells without a manifest (published before manifests existed): --report-only reads their
    # summaries as they are, computes nothing, and says so; the tables are the same
    shutil.copytree(out / "runs", tmp_path / "bare" / "runs")
    for manifest in (tmp_path / "bare" / "runs").rglob("manifest.json"):
        manifest.unlink()
    bare = _study(tmp_path / "bare", report_only=True)
    assert (bare["cells_computed"], bare["cells_reused"], bare["report_only"]) == (0, 2, True)
    assert _tables(tmp_path / "bare") == first
    assert "Written with `--report-only`" in (tmp_path / "bare" / "report.md").read_text()
    assert not (tmp_path / "bare" / "runs" / "digits-quick" / "seed0" / "manifest.json").exists()  # nothing ran
    (tmp_path / "bare" / "runs" / "digits-quick" / "seed1" / "summary.json").unlink()
    with pytest.raises(UserError, match=r"no readable .*seed1/summary\.json"):
        _study(tmp_path / "bare", report_only=True)  # the only benchmark lacks a cell: nothing to report
    # published cells (summary, config, run.json, manifest) verify and are reused in an empty DIR
    script = Path(__file__).resolve().parents[2] / "scripts" / "publish_study.sh"
    subprocess.run(["bash", str(script), str(out), str(tmp_path / "published")], check=True, capture_output=True)
    shutil.copytree(tmp_path / "published" / "runs", tmp_path / "elsewhere" / "runs")
    elsewhere = _study(tmp_path / "elsewhere")
    assert (elsewhere["cells_computed"], elsewhere["cells_reused"]) == (0, 2)
    assert _tables(tmp_path / "elsewhere") == first
    with study_lock(out):  # another study is computing in DIR: a report-only rerun still works
        again = _study(out)
    assert (again["cells_computed"], again["cells_reused"]) == (0, 2)
    assert _tables(out) == first

    (out / "runs" / "digits-quick" / "seed1" / "summary.json").unlink()  # killed before the cell finished
    with study_lock(out), pytest.raises(UserError, match=rf"is being computed by pftlab study pid {os.getpid()}"):
        _study(out)  # ...but one with a cell to compute stops before computing anything
    assert not (out / "runs" / "digits-quick" / "seed1" / "summary.json").exists()
    resumed = _study(out)
    assert (resumed["cells_computed"], resumed["cells_reused"]) == (1, 1)
    assert _tables(out) == first

    # one digit of a finished cell's summary.json edited: the cell does not verify and is computed
    # again, so the edit never reaches the table
    cell = out / "runs" / "digits-quick" / "seed0" / "summary.json"
    text = cell.read_text()
    at = text.index('"local": ') + len('"local": ')
    cell.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])
    edited = _study(out)
    assert (edited["cells_computed"], edited["cells_reused"]) == (1, 1)
    assert _tables(out) == first and cell.read_text() == text

    changed = _study(out, overrides=(*SMALL, "personalize.epochs=3"))  # another config: nothing is stale-reused
    assert changed["cells_computed"] == 2


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pftlab.experiment import runner

    reference = tmp_path / "reference"
    _study(reference)
    real, calls = runner.run_experiment, []

    def dies_on_second_cell(cfg, out, *args, **kwargs):
        calls.append(cfg.seed)
        summary = real(cfg, out, *args, **kwargs)
        if len(calls) == 2:
            (out / "summary.json").unlink()  # as if killed before its last write
            raise KeyboardInterrupt
        return summary

    monkeypatch.setattr(runner, "run_experiment", dies_on_second_cell)
    out = tmp_path / "study"
    with pytest.raises(KeyboardInterrupt):
        _study(out)
    assert not (out / "table.md").exists()
    monkeypatch.setattr(runner, "run_experiment", real)
    resumed = _study(out)
    assert (resumed["cells_computed"], resumed["cells_reused"]) == (1, 1)
    assert _tables(out) == _tables(reference)
    # the resumed cell reused its global checkpoint: its compute still counts the training that made it
    info = json.loads((out / "runs" / "digits-quick" / "seed1" / "run.json").read_text())
    trained = stage_seconds(Path(info["global_checkpoint"]))
    assert info["resumed"]["reused_results"]["global"] == 1 and trained > 0
    assert info["seconds"]["global"] == pytest.approx(info["resumed"]["seconds_this_run"]["global"] + trained, abs=2e-3)


def test_missing_data_skips_the_benchmark_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path / "no-data"))
    out = tmp_path / "study"
    record = _study(out, benchmarks=("heart", "digits-quick"), seeds=(0,), overrides=("runtime.threads=1",))
    assert record["benchmarks"] == ["digits-quick"]
    assert "heart" in record["skipped"] and "missing" in record["skipped"]["heart"]
    assert "- heart: data files missing" in (out / "report.md").read_text()
    assert {r["benchmark"] for r in csv.DictReader((out / "table.csv").open())} == {"digits-quick"}


def test_study_keeps_its_cache_inside_the_study_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PFTLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    out = tmp_path / "study"
    _study(out, seeds=(0,))
    assert list((out / "cache" / "global").glob("*.safetensors"))
    assert (out / "cache" / "decoded").resolve() == (tmp_path / "user-cache" / "pftlab" / "decoded").resolve()


def _agg(means: dict[str, tuple[float, float, float]]) -> dict:
    """An aggregate with given (local, global, worst) means per method and std 0.1."""
    methods = {}
    for m, (loc, glo, wor) in means.items():
        values = {
            "local": loc,
            "global": glo,
            "worst": wor,
            "average": (loc + glo) / 2,
            "average3": (loc + glo + wor) / 3,
        }
        methods[m] = {k: {"mean": v, "std": 0.1} for k, v in values.items()}
    return {"benchmark": "x", "num_clients": 3, "seeds": [0, 1, 2], "methods": methods}


def test_verdict_reads_the_pattern_from_the_numbers() -> None:
    study_like = _agg(
        {
            "global-model": (70, 90, 80),  # a reference, never a winner
            "ft": (80, 60, 40),
            "proximal-ft": (80, 70, 50),
            "sparse-ft": (80, 65, 45),
            "lp-ft": (80, 75, 55),
            "wise-ft": (70, 80, 60),
        }
    )
    v = verdict(study_like)
    assert v["global"].method == "wise-ft" and v["global"].clear
    assert v["pattern"]["holds"] and v["pattern"]["strongest_baseline"].method == "proximal-ft"
    assert v["pattern"]["lpft_minus_ft_global"] == pytest.approx(15)
    reversed_ = verdict(_agg({"ft": (80, 75, 55), "proximal-ft": (80, 60, 40), "lp-ft": (80, 74.95, 55)}))
    assert not reversed_["pattern"]["holds"]
    assert not reversed_["pattern"]["best_global"].clear  # a 0.05 lead within a 0.1 std
    assert verdict(_agg({"ft": (1, 2, 3), "lp-ft": (1, 2, 3)}))["pattern"] is None


def test_a_lead_is_clear_when_its_paired_interval_over_seeds_excludes_zero() -> None:
    """Per-seed values pair the winner with the runner-up: a small lead that holds on every seed is
    clear although each method's seed std is larger; a larger lead that flips sign is not."""
    agg = _agg({"ft": (80, 60, 40), "lp-ft": (80, 60.3, 40)})
    agg["methods"]["ft"]["global"] |= {"values": [55.0, 60.0, 65.0], "std": 5.0}
    agg["methods"]["lp-ft"]["global"] |= {"values": [55.3, 60.3, 65.3], "std": 5.0}
    assert winner(agg, "global", ["ft", "lp-ft"]).clear  # +0.3 on every seed
    agg["methods"]["lp-ft"]["global"] |= {"values": [59.0, 56.0, 65.9], "mean": 60.3}
    assert not winner(agg, "global", ["ft", "lp-ft"]).clear  # +4, -4, +0.9: noise
    assert "within noise" in winner(agg, "global", ["ft", "lp-ft"]).text()


def test_baselines_distortion_is_left_blank_post_hoc_methods_keep_theirs() -> None:
    """FedPer / FedRep / Ditto never started from the FedAvg model their distortion is measured against."""
    agg = _agg({"global-model": (70, 80, 60), "ft": (90, 60, 30), "fedper": (91, 50, 20)})
    for m, dist in (("ft", 1.234), ("fedper", 7.5), ("global-model", 0.0)):
        agg["methods"][m]["distortion_own"] = {"mean": dist, "std": 0.0}
    assert measured("ft", "distortion_own") and measured("fedper", "local")
    assert not measured("fedper", "distortion_own") and not measured("ditto", "cka_others")
    assert not measured("fedper@cross-site", "distortion_own") and measured("ft@cross-site", "distortion_own")
    rows = {line.split(" | ")[1]: line for line in table_markdown({"x": agg}).splitlines() if line.startswith("| x |")}
    assert rows["ft"].endswith("| 1.234 ± 0.000 |") and rows["fedper"].endswith("|  |")
    csv_rows = {r["method"]: r for r in table_rows({"x": agg})}
    assert csv_rows["ft"]["distortion_own_mean"] == 1.234 and csv_rows["fedper"]["distortion_own_mean"] == ""


def test_global_drop_splits_fts_loss_into_head_and_features() -> None:
    agg = _agg({"global-model": (70, 80, 60), "ft": (90, 60, 30), "lp": (88, 65, 35), "lp-ft": (89, 63, 33)})
    for m, dist in (("ft", 1.2), ("lp-ft", 0.4), ("lp", 0.0), ("global-model", 0.0)):
        agg["methods"][m]["distortion_own"] = {"mean": dist, "std": 0.0}
    d = global_drop(agg)
    assert d is not None
    assert d["ft_drop"] == pytest.approx(20) and d["head_share"] == pytest.approx(0.75)  # (80 - 65) / (80 - 60)
    text = drop_section({"b": agg})
    assert "| b | 80.00 | 65.00 | 60.00 | 63.00 | 0.75 | 1.200 | 0.400 |" in text
    assert "less than FT (distortion_own) on 1 of 1" in text and "at least half as much on 1 (b)" in text
    assert "does not split FT's own loss" in text  # the ratio compares two heads, and says so
    features = _agg({"global-model": (70, 80, 60), "ft": (90, 60, 30), "lp": (88, 79, 35), "lp-ft": (89, 63, 33)})
    assert "on none of them" in drop_section({"b": features})  # LP kept 19 of 20 points: the features' loss

    flat = _agg({"global-model": (70, 80, 60), "ft": (90, 79.5, 30), "lp": (88, 70, 35), "lp-ft": (89, 79, 33)})
    assert np.isnan(global_drop(flat)["head_share"])  # FT lost half a point: no share to speak of
    assert "FT drops < 1 point" in drop_section({"b": flat})
    assert global_drop(_agg({"ft": (1, 2, 3), "lp-ft": (1, 2, 3)})) is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--methods", "nope"], "--methods: unknown"),
        (["--benchmarks", "nope"], "--benchmarks: unknown"),
        (["--seeds", "1", "1"], "--seeds must be distinct"),
        (["--set", "personalize.epochs=0"], "config: personalize.epochs"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture, args, says) -> None:
    assert main(["study", "--out", str(tmp_path / "s"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "s" / "runs").exists()


def test_check_says_what_would_run_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    _study(out, seeds=(0,))
    args = ["study", "--out", str(out), "--quick", "--seeds", "0", "1", "--benchmarks", "digits-quick"]
    assert main([*args, "--methods", *METHODS, *(f"--set={s}" for s in SMALL), "--check"]) == 0
    assert "study OK: 2 cells, 1 finished (would be reused), 1 to run" in capsys.readouterr().out
    assert not (out / "runs" / "digits-quick" / "seed1").exists()


@pytest.mark.study
def test_quick_study_runs_every_benchmark_and_method(tmp_path: Path) -> None:
    """The whole `pftlab study --quick` (minutes): opt in with `pytest -m study`."""
    out = tmp_path / "quick"
    req = Request(out, quick=True, overrides=("runtime.threads=1",), progress=False)
    record = run_study(req)
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert len(rows) == len(record["benchmarks"]) * (len(default_methods()) + 1)
    assert len(record["benchmarks"]) + len(record["skipped"]) == len(list(CONFIGS.glob("*.toml")))
    for name in record["benchmarks"]:
        assert (out / "figures" / f"{name}.png").is_file()
    again = run_study(req)
    assert again["cells_computed"] == 0
    shutil.rmtree(out / "runs")
