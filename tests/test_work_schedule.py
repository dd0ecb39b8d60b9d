"""Pure schedule rules: next due, catch-up, backoff, flex, durations."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stayfresh._input import MAX_DURATION
from stayfresh.errors import ConfigError
from stayfresh.work import BackoffPolicy, backoff_delay, first_due, next_period_due, parse_duration
from stayfresh.work._schedule import check_interval, format_duration, min_interval

HOUR = 3600.0
intervals = st.floats(min_value=60, max_value=30 * 86400, allow_nan=False)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def test_backoff_sequence_exponential_and_cap() -> None:
    seq = [backoff_delay(n) for n in range(1, 14)]
    assert seq[:6] == [30, 60, 120, 240, 480, 960]
    assert max(seq) == 5 * HOUR
    assert seq[-1] == 5 * HOUR


def test_backoff_linear_and_floor() -> None:
    assert [backoff_delay(n, BackoffPolicy.LINEAR) for n in (1, 2, 3)] == [30, 60, 90]
    assert backoff_delay(1, initial=1.0) == 10.0  # clamped to 10 s
    assert backoff_delay(1, initial=1.0, floor=0.5) == 1.0
    assert backoff_delay(10_000) == 5 * HOUR  # no overflow


@given(st.integers(min_value=1, max_value=500), st.floats(min_value=0.1, max_value=10 * HOUR))
def test_backoff_always_within_clamp_and_monotonic(attempt: int, initial: float) -> None:
    for policy in BackoffPolicy:
        d = backoff_delay(attempt, policy, initial)
        assert 10.0 <= d <= 5 * HOUR
        assert backoff_delay(attempt + 1, policy, initial) >= d


def test_first_due() -> None:
    assert first_due(100.0) == 100.0
    assert first_due(100.0, delay=60) == 160.0
    # periodic without flex: runs at once; with flex: at the start of the first flex window
    assert first_due(100.0, interval=900, flex=900) == 100.0
    assert first_due(100.0, interval=900, flex=300) == 700.0
    assert first_due(100.0, delay=10, interval=900, flex=300) == 710.0


@given(times, intervals, st.floats(min_value=0, max_value=1e8, allow_nan=False))
def test_next_due_is_after_finish_on_grid_and_within_one_interval(
    scheduled: float, interval: float, late: float
) -> None:
    finished = scheduled + late
    nxt = next_period_due(scheduled, interval, finished)
    assert nxt > finished  # never schedules the past: no replay of missed periods
    assert nxt - finished <= interval * (1 + 1e-9) + 1e-6  # at most one interval away
    k = (nxt - scheduled) / interval
    assert math.isclose(k, round(k), abs_tol=1e-6)  # keeps the cadence (grid)


@given(
    times,
    intervals,
    st.lists(st.floats(min_value=0, max_value=40, allow_nan=False), min_size=1, max_size=8),
)
def test_simulated_downtime_runs_once_then_keeps_cadence(
    start: float, interval: float, downtimes: list[float]
) -> None:
    """A runner that sleeps across N periods runs the work once on waking, then on the grid."""
    due = start
    now = start
    for periods_down in downtimes:
        now = max(now, due) + periods_down * interval  # machine off / asleep
        assert now >= due  # the work is due (or overdue) when the runner wakes
        runs_before_next_grid = 0
        # the runner runs everything due at `now`, repeatedly, until nothing is due
        while due <= now:
            runs_before_next_grid += 1
            due = next_period_due(due, interval, now)
        assert runs_before_next_grid == 1  # exactly one catch-up run
        assert due > now


@given(
    times,
    st.floats(min_value=900, max_value=86400),
    st.floats(min_value=300, max_value=86400),
    st.floats(min_value=0, max_value=1.0),
)
def test_flex_window_respected(now: float, every: float, flex: float, where: float) -> None:
    """Every due time is the opening of a flex window at the end of its period."""
    interval, fl = check_interval(every, flex, {})
    first = first_due(now, interval=interval, flex=fl)
    assert first >= now
    assert math.isclose(first - now, interval - fl, abs_tol=1e-6)
    # a run somewhere in that window: the next due is the next period's window opening
    finished = first + where * fl
    nxt = next_period_due(first, interval, finished)
    period_end = now + 2 * interval
    assert period_end - fl - 1e-6 <= nxt <= period_end + 1e-6


def test_forced_early_run_keeps_the_period_ahead() -> None:
    assert next_period_due(1000.0, 900.0, 400.0) == 1000.0


def test_minimums_and_env_override() -> None:
    assert min_interval({}) == 900
    assert min_interval({"STAYFRESH_MIN_INTERVAL": "2"}) == 2
    assert min_interval({"STAYFRESH_MIN_INTERVAL": "99999"}) == 900  # can only lower
    assert min_interval({"STAYFRESH_MIN_INTERVAL": "junk"}) == 900
    assert check_interval(900, None, {}) == (900, 900)
    assert check_interval(3600, 300, {}) == (3600, 300)
    assert check_interval(3600, 7200, {}) == (3600, 3600)  # flex >= interval: no flex window
    assert check_interval(60, 10, {"STAYFRESH_MIN_INTERVAL": "1"}) == (60, 10)


@pytest.mark.parametrize(
    ("every", "flex", "message"),
    [(60, None, "at least 15m, not 1m"), (899, None, "at least 15m"), (3600, 60, "at least 5m")],
)
def test_below_the_minimum_is_refused_not_raised(
    every: float, flex: float | None, message: str
) -> None:
    """WorkManager raises a short interval silently; we refuse it (exit 2 in the CLI)."""
    with pytest.raises(ConfigError, match=message):
        check_interval(every, flex, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("45", 45),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["", "m", "15x", "-5s", "1h-", "abc", "1e400s", "99999999999d", "9" * 400, "11y", "1" * 65],
)
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1, 10**400, 1e300, True])
def test_parse_duration_rejects_numbers_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_duration_bounds() -> None:
    assert parse_duration("520w") == 520 * 604800  # ten years less 2 days: the longest
    assert parse_duration("3650d") == MAX_DURATION
    assert parse_duration(" 1h 30m ") == 5400
    assert parse_duration("0") == 0


@given(st.integers(min_value=1, max_value=10**7))
def test_format_parse_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
