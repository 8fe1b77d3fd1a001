"""The public API: `pftlab.run` returns typed Results that agree with the run directory's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import QUICKSTART, TINY

import pftlab


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> pftlab.Results:
    out = tmp_path_factory.mktemp("api") / "run"
    return pftlab.run(QUICKSTART, out, overrides=[*TINY, "runtime.progress=false"], quiet=True)


def test_results_hold_what_the_run_directory_holds(results: pftlab.Results) -> None:
    summary = json.loads((results.run_dir / "summary.json").read_text())
    assert results.summary == summary
    assert sorted(results.methods) == ["ft", "global-model", "lp", "lp-ft"]
    n = summary["num_clients"]
    for method in results.methods:
        a = results.matrices[method]
        assert a.shape == (n, n)
        # local is the mean of the diagonal, global_balanced the mean off it (metric definitions)
        assert results.metric(method, "local") == pytest.approx(np.diag(a).mean(), abs=1e-3)
        off = a[~np.eye(n, dtype=bool)].reshape(n, n - 1)
        assert results.metric(method, "global_balanced") == pytest.approx(off.mean(), abs=1e-3)
    rows = [r for r in results.clients if r["method"] == "ft"]
    assert [r["client"] for r in rows] == list(range(n))
    assert all(isinstance(r["local"], float) and isinstance(r["n_test"], int) for r in rows)


def test_to_pandas_is_clients_csv(results: pftlab.Results) -> None:
    frame = results.to_pandas()
    assert len(frame) == len(results.clients) == 4 * results.summary["num_clients"]
    assert frame.groupby("method")["local"].mean()["lp"] == pytest.approx(results.metric("lp", "local"), abs=1e-3)


def test_a_config_object_runs_and_loads_the_same(results: pftlab.Results, tmp_path: Path) -> None:
    cfg = pftlab.load_config(QUICKSTART, [*TINY, "runtime.progress=false"])
    again = pftlab.run(cfg, tmp_path / "again", quiet=True)
    assert again.summary == results.summary  # same config and seed, same numbers
    assert pftlab.Results.load(tmp_path / "again").summary == results.summary


def test_unknown_metric_and_missing_run_are_one_line_user_errors(results: pftlab.Results, tmp_path: Path) -> None:
    with pytest.raises(pftlab.UserError, match="no metric 'nope'"):
        results.metric("ft", "nope")
    with pytest.raises(pftlab.UserError, match="no finished run"):
        pftlab.Results.load(tmp_path / "nothing")


def test_an_edited_run_directory_is_refused_by_load(results: pftlab.Results, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(results.run_dir, copy)
    assert pftlab.Results.load(copy).summary == results.summary
    matrix = copy / "matrices" / "ft.csv"
    matrix.write_text(matrix.read_text().replace("client0,", "client0,1", 1))
    with pytest.raises(pftlab.UserError, match=r"does not verify: matrices/ft.csv is missing or changed"):
        pftlab.Results.load(copy)
