"""Run windows (``--run-window 22:00-06:00``): when this worker may claim new jobs, in local time.

A window whose end is before its start crosses midnight. A job still running when its
window closes is finished; only new claims wait for the next window.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class RunWindow:
    start: int
    """Minutes after midnight."""
    end: int

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def parse_window(text: str) -> RunWindow:
    """``HH:MM-HH:MM`` → RunWindow; ValueError with the reason otherwise."""
    match = WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"run window {text!r} is not HH:MM-HH:MM (for example 22:00-06:00)")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start > 24 * 60 or end > 24 * 60:
        raise ValueError(f"run window {text!r}: hours go up to 24:00")
    if start % (24 * 60) == end % (24 * 60):
        raise ValueError(f"run window {text!r} is empty; leave --run-window out to run all day")
    return RunWindow(start % (24 * 60), end if end == 24 * 60 else end % (24 * 60))


def is_open(windows: list[RunWindow], now: datetime) -> bool:
    """True without windows (always open) or when ``now`` is inside one."""
    minute = now.hour * 60 + now.minute
    return not windows or any(window.contains(minute) for window in windows)


def seconds_until_open(windows: list[RunWindow], now: datetime) -> float:
    """Seconds from ``now`` until the next window opens (0 when one is open)."""
    if is_open(windows, now):
        return 0.0
    start_of_minute = now.replace(second=0, microsecond=0)
    for step in range(1, 24 * 60 + 1):
        candidate = start_of_minute + timedelta(minutes=step)
        if is_open(windows, candidate):
            return (candidate - now).total_seconds()
    return 60.0
