"""scripts/controls_report.py: the controls' cross-study table pairs clients across its three studies."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from pftlab.study.decision import read_clients

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "study" / "decisive" / "controls"


@pytest.mark.skipif(not (PUBLISHED / "ft-10" / "study.json").exists(), reason="the controls are not published")
def test_the_table_is_the_paired_mean_over_seeds(tmp_path: Path, script) -> None:
    for study in ("swaps", "ft-10", "lp-at-ft-lr"):
        shutil.copytree(PUBLISHED / study / "runs", tmp_path / study / "runs")
    assert script("controls_report").main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    # LP-FT minus FT for 10 epochs, digits-quick, by hand: each seed's mean over clients, then the mean over seeds
    per_seed = []
    for seed in range(5):
        a = read_clients(tmp_path / "swaps" / "runs" / "digits-quick" / f"seed{seed}" / "clients.csv")["lp-ft"]
        b = read_clients(tmp_path / "ft-10" / "runs" / "digits-quick" / f"seed{seed}" / "clients.csv")["ft"]
        assert np.array_equal(a["client"], b["client"])  # the same clients, in the same order
        per_seed.append(np.mean(a["global_balanced"] - b["global_balanced"]))
    row = next(line for line in text.splitlines() if line.startswith("| LP-FT − FT 10 (equal FT epochs)"))
    assert row.split(" | ")[2].lstrip("*").startswith(f"{np.mean(per_seed):+.2f} [")
    assert "### heart (seeds 0, 1, 2, 3, 4)" in text and "### digits-quick (seeds 0, 1, 2, 3, 4)" in text
    # Holm's family is the tested cells: a cell without a spread over seeds ([–, –]) is left out of the count
    section = text.split("### digits-quick")[1].split("\n### ")[0]
    cells = [c for line in section.splitlines() if line.startswith("| ") and "−" in line for c in line.split(" | ")[1:]]
    untested = sum("[–, –]" in c for c in cells)
    assert untested > 0 and f"Holm over the {len(cells) - untested} tested comparisons" in section
