"""How many threads torch's CPU work gets: the cores free to this process, measured, unless configured.

Why not every core: torch splits each operation over its threads and waits for the last one. With
another process busy on one of two cores, the thread that shares that core runs only in the
scheduler's time slices, and every operation waits for it: `pftlab bench --quick`'s work took 4.3x
as long with two threads beside one busy process, and 1.05x with one thread (docs/engine.md,
"Threads on a shared CPU"). OpenMP's spin-wait made it far worse (pftlab/__init__.py sets a passive
wait); this is what remains with a passive wait.

So `runtime.threads = 0` (auto) counts the cores this process may use (its CPU affinity, capped by
a cgroup CPU quota), samples /proc/stat for `WINDOW` seconds, and leaves out the cores other
processes kept busy (this process's own CPU time aside). A result's last digits depend on the
thread count, so the count is recorded in run.json and is part of every cache key; a run that
wants the same digits on any machine load sets `runtime.threads` to a number. Where /proc/stat
does not exist (macOS, Windows) auto is every usable core.

`$PFTLAB_THREADS=N` stands in for auto in every pftlab process that inherits it (a CI job, a
cluster's job script, a test suite whose numbers must not depend on the machine's load); a
configured `runtime.threads` still wins.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pftlab.core.errors import UserError

ENV = "PFTLAB_THREADS"
WINDOW = 0.2  # seconds of /proc/stat sampling; 20 clock ticks per core at the usual 100 Hz
STAT = Path("/proc/stat")
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and how it came about; `rule` is the sentence run.json and the log carry."""

    threads: int
    usable: int  # cores this process may use
    auto: bool  # chosen by pftlab (runtime.threads = 0), not configured
    busy_elsewhere: float | None = None  # cores other processes kept busy while sampled (None: not sampled)
    resumed: bool = False  # auto took the count the saved state of the run folder was computed with
    from_env: bool = False  # taken from $PFTLAB_THREADS

    @property
    def rule(self) -> str:
        if self.from_env:
            return f"${ENV}: {self.threads} of {self.usable} usable cores"
        if not self.auto:
            return f"configured: {self.threads} of {self.usable} usable cores"
        if self.resumed:
            return f"auto: {self.threads} of {self.usable} usable cores, as the run folder's saved results used"
        if self.busy_elsewhere is None:
            return f"auto: every usable core ({self.usable}; no /proc/stat to sample)"
        return (
            f"auto: {self.threads} of {self.usable} usable cores free "
            f"({self.busy_elsewhere:.1f} cores busy with other processes when sampled)"
        )

    @property
    def reduced(self) -> bool:
        """Auto chose fewer threads than usable cores: worth a line in the log."""
        return self.auto and self.threads < self.usable


def cgroup_quota(path: Path = CPU_MAX) -> float | None:
    """The cgroup v2 CPU quota in cores ('200000 100000' -> 2.0); None where there is none."""
    try:
        quota, period = path.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def affinity() -> set[int] | None:
    """The cores this process may run on; None where the platform does not say (macOS, Windows)."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def usable_cores() -> int:
    """Cores this process may run on: its affinity, capped by a cgroup quota (at least 1)."""
    cpus = affinity()
    n = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    quota = cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def cpu_ticks(text: str, cpus: set[int] | None) -> tuple[int, int]:
    """(all ticks, idle ticks) summed over the per-core lines of /proc/stat's `text` for `cpus`
    (None: every core). Idle is idle + iowait; steal (a hypervisor's other guests) counts as busy."""
    total = idle = 0
    for line in text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]
        total += sum(values)
        idle += values[3] + values[4]
    return total, idle


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int, own_seconds: float, tick: float) -> float:
    """Cores kept busy by other processes between two /proc/stat readings over `cores` cores:
    the busy share of the ticks times `cores`, less this process's own CPU seconds in the window."""
    total, idle = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return 0.0
    window = total / cores * tick  # seconds each core was observed
    busy = (total - idle) / total * cores - own_seconds / max(window, 1e-9)
    return max(0.0, busy)


def sample_busy(window: float = WINDOW) -> float | None:
    """Cores (of those this process may run on) that other processes kept busy during `window`
    seconds of sampling /proc/stat; None where there is no /proc/stat."""
    cpus = affinity()
    try:
        first = cpu_ticks(STAT.read_text(encoding="ascii"), cpus)
        own = time.process_time()
        time.sleep(window)
        own = time.process_time() - own
        second = cpu_ticks(STAT.read_text(encoding="ascii"), cpus)
    except OSError:
        return None
    cores = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    return busy_cores(first, second, cores, own, 1 / os.sysconf("SC_CLK_TCK"))


def free_cores(window: float = WINDOW) -> ThreadChoice:
    """Usable cores less those other processes keep busy (a core counts as taken when more than half
    of it was busy), at least 1."""
    usable = usable_cores()
    busy = sample_busy(window)
    if busy is None:
        return ThreadChoice(usable, usable, auto=True)
    cpus = affinity()
    cores = len(cpus) if cpus is not None else usable
    free = min(usable, cores - math.floor(busy + 0.5))
    return ThreadChoice(max(1, free), usable, auto=True, busy_elsewhere=round(busy, 2))


def choose_threads(configured: int, saved: int | None = None) -> ThreadChoice:
    """`configured` threads as given; else $PFTLAB_THREADS; else (auto) the count `saved` results were
    computed with, so a resumed run ends with the digits it would have had uninterrupted; else the
    cores free now."""
    if configured:
        return ThreadChoice(configured, usable_cores(), auto=False)
    usable = usable_cores()
    env = os.environ.get(ENV, "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= 1024:
            raise UserError(f"${ENV}={env!r}: give a whole number of threads from 1 to 1024, or unset it")
        return ThreadChoice(int(env), usable, auto=False, from_env=True)
    if saved is not None and 1 <= saved <= usable:
        return ThreadChoice(saved, usable, auto=True, resumed=True)
    return free_cores()
