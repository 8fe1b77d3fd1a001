"""runtime.threads = 0 takes the cores other processes leave free; a configured count is kept; a
resumed run keeps the count its saved results used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pftlab.bench import busy_neighbour
from pftlab.core import threads
from pftlab.core.errors import UserError
from pftlab.core.threads import ThreadChoice, busy_cores, cgroup_quota, choose_threads, cpu_ticks, sample_busy


@pytest.fixture(autouse=True)
def _sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py sets $PFTLAB_THREADS for the whole suite; these tests are about auto without it."""
    monkeypatch.delenv(threads.ENV, raising=False)


STAT = """cpu  400 0 100 1000 20 0 0 5 0 0
cpu0 200 0 50 500 10 0 0 5 0 0
cpu1 200 0 50 500 10 0 0 0 0 0
intr 12345
"""


def test_cpu_ticks_sums_the_cores_asked_for_and_counts_steal_as_busy() -> None:
    assert cpu_ticks(STAT, None) == (200 + 50 + 500 + 10 + 5 + 200 + 50 + 500 + 10, 510 + 510)
    assert cpu_ticks(STAT, {1}) == (760, 510)


def test_busy_cores_leaves_out_this_process_own_time() -> None:
    # 2 cores observed for 1 s each (100 ticks/s): 150 of 200 ticks busy = 1.5 cores
    assert busy_cores((0, 0), (200, 50), cores=2, own_seconds=0.0, tick=0.01) == pytest.approx(1.5)
    # of which this process used 1 core-second: 0.5 cores busy elsewhere
    assert busy_cores((0, 0), (200, 50), cores=2, own_seconds=1.0, tick=0.01) == pytest.approx(0.5)
    assert busy_cores((0, 0), (200, 200), cores=2, own_seconds=0.3, tick=0.01) == 0.0  # never negative
    assert busy_cores((5, 5), (5, 5), cores=2, own_seconds=0.0, tick=0.01) == 0.0  # no ticks passed


@pytest.mark.parametrize(("busy", "expected"), [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (1.7, 1), (3.0, 1)])
def test_auto_takes_the_free_cores_and_at_least_one(
    monkeypatch: pytest.MonkeyPatch, busy: float, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: busy)
    choice = choose_threads(0)
    assert choice == ThreadChoice(expected, 2, auto=True, busy_elsewhere=busy)
    assert choice.reduced is (expected < 2)
    assert choice.rule.startswith(f"auto: {expected} of 2 usable cores free")


def test_a_configured_count_is_kept_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: pytest.fail("a configured count samples nothing"))
    choice = choose_threads(3, saved=1)
    assert choice.threads == 3 and not choice.auto and not choice.reduced
    assert choice.rule.startswith("configured: 3 of")


def test_auto_resumes_with_the_saved_count_if_this_machine_has_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: 1.0)  # busy now: 1 free core
    assert choose_threads(0, saved=2) == ThreadChoice(2, 2, auto=True, resumed=True)
    assert choose_threads(0, saved=8).threads == 1  # more than this machine has: sampled afresh


def test_pftlab_threads_stands_in_for_auto_and_a_configured_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: pytest.fail("$PFTLAB_THREADS samples nothing"))
    monkeypatch.setenv(threads.ENV, "3")
    choice = choose_threads(0, saved=1)
    assert choice.threads == 3 and choice.from_env and not choice.reduced
    assert choice.rule.startswith("$PFTLAB_THREADS: 3 of")
    assert choose_threads(2).threads == 2 and not choose_threads(2).from_env
    for bad in ("0", "two", "-1", "2000"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(UserError, match=r"\$PFTLAB_THREADS=.*whole number of threads from 1 to 1024"):
            choose_threads(0)


def test_the_cgroup_quota_caps_the_usable_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_quota(cpu_max) == 1.5
    cpu_max.write_text("max 100000\n")
    assert cgroup_quota(cpu_max) is None
    assert cgroup_quota(tmp_path / "absent") is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_quota", lambda: 1.5)
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: 0.0)
    assert choose_threads(0).threads == 1


def test_without_proc_stat_auto_is_every_usable_core(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(threads, "STAT", tmp_path / "no-such-stat")
    assert sample_busy(0.0) is None
    monkeypatch.setattr(threads, "sample_busy", sample_busy)  # the real one (conftest quiets it)
    choice = choose_threads(0)
    assert choice.threads == threads.usable_cores() and choice.busy_elsewhere is None
    assert "no /proc/stat" in choice.rule


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="samples /proc/stat")
def test_a_busy_neighbour_is_seen() -> None:
    """One process spinning beside us: at least half a core shows as busy (more if the machine is loaded)."""
    neighbour = busy_neighbour()  # returned once its CPU time has ticked: it is running
    try:
        busy = sample_busy(0.5)
    finally:
        neighbour.kill()
        neighbour.wait()
    assert busy is not None and busy >= 0.5
