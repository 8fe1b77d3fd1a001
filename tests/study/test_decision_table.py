"""scripts/decision_table.py: the Decision tables of docs/study/README.md are what the published cells give."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "docs" / "study" / "README.md"


HEART = README.parent / "decisive" / "heart"


def copy_heart(tmp_path: Path) -> None:
    """The heart study's cells (not its figures or weights) under tmp_path/decisive/heart."""
    shutil.copytree(
        HEART, tmp_path / "decisive" / "heart", ignore=shutil.ignore_patterns("*.png", "*.html", "*.safetensors")
    )


def test_the_published_tables_are_what_their_cells_give(script) -> None:
    decision_table = script("decision_table")
    text = README.read_text()
    assert text.count("<!-- decision-table ") >= 2
    assert decision_table.refresh(text, README.parent) == text
    assert decision_table.main(["--check", str(README)]) == 0


def test_a_mistyped_number_is_found_and_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str], script) -> None:
    decision_table = script("decision_table")
    copy_heart(tmp_path)
    marker = "<!-- decision-table decisive/heart heart local global-model fedrep -->"
    right = "\n".join(
        decision_table.table(
            decision_table.comparisons(tmp_path / "decisive" / "heart", "heart", "local"), ["global-model", "fedrep"]
        )
    )
    # LP-FT minus the global model: the cells' own numbers, by hand from report.md's first row
    assert "| global model | +0.08 [−0.66, 0.82] | −2.08 [−2.96, −1.20] | −1.00 [−1.47, −0.53] |" in right
    assert right.splitlines()[2].endswith("| LP-FT worse on global and average |")
    wrong = right.replace("+0.08", "+0.09")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{marker}\n{wrong}\n\nafter\n")
    assert decision_table.main(["--check", str(readme)]) == 1
    assert "+0.09" in capsys.readouterr().err
    assert decision_table.main([str(readme)]) == 0
    assert readme.read_text() == f"# x\n\n{marker}\n{right}\n\nafter\n"
    assert decision_table.main(["--check", str(readme)]) == 0


def test_a_regime_row_keeps_its_labels_and_takes_its_cells_numbers(tmp_path: Path, script) -> None:
    decision_table = script("decision_table")
    copy_heart(tmp_path)
    header = "| stage | benchmark | local choice | cross-site choice |\n|---|---|---|---|"
    readme = tmp_path / "README.md"
    readme.write_text(
        f"<!-- decision-rows ft rules decisive/heart:heart -->\n{header}\n| FedAvg | heart | 1 / 2 | 3 / 4 |\n"
    )
    assert decision_table.main(["--check", str(readme)]) == 1
    assert decision_table.main([str(readme)]) == 0
    # LP-FT minus FT on heart, local / global_balanced per rule: the main table's FT row (local choice)
    row = readme.read_text().splitlines()[3]
    assert row.startswith("| FedAvg | heart | −1.17 [−2.19, −0.15] / +1.14 [−0.36, 2.64] | ")
    by_metric = readme.read_text().replace("rules decisive", "metrics decisive")
    readme.write_text(by_metric)
    decision_table.main([str(readme)])
    assert readme.read_text().splitlines()[3].startswith("| FedAvg | heart | −1.17 [−2.19, −0.15] / ")
    readme.write_text(by_metric.replace("decisive/heart:heart", "decisive/heart:heart decisive/heart:heart"))
    with pytest.raises(SystemExit, match="names 2 studies for 1 rows"):
        decision_table.main([str(readme)])


def test_a_difference_within_a_study_is_the_paired_t_over_seeds(tmp_path: Path, script) -> None:
    import numpy as np

    from pftlab.study.decision import read_clients

    decision_table = script("decision_table")
    copy_heart(tmp_path)
    readme = tmp_path / "README.md"
    header = "| A − B | local | global_balanced |\n|---|---|---|"
    readme.write_text(f"<!-- decision-diffs decisive/heart heart ft:lp -->\n{header}\n| FT − LP | x | y |\n")
    assert decision_table.main([str(readme)]) == 0
    row = readme.read_text().splitlines()[3]
    # by hand: each seed's mean over clients of FT - LP (local choice), then the mean over the 10 seeds
    runs = tmp_path / "decisive" / "heart" / "runs" / "heart"
    per_seed = []
    for s in range(10):
        t = read_clients(runs / f"seed{s}" / "clients.csv")
        per_seed.append(np.mean(t["ft"]["local"] - t["lp"]["local"]))
    assert row.startswith(f"| FT − LP | {np.mean(per_seed):+.2f} [".replace("-", "−"))
    assert "worse" not in row and "better" not in row  # not LP-FT's row: no verdict
    readme.write_text(f"<!-- decision-diffs decisive/heart heart ft:lpft -->\n{header}\n| FT − LP | x | y |\n")
    with pytest.raises(SystemExit, match="has no ft or no lpft under the local choice"):
        decision_table.main([str(readme)])


def test_the_verdict_groups_metrics_in_order(script) -> None:
    verdict = script("decision_table").verdict
    nothing = {"local": "no difference", "global_balanced": "no difference", "average_balanced": "no difference"}
    assert verdict(nothing) == "no difference"
    mixed = {"local": "worse", "global_balanced": "better", "average_balanced": "better"}
    assert verdict(mixed) == "LP-FT worse on local, better on global and average"
    assert verdict({**nothing, "global_balanced": "worse"}) == "LP-FT worse on global"


def test_a_bad_marker_says_what_is_allowed(tmp_path: Path, script) -> None:
    decision_table = script("decision_table")
    heart = HEART
    with pytest.raises(SystemExit, match=r"no comparison with lpft; methods: global-model, ft, lp"):
        decision_table.table(decision_table.comparisons(heart, "heart", "local"), ["lpft"])
    with pytest.raises(SystemExit, match=r"has benchmarks \['heart'\] and rules \['local', 'cross-site'\]"):
        decision_table.comparisons(heart, "digits", "local")
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match=re.escape("no <!-- decision-table|rows|diffs|controls")):
        decision_table.main([str(readme)])


def test_a_controls_row_is_the_controls_reports_row(tmp_path: Path, script) -> None:
    decision_table = script("decision_table")
    controls = README.parent / "decisive" / "controls"
    for study in ("swaps", "ft-10", "lp-at-ft-lr"):
        shutil.copytree(controls / study / "runs", tmp_path / "c" / study / "runs")
    readme = tmp_path / "README.md"
    header = "| A − B | local | global_balanced | distortion_own |\n|---|---|---|---|"
    readme.write_text(
        f"<!-- decision-controls c digits-quick lp-ft-10 head -->\n{header}\n| mine | 1 | 2 | 3 |\n| h | 4 | 5 | 6 |\n"
    )
    assert decision_table.main([str(readme)]) == 0
    rows = readme.read_text().splitlines()[3:]
    # the same numbers as controls/report.md's rows (its own format: ASCII minus, a + on every bound)
    report = (controls / "report.md").read_text().split("### digits-quick")[1]
    theirs = next(line for line in report.splitlines() if line.startswith("| LP-FT − FT 10 (equal FT epochs) |"))
    assert rows[0].startswith("| mine | ")
    assert rows[0].split(" | ")[1:] == [
        c.replace("-", "−").replace("[+", "[").replace(", +", ", ") for c in theirs.split(" | ")[1:]
    ]
    assert rows[1].endswith("| +0.00 (not tested) |")  # the head's part moves no feature: 0 in every seed
    readme.write_text(f"<!-- decision-controls c digits-quick heads -->\n{header}\n| x | 1 | 2 | 3 |\n")
    with pytest.raises(SystemExit, match=r"no control row 'heads'; rows: whole, features, head, lp, ft-10"):
        decision_table.main([str(readme)])


def test_the_figure_draws_every_benchmark_the_same_way_twice(tmp_path: Path, script) -> None:
    decision_table = script("decision_table")
    copy_heart(tmp_path)
    marker = "<!-- decision-table decisive/heart heart local ft -->"
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    decision_table.figure(marker, tmp_path, one)
    decision_table.figure(marker, tmp_path, two)
    assert one.read_bytes() == two.read_bytes()  # no date or software in the bytes
    decision_table.figure("\n".join([marker] * 3), tmp_path, two)  # three benchmarks: three columns
    width = [int.from_bytes(p.read_bytes()[16:20], "big") for p in (one, two)]  # the PNG header's width
    assert width[1] > 1.5 * width[0]
    with pytest.raises(SystemExit, match="no decision-table marker to draw"):
        decision_table.figure("text", tmp_path, one)
