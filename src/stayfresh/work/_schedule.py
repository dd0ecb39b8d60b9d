"""Pure schedule decisions: minimums, first due, next due, backoff.

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

# the one duration parser (every option, setting and file uses it) lives in
# stayfresh._input so tokens and notify can use it too; re-exported here
from .._input import format_duration as format_duration
from .._input import parse_duration as parse_duration

# the one backoff function and WorkManager's clamp live in stayfresh._retry (notify
# and the HTTP policy use them too); re-exported here for the engine
from .._retry import DEFAULT_BACKOFF as DEFAULT_BACKOFF
from .._retry import MAX_BACKOFF as MAX_BACKOFF
from .._retry import MIN_BACKOFF as MIN_BACKOFF
from .._retry import BackoffPolicy as BackoffPolicy
from .._retry import backoff_delay as backoff_delay
from ..errors import ConfigError

#: WorkManager's minimum periodic interval and flex window (seconds)
MIN_PERIODIC_INTERVAL = 15 * 60.0
MIN_FLEX = 5 * 60.0
#: default time limit of one run (seconds)
DEFAULT_TIMEOUT = 10 * 60.0


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


def check_interval(
    every: float, flex: float | None, environ: dict[str, str] | None = None
) -> tuple[float, float]:
    """(interval, flex) of a periodic work; :class:`ConfigError` below the minimums.

    WorkManager raises a too-short interval to 15 minutes with a log line
    nobody reads; we refuse it instead (exit 2 on the command line), because
    "every 1m" silently becoming "every 15m" is a surprise found days later.
    ``STAYFRESH_MIN_INTERVAL`` lowers both minimums (tests, demos). ``flex=None``,
    or a flex at least the interval, means no flex window (flex = interval).
    """
    floor = min_interval(environ)
    if every < floor:
        raise ConfigError(
            f"a periodic interval must be at least {format_duration(floor)}, "
            f"not {format_duration(every)} (STAYFRESH_MIN_INTERVAL lowers the minimum)"
        )
    if flex is None:
        return every, every
    if flex < min_flex(environ):
        raise ConfigError(
            f"a flex window must be at least {format_duration(min_flex(environ))}, "
            f"not {format_duration(flex)}"
        )
    return every, min(flex, every)


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
