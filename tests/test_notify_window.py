"""The window against a brute-force expansion, and DST in several zones (properties).

The brute force shares nothing with the implementation but dateutil's RRULE
iterator: it walks every occurrence from the rule's start (no skipping
ahead) and places wall times in the zone with *dateutil's* tz database code
(``resolve_imaginary`` for the spring-forward gap, the first of two for
fall-back), where stayfresh uses zoneinfo.
"""

from __future__ import annotations

import datetime as dt

from dateutil import rrule as du_rrule
from dateutil import tz as du_tz
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from stayfresh.notify import RuleTooExpensive, compute_window, make_rule, normalize_rrule
from stayfresh.store import RuleRow

UTC = dt.UTC
ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",
    "Asia/Kolkata",  # no DST, a half-hour offset
    "UTC",
]
#: instants near DST transitions of the zones above (2026), to aim ``now`` at
TRANSITIONS = [
    dt.datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York spring forward
    dt.datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York fall back
    dt.datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin spring forward
    dt.datetime(2026, 10, 25, 1, tzinfo=UTC),  # Berlin fall back
    dt.datetime(2026, 4, 4, 16, tzinfo=UTC),  # Sydney fall back
    dt.datetime(2026, 10, 3, 16, tzinfo=UTC),  # Sydney spring forward
    dt.datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe
    dt.datetime(2026, 4, 5, 3, tzinfo=UTC),  # Santiago
]


def brute_force(
    rules: list[RuleRow], now: dt.datetime, horizon: dt.timedelta
) -> list[tuple[float, int]]:
    end = now + horizon
    found: set[tuple[float, int]] = set()
    for row in rules:
        zone = du_tz.gettz(row.tz)
        assert zone is not None
        if row.at is not None:
            if now.timestamp() <= row.at <= end.timestamp():
                found.add((row.at, row.id))
            continue
        assert row.rrule is not None and row.dtstart is not None
        limit = end.astimezone(zone).replace(tzinfo=None) + dt.timedelta(days=2)
        for wall in du_rrule.rrulestr(row.rrule, dtstart=dt.datetime.fromisoformat(row.dtstart)):
            if wall > limit:
                break
            placed = du_tz.resolve_imaginary(wall.replace(tzinfo=zone))
            when = placed.astimezone(UTC)
            if now <= when <= end:
                found.add((when.timestamp(), row.id))
    return sorted(found)


FREQS = {
    "MINUTELY": (dt.timedelta(days=3), [7, 45, 90]),
    "HOURLY": (dt.timedelta(days=20), [1, 2, 5]),
    "DAILY": (dt.timedelta(days=400), [1, 2, 3]),
    "WEEKLY": (dt.timedelta(days=800), [1, 2]),
    "MONTHLY": (dt.timedelta(days=1500), [1, 2, 5]),
    "YEARLY": (dt.timedelta(days=3000), [1, 2]),
}


@st.composite
def rules_and_now(draw: st.DrawFn) -> tuple[list[RuleRow], dt.datetime]:
    now = draw(
        st.one_of(
            st.sampled_from(TRANSITIONS).flatmap(
                lambda t: st.integers(-3 * 86400, 1 * 86400).map(
                    lambda s: t + dt.timedelta(seconds=s)
                )
            ),
            st.integers(1_767_225_600, 1_830_297_600).map(
                lambda s: dt.datetime.fromtimestamp(s, UTC)
            ),
        )
    )
    rules: list[RuleRow] = []
    for rule_id in range(1, draw(st.integers(1, 5)) + 1):
        tz = draw(st.sampled_from(ZONES))
        if draw(st.booleans()) and rule_id % 3 == 0:
            at = now + dt.timedelta(seconds=draw(st.integers(-86400, 3 * 86400)))
            new = make_rule("once", at=at, tz=tz, now=now, allow_past=True)
        else:
            freq = draw(st.sampled_from(sorted(FREQS)))
            back, intervals = FREQS[freq]
            parts = [f"FREQ={freq}", f"INTERVAL={draw(st.sampled_from(intervals))}"]
            if freq in ("DAILY", "WEEKLY", "MONTHLY") and draw(st.booleans()):
                parts.append(
                    f"BYHOUR={draw(st.sampled_from(['0', '1', '2', '3', '9', '2,14', '23']))}"
                )
                parts.append(f"BYMINUTE={draw(st.sampled_from(['0', '30', '15,45']))}")
            if freq in ("WEEKLY", "DAILY") and draw(st.booleans()):
                parts.append(f"BYDAY={draw(st.sampled_from(['MO', 'SU', 'MO,WE,FR', 'SA,SU']))}")
            if freq == "MONTHLY" and draw(st.booleans()):
                parts.append(f"BYMONTHDAY={draw(st.sampled_from(['1', '15', '31', '-1']))}")
            if draw(st.integers(0, 5)) == 0:
                parts.append(f"COUNT={draw(st.integers(1, 400))}")
            seconds_back = draw(st.integers(0, int(back.total_seconds())))
            start = (now - dt.timedelta(seconds=seconds_back)).astimezone(du_tz.gettz(tz))
            wall = start.replace(tzinfo=None, microsecond=0)
            if draw(st.booleans()):  # aim at the DST hours
                wall = wall.replace(
                    hour=draw(st.sampled_from([0, 1, 2, 3])),
                    minute=draw(st.sampled_from([0, 30])),
                    second=0,
                )
            try:
                new = make_rule("r", rrule=";".join(parts), start=wall, tz=tz, now=now)
            except RuleTooExpensive:  # refused at `notify add` (e.g. BYMONTHDAY=31 every
                reject()  # 12 months from a 30-day month): not a rule a window ever holds
        rules.append(
            RuleRow(id=rule_id, title=new.title, body="", at=new.at, rrule=new.rrule,
                    dtstart=new.dtstart, tz=new.tz, enabled=True, created_at=0.0)
        )  # fmt: skip
    return rules, now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_now())
def test_window_equals_brute_force(case: tuple[list[RuleRow], dt.datetime]) -> None:
    rules, now = case
    horizon = dt.timedelta(days=2)
    plan = compute_window(rules, now, horizon=horizon)
    got = [(p.due_at, p.rule_id) for p in plan.rows]
    assert got == brute_force(rules, now, horizon)
    assert len(set(got)) == len(got)  # no duplicates
    assert all(now.timestamp() <= t <= (now + horizon).timestamp() for t, _ in got)
    assert got == sorted(got)
    assert plan.left_out == () and plan.broken == ()


@settings(max_examples=100, deadline=None)
@given(rules_and_now(), st.integers(1, 30))
def test_capacity_keeps_the_earliest(
    case: tuple[list[RuleRow], dt.datetime], capacity: int
) -> None:
    rules, now = case
    full = compute_window(rules, now).rows
    plan = compute_window(rules, now, capacity=capacity)
    assert plan.rows + plan.left_out == full
    assert len(plan.rows) == min(capacity, len(full))
    if plan.left_out:
        assert max(p.due_at for p in plan.rows) <= min(p.due_at for p in plan.left_out)


def _rule(rrule: str, start: str, tz: str) -> RuleRow:
    new = make_rule("r", rrule=rrule, start=start, tz=tz, now=dt.datetime.now(UTC))
    return RuleRow(id=1, title="r", body="", at=None, rrule=new.rrule, dtstart=new.dtstart,
                   tz=tz, enabled=True, created_at=0.0)  # fmt: skip


def _local(rows: list[RuleRow], now: dt.datetime, tz: str, days: int = 2) -> list[str]:
    plan = compute_window(rows, now, horizon=dt.timedelta(days=days))
    zone = du_tz.gettz(tz)
    return [dt.datetime.fromtimestamp(p.due_at, zone).strftime("%m-%d %H:%M %z") for p in plan.rows]


def test_nine_stays_nine_across_dst_in_several_zones() -> None:
    cases = {
        "America/New_York": (
            dt.datetime(2026, 3, 7, 0, tzinfo=UTC),
            dt.datetime(2026, 10, 31, 0, tzinfo=UTC),
        ),
        "Europe/Berlin": (
            dt.datetime(2026, 3, 28, 0, tzinfo=UTC),
            dt.datetime(2026, 10, 24, 0, tzinfo=UTC),
        ),
        "Australia/Sydney": (
            dt.datetime(2026, 4, 3, 12, tzinfo=UTC),
            dt.datetime(2026, 10, 2, 12, tzinfo=UTC),
        ),
    }
    for tz, nows in cases.items():
        rule = _rule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "2025-01-01 09:00", tz)
        for now in nows:
            got = _local([rule], now, tz, days=3)
            assert len(got) == 3, (tz, got)
            assert all(" 09:00 " in g for g in got), (tz, got)
            offsets = {g.rsplit(" ", 1)[1] for g in got}
            assert len(offsets) == 2, (tz, got)  # the window really spans a transition


def test_spring_forward_gap_takes_the_offset_before_it() -> None:
    # 02:30 does not exist in New York on 8 March 2026: RFC 5545 makes it 03:30 EDT
    rule = _rule("FREQ=DAILY", "2026-03-01 02:30", "America/New_York")
    got = _local([rule], dt.datetime(2026, 3, 7, 12, tzinfo=UTC), "America/New_York")
    assert got == ["03-08 03:30 -0400", "03-09 02:30 -0400"]


def test_fall_back_repeated_hour_fires_once_at_the_first() -> None:
    rule = _rule("FREQ=DAILY", "2026-10-01 02:30", "Europe/Berlin")
    got = _local([rule], dt.datetime(2026, 10, 24, 12, tzinfo=UTC), "Europe/Berlin")
    assert got == ["10-25 02:30 +0200", "10-26 02:30 +0100"]
    hourly = _rule("FREQ=HOURLY", "2026-10-24 00:00", "Europe/Berlin")
    got = _local([hourly], dt.datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "Europe/Berlin", days=1)
    wall = [g.split(" ")[1] for g in got]
    assert len(wall) == len(set(wall))  # 02:00 once, not twice
    assert "02:00" in wall


def test_lord_howe_half_hour_shift() -> None:
    rule = _rule("FREQ=DAILY;BYHOUR=1;BYMINUTE=45", "2026-01-01 01:45", "Australia/Lord_Howe")
    got = _local([rule], dt.datetime(2026, 10, 3, 0, tzinfo=UTC), "Australia/Lord_Howe", days=3)
    # 4 Oct 2026 02:00 → 02:30: 01:45 still exists; every occurrence at 01:45 local
    assert all(" 01:45 " in g for g in got) and len(got) == 3


def test_until_in_utc_is_kept_as_an_instant() -> None:
    value = normalize_rrule("RRULE:FREQ=DAILY;UNTIL=20260310T000000Z", "America/New_York")
    assert value == "FREQ=DAILY;UNTIL=20260310T000000Z"  # an instant: see test_notify_rrule


def test_a_broken_rule_does_not_empty_the_window() -> None:
    good = _rule("FREQ=HOURLY", "2026-01-01 00:00", "UTC")
    bad = RuleRow(id=2, title="bad", body="", at=None, rrule="FREQ=DAILY", dtstart="2026-01-01T00:00:00",
                  tz="Mars/Olympus_Mons", enabled=True, created_at=0.0)  # fmt: skip
    plan = compute_window([good, bad], dt.datetime(2026, 5, 1, tzinfo=UTC))
    assert len(plan.rows) == 49
    assert [b[0] for b in plan.broken] == [2]
