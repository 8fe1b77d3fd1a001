"""A line at least every 30 seconds of a long stage, for logs without progress bars.

With `--no-progress` (overnight studies, CI, nohup) a run prints one line per finished stage;
a stage of an hour would then look dead for an hour. A heartbeat says how far the stage is
and the time of day whenever `every` seconds have passed since its last line.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EVERY = 30.0


class Heartbeat:
    """`tick(done)` after each unit of work (a round, a client); prints `stage: done/total (HH:MM:SS)`
    when `every` seconds have passed since the stage began or since the last line. `clock` is
    injectable so a test can drive it without waiting."""

    def __init__(
        self,
        say: Callable[[str], None],
        stage: str,
        total: int,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say, self.stage, self.total, self.every, self.clock = say, stage, total, every, clock
        self.done = 0
        self.last = clock()

    def tick(self, n: int = 1, info: str = "") -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            extra = f", {info}" if info else ""
            self.say(f"{self.stage}: {self.done}/{self.total}{extra} ({time.strftime('%H:%M:%S')})")
