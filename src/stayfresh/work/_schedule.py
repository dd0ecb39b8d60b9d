"""Pure schedule decisions: durations, minimums, first due, next due, backoff.

Nothing here reads a clock: every function that needs the time takes ``now``
(POSIX seconds). That is what lets the tests drive years of schedule with
hypothesis and lets the engine and runner share one set of rules.

Periodic cadence. A periodic work has a grid of *due times* ``d0, d0 + I,
d0 + 2I, …`` (``I`` the interval). With a flex window ``F < I`` the due time
is the start of the flex window at the end of each period, as in WorkManager:
the first due time is ``enqueue + initial_delay + (I - F)``; without flex the
first period runs at once. After a run finishes at time ``t`` the next due
time is the first grid point after ``t``. So a run that was late (the machine
was off for three periods) runs *once* when it can, and the next run falls
back on the original cadence instead of drifting by the lateness — unlike
WorkManager, which re-anchors each period on the completion time.
"""

from __future__ import annotations

import math
import os
import re
from enum import StrEnum

#: WorkManager's minimum periodic interval and flex window (seconds)
MIN_PERIODIC_INTERVAL = 15 * 60.0
MIN_FLEX = 5 * 60.0
#: WorkManager's backoff clamp (seconds)
MIN_BACKOFF = 10.0
MAX_BACKOFF = 5 * 60 * 60.0
DEFAULT_BACKOFF = 30.0
#: default time limit of one run (seconds)
DEFAULT_TIMEOUT = 10 * 60.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?", re.IGNORECASE)


class BackoffPolicy(StrEnum):
    """How the wait before a retry grows with the attempt number."""

    EXPONENTIAL = "exponential"
    LINEAR = "linear"


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"15m"``, ``"30s"``, ``"1h30m"``, ``"2d"``, ``"250ms"`` or a number.

    A bare number means seconds. Raises ``ValueError`` on anything else, so
    the CLI can turn a typo into a usage error instead of a strange schedule.
    """
    if isinstance(text, int | float):
        if text < 0 or math.isnan(text):
            raise ValueError(f"duration must be >= 0, got {text!r}")
        return float(text)
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration")
    total = 0.0
    pos = 0
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        value, unit = match.groups()
        total += float(value) * _UNITS[(unit or "s").lower()]
        pos = match.end()
    if pos != len(cleaned):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 1h, 2d)")
    return total


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration` for display: ``5400`` → ``"1h30m"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    remaining = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def min_interval(environ: dict[str, str] | None = None) -> float:
    """The smallest periodic interval allowed: 15 min, or ``STAYFRESH_MIN_INTERVAL``.

    The variable can only lower the minimum (tests and demos), never raise it.
    """
    env = os.environ if environ is None else environ
    raw = env.get("STAYFRESH_MIN_INTERVAL")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            return MIN_PERIODIC_INTERVAL
        if value > 0:
            return min(value, MIN_PERIODIC_INTERVAL)
    return MIN_PERIODIC_INTERVAL


def min_flex(environ: dict[str, str] | None = None) -> float:
    """The smallest flex window: 5 min, lowered along with the minimum interval."""
    return min(MIN_FLEX, min_interval(environ))


def min_backoff(environ: dict[str, str] | None = None) -> float:
    """The backoff floor: 10 s, lowered along with the minimum interval (tests only)."""
    return min(MIN_BACKOFF, min_interval(environ))


def clamp_interval(
    every: float, flex: float | None, environ: dict[str, str] | None = None
) -> tuple[float, float]:
    """(interval, flex) raised to the minimums, flex at most the interval.

    WorkManager clamps silently (with a log line) instead of refusing; so do
    we, and the engine logs when it happens. ``flex=None`` means no flex
    window (flex equals the interval).
    """
    interval = max(every, min_interval(environ))
    if flex is None:
        return interval, interval
    return interval, min(max(flex, min_flex(environ)), interval)


def backoff_delay(
    attempt: int,
    policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL,
    initial: float = DEFAULT_BACKOFF,
    *,
    floor: float = MIN_BACKOFF,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential: ``initial * 2**(attempt-1)``; linear: ``initial * attempt``;
    always clamped to ``[floor, 5 h]`` (the floor is 10 s outside tests).
    """
    n = max(1, attempt)
    if policy is BackoffPolicy.LINEAR:
        delay = initial * n
    else:
        # avoid float overflow for absurd attempt counts: the cap wins long before
        delay = initial * (2.0 ** min(n - 1, 64))
    return min(MAX_BACKOFF, max(floor, delay))


def first_due(
    now: float, *, delay: float = 0.0, interval: float | None = None, flex: float | None = None
) -> float:
    """When a newly enqueued work may first run.

    One-time work: after its initial delay. Periodic work: its first period
    starts at ``now + delay``; without flex it runs at once, with flex at the
    opening of the first period's flex window (WorkManager's rule).
    """
    start = now + max(0.0, delay)
    if interval is None or flex is None or flex >= interval:
        return start
    return start + (interval - flex)


def next_period_due(scheduled: float, interval: float, finished_at: float) -> float:
    """The next due time of a periodic work whose current period was due at ``scheduled``.

    The first grid point ``scheduled + k * interval`` strictly after
    ``finished_at``. However late the run was, exactly one more run happens
    before the cadence resumes — missed periods are not replayed.
    """
    if interval <= 0:
        raise ValueError("interval must be > 0")
    if finished_at < scheduled:
        # a forced early run ("work run NAME"): the period it ran in is still ahead
        return scheduled
    periods = math.floor((finished_at - scheduled) / interval) + 1
    due = scheduled + periods * interval
    # guard float rounding so the result is always strictly in the future
    while due <= finished_at:
        due += interval
    return due


def retry_due(
    finished_at: float,
    attempt: int,
    policy: BackoffPolicy,
    initial: float,
    *,
    floor: float = MIN_BACKOFF,
) -> float:
    """When a run that asked for a retry may run again."""
    return finished_at + backoff_delay(attempt, policy, initial, floor=floor)
