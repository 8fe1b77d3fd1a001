"""The heartbeat of a long stage: a line once `every` seconds have passed, driven by an injected clock."""

from __future__ import annotations

import re

from pftlab.core.heartbeat import Heartbeat


def test_a_line_once_every_interval_with_how_far_the_stage_is() -> None:
    now = [0.0]
    lines: list[str] = []
    beat = Heartbeat(lines.append, "ft clients", 10, every=30.0, clock=lambda: now[0])
    for t in (5.0, 20.0, 29.9):  # under 30 s since the start: silent
        now[0] = t
        beat.tick()
    assert lines == []
    now[0] = 31.0
    beat.tick(2, "train loss 0.5")
    assert len(lines) == 1 and re.fullmatch(r"ft clients: 5/10, train loss 0\.5 \(\d\d:\d\d:\d\d\)", lines[0])
    now[0] = 60.0  # 29 s since the last line: silent
    beat.tick()
    now[0] = 61.0
    beat.tick()
    assert len(lines) == 2 and lines[1].startswith("ft clients: 7/10 (")
