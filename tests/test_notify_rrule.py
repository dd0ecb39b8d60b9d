"""RRULE edges: DST-gap starts, UNTIL as an instant, and any text → a rule or a ConfigError.

The DST cases are checked in UTC instants worked out by hand from the zone
rules (New York: EDT -4 until 2026-11-01 06:00Z, EST -5 after; Berlin: CET
+1 until 2027-03-28 01:00Z, CEST +2 after), not through the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import invoke_cli
from stayfresh.errors import ConfigError
from stayfresh.notify import compute_window, make_rule, normalize_rrule, parse_when
from stayfresh.store import NewRule, RuleRow

UTC = dt.UTC


def row(new: NewRule, rule_id: int = 1) -> RuleRow:
    return RuleRow(id=rule_id, title=new.title, body=new.body, at=new.at, rrule=new.rrule,
                   dtstart=new.dtstart, tz=new.tz, enabled=True, created_at=0.0)  # fmt: skip


def due(rules: list[RuleRow], now: dt.datetime, days: int) -> list[dt.datetime]:
    plan = compute_window(rules, now, horizon=dt.timedelta(days=days))
    assert plan.broken == ()
    return [dt.datetime.fromtimestamp(p.due_at, UTC) for p in plan.rows]


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- 5: a start in the spring-forward gap keeps its wall time -------------------------------


def test_a_start_in_the_dst_gap_keeps_its_wall_time_on_every_other_day() -> None:
    now = utc(2027, 3, 20, 0, 0)
    new = make_rule("Pills", rrule="FREQ=DAILY", start="2027-03-28 02:30",
                    tz="Europe/Berlin", now=now)  # fmt: skip
    assert new.dtstart == "2027-03-28T02:30:00"  # the wall time, not the shifted instant
    got = due([row(new)], utc(2027, 3, 27, 12, 0), days=3)
    assert got == [
        utc(2027, 3, 28, 1, 30),  # the gap day: 02:30 with the offset before the gap = 03:30 CEST
        utc(2027, 3, 29, 0, 30),  # 02:30 CEST
        utc(2027, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_the_cli_stores_the_wall_time_of_a_gap_start(db_path: Path) -> None:
    done = invoke_cli("notify", "add", "Pills", "--rrule", "FREQ=DAILY", "--start",
                   "2027-03-28 02:30", "--tz", "Europe/Berlin", "--json", db=db_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule"]["start"] == "2027-03-28T02:30:00"


# -- 6: UNTIL in UTC is an instant; the repeated hour fires once, at the first ---------------


def test_until_in_utc_is_compared_as_an_instant_in_the_repeated_hour() -> None:
    # 01:30 on 1 Nov 2026 happens twice in New York: 05:30Z (EDT, the first) and 06:30Z (EST)
    rule = "FREQ=DAILY;BYHOUR=1;BYMINUTE=30;UNTIL=20261101T060100Z"
    new = make_rule("r", rrule=rule, start="2026-10-30 01:30", tz="America/New_York",
                    now=utc(2026, 10, 30))  # fmt: skip
    got = due([row(new)], utc(2026, 10, 30, 12, 0), days=4)
    assert got == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30)]  # 01:30 EDT both
    assert new.rrule == rule  # stored as given: an instant


def test_until_in_utc_cuts_an_occurrence_moved_past_it_by_the_gap() -> None:
    # 02:30 on 8 Mar 2026 does not exist in New York: it happens at 03:30 EDT = 07:30Z,
    # after UNTIL (07:01Z), although its wall time 02:30 is before UNTIL's (03:01 EDT)
    rule = "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;UNTIL=20260308T070100Z"
    new = make_rule("r", rrule=rule, start="2026-03-06 02:30", tz="America/New_York",
                    now=utc(2026, 3, 6))  # fmt: skip
    got = due([row(new)], utc(2026, 3, 6, 12, 0), days=4)
    assert got == [utc(2026, 3, 7, 7, 30)]  # 02:30 EST on the 7th; nothing on the 8th


def test_until_in_utc_on_the_simple_path_too() -> None:
    new = make_rule("r", rrule="FREQ=HOURLY;UNTIL=20260601T103000Z", start="2026-06-01 00:00",
                    tz="Europe/Berlin", now=utc(2026, 6, 1))  # fmt: skip
    got = due([row(new)], utc(2026, 6, 1, 7, 0), days=1)
    assert got == [utc(2026, 6, 1, h, 0) for h in (7, 8, 9, 10)]


# -- 7: any text is a rule or a ConfigError; never a traceback, never a hang ----------------


def _near(low: int, high: int) -> st.SearchStrategy[int]:
    """Mostly valid values, sometimes just outside the range."""
    return st.one_of(st.integers(low, high), st.integers(low, high), st.integers(low - 2, high + 2))


BY_VALUES = {
    "BYMONTH": _near(1, 12),
    "BYMONTHDAY": _near(1, 31) | _near(-31, -1),
    "BYYEARDAY": _near(1, 366) | _near(-366, -1),
    "BYWEEKNO": _near(1, 53) | _near(-53, -1),
    "BYHOUR": _near(0, 23),
    "BYMINUTE": _near(0, 59),
    "BYSETPOS": _near(1, 10) | _near(-10, -1),
}
DAYS = st.tuples(
    st.sampled_from(["", "", "", "1", "-1", "2", "5", "-5", "53", "60", "+3"]),
    st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU", "XX"]),
).map("".join)


@st.composite
def plausible_rules(draw: st.DrawFn) -> str:
    """Mostly well-formed RRULEs, often with BY parts that never match together or out of range."""
    parts = [
        f"FREQ={draw(st.sampled_from(['MINUTELY', 'HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY', 'SECONDLY']))}"
    ]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.one_of(st.integers(0, 5), st.integers(0, 10**12)))}")
    ending = draw(st.sampled_from(["", "COUNT", "UNTIL", "both"]))
    if ending in ("COUNT", "both"):
        parts.append(f"COUNT={draw(st.one_of(st.integers(0, 50), st.integers(0, 10**9)))}")
    if ending in ("UNTIL", "both"):
        parts.append(
            f"UNTIL={draw(st.sampled_from(['20261101T060100Z', '20300101', '20261301T000000', '19991231T235959Z']))}"
        )
    for key in draw(st.lists(st.sampled_from(sorted(BY_VALUES)), max_size=2, unique=True)):
        values = draw(st.lists(BY_VALUES[key], min_size=1, max_size=3))
        parts.append(f"{key}={','.join(map(str, values))}")
    if draw(st.booleans()):
        parts.append(f"BYDAY={','.join(draw(st.lists(DAYS, min_size=1, max_size=3)))}")
    return ";".join(draw(st.permutations(parts)))


RULES = st.one_of(plausible_rules(), st.text(max_size=60))
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@pytest.mark.timeout(600)  # a hang guard for the whole run; each example is bounded by the budget
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    RULES,
    st.one_of(st.none(), st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))),
    st.sampled_from(ZONES),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
)
def test_any_rule_text_is_a_rule_or_a_config_error_and_expands_within_its_budget(
    text: str, start: dt.datetime | None, tz: str, now: dt.datetime
) -> None:
    try:
        normalized = normalize_rrule(text, tz)
    except ConfigError:
        normalized = None
    try:
        new = make_rule("r", rrule=text, start=start, tz=tz, now=now)
    except ConfigError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("accepted")
    assert new.rrule == normalized
    for later in (now, now + dt.timedelta(days=400)):
        plan = compute_window([row(new)], later)
        # the window never raises; a rule it leaves out failed with a typed error
        assert all(message.startswith(("ConfigError", "RuleTooExpensive"))
                   for _, message in plan.broken), plan.broken  # fmt: skip
    assert compute_window([row(new)], now).broken == ()  # what was accepted expands


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.tuples(
            st.sampled_from(["+", "+ ", ""]),
            st.floats(allow_nan=True),
            st.text("smhdw", max_size=2),
        ).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
        st.datetimes().map(lambda d: d.isoformat()),
        st.datetimes(timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=14))])).map(
            lambda d: d.isoformat()
        ),
    ),
    st.sampled_from(ZONES),
)
def test_any_time_text_is_an_instant_or_a_config_error(text: str, tz: str) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=UTC)
    try:
        when = parse_when(text, tz, now)
    except ConfigError:
        return
    assert when.tzinfo is not None and when.utcoffset() == dt.timedelta(0)
