"""scripts/decisive_study.sh: the study command each part runs, with a stand-in `pftlab` that records it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "decisive_study.sh"


def run_part(tmp_path: Path, *parts: str, study_args: str | None = None) -> tuple[int, list[list[str]], str]:
    """Run the script with a `pftlab` on PATH that writes its arguments, one call per line, and does nothing."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pftlab"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\x1f" "$@" >> {calls}\necho >> {calls}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "STUDY_ARGS"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    if study_args is not None:
        env["STUDY_ARGS"] = study_args
    out = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "root"), *parts], cwd=REPO, env=env, capture_output=True, text=True
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return out.returncode, [line.rstrip("\x1f").split("\x1f") for line in lines], out.stderr


def option(args: list[str], name: str) -> list[str]:
    """The values of the last `name` option (argparse keeps the last)."""
    i = len(args) - 1 - args[::-1].index(name)
    values = []
    for a in args[i + 1 :]:
        if a.startswith("--"):
            break
        values.append(a)
    return values


def test_cifar10c_15_is_cifar10c_at_15_clients_with_five_seeds_at_one_thread(tmp_path: Path) -> None:
    rc, calls, err = run_part(tmp_path, "main/cifar10c-15")
    assert rc == 0, err
    (args,) = calls
    assert args[:2] == ["study", "--no-progress"] and option(args, "--out") == [str(tmp_path / "root/main/cifar10c-15")]
    assert option(args, "--benchmarks") == ["cifar10c"] and option(args, "--seeds") == ["0", "1", "2", "3", "4"]
    assert "data.num_clients=15" in args and "runtime.threads=1" in args
    assert len(option(args, "--methods")) == 14


def test_study_args_are_appended_so_a_lane_runs_some_seeds(tmp_path: Path) -> None:
    rc, calls, err = run_part(tmp_path, "main/cifar10c-15", "main/fmnist-dirichlet", study_args="--seeds 1 3")
    assert rc == 0, err
    assert [option(args, "--seeds") for args in calls] == [["1", "3"], ["1", "3"]]
    assert [args[-2:] for args in calls] == [["1", "3"], ["1", "3"]]  # last, so they win over the part's own


def test_the_full_cifar10c_stays_runnable_by_name_but_not_by_default(tmp_path: Path) -> None:
    rc, calls, err = run_part(tmp_path, "main/cifar10c")
    assert rc == 0, err
    assert option(calls[0], "--seeds") == ["0", "1", "2"] and "data.num_clients=15" not in calls[0]
    script = SCRIPT.read_text()
    main_line = next(line for line in script.splitlines() if line.startswith("MAIN=("))
    assert "main/cifar10c-15" in main_line and "main/cifar10c " not in main_line


@pytest.mark.parametrize("part", ["nope", "cifar10c-15"])  # main/<name> is passed on: pftlab names benchmarks
def test_an_unknown_part_is_refused_naming_the_parts(tmp_path: Path, part: str) -> None:
    rc, calls, err = run_part(tmp_path, part)
    assert rc == 2 and calls == []
    assert f"unknown part {part}" in err and "main/cifar10c-15" in err and "main/cifar10c" in err
