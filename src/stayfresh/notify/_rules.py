"""Reminder rules: parsing at the boundary, expansion into occurrences.

A recurring rule is an RFC 5545 RRULE evaluated on *naive wall-clock times
in the rule's own zone* (python-dateutil's ``rrule``), and each wall time is
then placed in the zone with :mod:`zoneinfo`. That is what keeps "every day
at 09:00" at 09:00 local time on both sides of a DST change. Times that do
not exist (the spring-forward gap) or exist twice (fall-back) follow RFC 5545
§3.3.5: a time in the gap takes the offset from before the gap (02:30 becomes
03:30 in New York), an ambiguous time is the first of the two (``fold=0``).

Expansion is the hot path of a reschedule (10,000 rules in well under half a
second), so a rule whose start lies far in the past is first moved forward by
whole periods: ``rrule.between`` otherwise walks every occurrence since the
start. Moving by whole periods changes nothing about the set (the fields
dateutil derives from the start, the time of day, the weekday, the day of
month, stay the same) and is only done when that holds: never with COUNT,
a monthly rule on day 29-31 only by whole years, never a yearly one on
29 February.

Every expansion runs under a work budget (:mod:`._budget`), and every rule's
text goes through the one check of :mod:`._rrule`, when it is added and
each time a stored rule is expanded: no rule, however it got into the
database, can hang a reschedule or take the other reminders down with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from zoneinfo import ZoneInfo

from dateutil import rrule as _rrule
from dateutil.relativedelta import relativedelta

from .._input import shorten
from ..errors import ConfigError
from ..store import NewRule, RuleRow
from ._budget import RULE_WORK_BUDGET, WorkBudget
from ._config import NOTIFICATION_WINDOW
from ._rrule import (
    BudgetedRule,
    ParsedRule,
    dateutil_rule,
    normalize_rrule,
    parse_rrule,
    walls_between,
)
from ._when import local_zone_name, parse_when, read_time, zone

log = logging.getLogger(__name__)

UTC = dt.UTC
#: wall-clock margin at the edges of a window expanded in local time (a DST gap or overlap
#: right at an edge; offset changes inside the window are added to it)
_MARGIN = dt.timedelta(hours=3)
_STEPS: dict[int, relativedelta] = {
    _rrule.YEARLY: relativedelta(years=1),
    _rrule.MONTHLY: relativedelta(months=1),
    _rrule.WEEKLY: relativedelta(weeks=1),
    _rrule.DAILY: relativedelta(days=1),
    _rrule.HOURLY: relativedelta(hours=1),
    _rrule.MINUTELY: relativedelta(minutes=1),
}
_FIXED: dict[int, dt.timedelta] = {
    _rrule.WEEKLY: dt.timedelta(weeks=1),
    _rrule.DAILY: dt.timedelta(days=1),
    _rrule.HOURLY: dt.timedelta(hours=1),
    _rrule.MINUTELY: dt.timedelta(minutes=1),
}


def make_rule(
    title: str,
    *,
    body: str = "",
    at: str | dt.datetime | None = None,
    rrule: str | None = None,
    start: str | dt.datetime | None = None,
    tz: str | None = None,
    now: dt.datetime,
    allow_past: bool = False,
) -> NewRule:
    """Validate a reminder given by a user or an application and make it storable.

    Exactly one of ``at`` (one time) and ``rrule`` (recurring from ``start``,
    default ``now`` to the minute) is given. ``tz`` defaults to the machine's
    zone; it is the zone the RRULE is evaluated in. A one-time reminder
    before ``now`` is refused unless ``allow_past`` (it would be missed, or
    delivered at once within the grace period). A naive ``start`` is a wall
    time kept as given, even in a DST gap. A recurring rule must expand
    within its work budget (:func:`check_rule`), so a rule that can never
    fire again is refused here rather than left out of every window.
    """
    if not title.strip():
        raise ConfigError("a reminder needs a title")
    if (at is None) == (rrule is None):
        raise ConfigError("give exactly one of --at WHEN and --rrule RRULE")
    tz_name = tz or local_zone_name()
    tzinfo = zone(tz_name)
    if at is not None:
        if start is not None:
            raise ConfigError("--start only applies to --rrule")
        when = at.astimezone(UTC) if isinstance(at, dt.datetime) else parse_when(at, tz_name, now)
        if when < now and not allow_past:
            raise ConfigError(
                f"{when.astimezone(tzinfo):%Y-%m-%d %H:%M %Z} is in the past "
                "(use --allow-past to add it anyway)"
            )
        return NewRule(
            title=title, body=body, at=when.timestamp(), rrule=None, dtstart=None, tz=tz_name
        )
    assert rrule is not None
    if start is None:
        first = now.astimezone(tzinfo).replace(second=0, microsecond=0, tzinfo=None)
    else:
        given = start if isinstance(start, dt.datetime) else read_time(start, tz_name, now)
        first = (given.astimezone(tzinfo) if given.tzinfo else given).replace(tzinfo=None)
    new = NewRule(
        title=title,
        body=body,
        at=None,
        rrule=normalize_rrule(rrule, tz_name),
        dtstart=first.isoformat(),
        tz=tz_name,
    )
    check_rule(new, now)
    return new


def check_rule(rule: NewRule | RuleRow, now: dt.datetime) -> None:
    """Refuse a rule that cannot make progress: the dynamic half of the one validation.

    The text was checked by :func:`parse_rrule`; here the rule is expanded
    as the window will expand it, over ``[now, now + NOTIFICATION_WINDOW]``
    under :data:`RULE_WORK_BUDGET` — which also scans on to its next
    occurrence after the window, so BY parts that never match exhaust it. A
    COUNT rule is walked from its start on every expansion (nothing lets
    dateutil skip part of a count), so all of it must fit in the budget too.
    """
    row = rule if isinstance(rule, RuleRow) else RuleRow(
        id=0, title=rule.title, body=rule.body, at=rule.at, rrule=rule.rrule,
        dtstart=rule.dtstart, tz=rule.tz, enabled=True, created_at=0.0,
    )  # fmt: skip
    compiled = compile_rule(row)
    occurrences(compiled, now, now + NOTIFICATION_WINDOW, budget=WorkBudget(RULE_WORK_BUDGET))
    if compiled.rule is not None and compiled.rule._count is not None:  # type: ignore[attr-defined]
        walls_between(compiled.rule, dt.datetime.min, dt.datetime.max, WorkBudget(RULE_WORK_BUDGET))


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to expand: its zone resolved, and either a fixed step or a parsed RRULE.

    ``step``/``starts`` describe the common reminders (every n minutes,
    hours, days or weeks; on some weekdays): their wall times are
    ``start + k·step`` for each start, computed without building an rrule.
    ``until`` is a UTC ``UNTIL`` (POSIX seconds), compared with each
    occurrence's instant rather than its wall time.
    """

    row: RuleRow
    tz: ZoneInfo
    rule: BudgetedRule | None
    step: dt.timedelta | None = None
    starts: tuple[dt.datetime, ...] = ()
    until: float | None = None


_SIMPLE_FREQ = {
    "MINUTELY": _rrule.MINUTELY,
    "HOURLY": _rrule.HOURLY,
    "DAILY": _rrule.DAILY,
    "WEEKLY": _rrule.WEEKLY,
}


_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def _simple_series(
    parsed: ParsedRule, start: dt.datetime
) -> tuple[dt.timedelta, tuple[dt.datetime, ...]] | None:
    """The RRULE as arithmetic series of wall times, when it is one of the common shapes.

    - FREQ=MINUTELY|HOURLY|DAILY|WEEKLY with INTERVAL and nothing else:
      ``start + k·step``;
    - FREQ=WEEKLY (or DAILY) with plain weekdays in BYDAY and INTERVAL=1: one
      weekly series per weekday, from its first date on or after ``start``.

    A UTC UNTIL is applied to instants by :func:`occurrences`, so it does
    not matter here. Anything else (COUNT, a floating UNTIL, BYHOUR,
    BYSETPOS, ±n weekdays …) returns None and goes through dateutil. The
    property tests compare both paths with a brute-force expansion.
    """
    parts = dict(parsed.parts)
    freq = parts.pop("FREQ", "")
    parts.pop("WKST", None)
    if parsed.until is not None:
        parts.pop("UNTIL")
    interval = parts.pop("INTERVAL", "1")
    if freq not in _SIMPLE_FREQ:
        return None
    if not parts:
        return _FIXED[_SIMPLE_FREQ[freq]] * int(interval), (start,)
    days = parts.pop("BYDAY", "").split(",")
    if (
        parts
        or freq not in ("DAILY", "WEEKLY")
        or int(interval) != 1
        or not all(d in _WEEKDAYS for d in days)
    ):
        return None
    firsts = sorted(
        start + dt.timedelta(days=(_WEEKDAYS[d] - start.weekday()) % 7) for d in set(days)
    )
    return dt.timedelta(weeks=1), tuple(firsts)


def compile_rule(row: RuleRow) -> CompiledRule:
    """Resolve the zone, check the RRULE text again and parse it (parsed rules are cached).

    A stored rule goes through the same :func:`parse_rrule` as a new one:
    a row written by an older version or by hand is held to today's rules.
    """
    tzinfo = zone(row.tz)
    if row.rrule is None:
        if row.at is None or row.at != row.at:
            raise ConfigError("a one-time reminder without a valid time")
        return CompiledRule(row, tzinfo, None)
    if row.dtstart is None:
        raise ConfigError("a recurring reminder without a start")
    parsed = parse_rrule(row.rrule)
    try:
        start = dt.datetime.fromisoformat(row.dtstart).replace(microsecond=0, tzinfo=None)
    except ValueError as exc:
        raise ConfigError(f"bad start {shorten(row.dtstart)}") from exc
    series = _simple_series(parsed, start)
    if series is not None:
        return CompiledRule(row, tzinfo, None, *series, until=parsed.until)
    return CompiledRule(
        row, tzinfo, dateutil_rule(parsed.for_dateutil, start.isoformat()), until=parsed.until
    )


#: the benchmark clears this to measure a cold start
_parse = dateutil_rule


def _skip_ahead(rule: BudgetedRule, wall_lo: dt.datetime) -> BudgetedRule:
    """The same rule started by whole periods later, at or before ``wall_lo`` (see module doc)."""
    start: dt.datetime = rule._dtstart  # type: ignore[attr-defined]
    freq: int = rule._freq  # type: ignore[attr-defined]
    interval: int = rule._interval  # type: ignore[attr-defined]
    if rule._count is not None or start >= wall_lo or freq not in _STEPS:  # type: ignore[attr-defined]
        return rule
    if freq in _FIXED:
        periods = (wall_lo - start) // (_FIXED[freq] * interval)
        shifted = start + _FIXED[freq] * interval * periods
    elif freq == _rrule.MONTHLY:
        # on day 29-31 only whole years keep the set (the same months have that day)
        step = interval if start.day <= 28 else math.lcm(12, interval)
        months = (wall_lo.year - start.year) * 12 + wall_lo.month - start.month - 1
        periods = max(0, months // step)
        shifted = start + relativedelta(months=periods * step)
    elif freq == _rrule.YEARLY and (start.month, start.day) != (2, 29):
        periods = max(0, (wall_lo.year - start.year - 1) // interval)
        shifted = start + relativedelta(years=periods * interval)
    else:
        return rule
    if periods <= 0:
        return rule
    return rule.replace(dtstart=shifted)


def _steps(
    wall: dt.datetime,
    step: dt.timedelta,
    until: dt.datetime | None,
    wall_lo: dt.datetime,
    wall_hi: dt.datetime,
    budget: WorkBudget,
) -> list[dt.datetime]:
    """``wall + k·step`` for k ≥ 0 inside ``[wall_lo, wall_hi]`` and not after ``until``."""
    if wall < wall_lo:
        wall += step * ((wall_lo - wall) // step)
    found = []
    while wall <= wall_hi and (until is None or wall <= until):
        budget.charge()
        if wall >= wall_lo:
            found.append(wall)
        wall += step
    return found


def _walls(
    rule: BudgetedRule, wall_lo: dt.datetime, wall_hi: dt.datetime, budget: WorkBudget
) -> list[dt.datetime]:
    """The rule's wall times in ``[wall_lo, wall_hi]``, within ``budget``.

    A rule with no BY parts and no COUNT at a fixed period (every n minutes,
    hours, days or weeks) is ``start + k·period``: computed directly, the
    common case of a reminder. Everything else goes through dateutil.
    """
    freq: int = rule._freq  # type: ignore[attr-defined]
    if rule._count is None and not rule._original_rule and freq in _FIXED:  # type: ignore[attr-defined]
        step = _FIXED[freq] * rule._interval  # type: ignore[attr-defined]
        return _steps(rule._dtstart, step, rule._until, wall_lo, wall_hi, budget)  # type: ignore[attr-defined]
    return walls_between(_skip_ahead(rule, wall_lo), wall_lo, wall_hi, budget)


def occurrences(
    rule: CompiledRule, start: dt.datetime, end: dt.datetime, budget: WorkBudget | None = None
) -> list[float]:
    """Every occurrence of ``rule`` in ``[start, end]`` (aware), as sorted distinct POSIX seconds.

    The rule is expanded in wall time over ``[start, end]`` seen from the
    zone, widened by the zone's offset change across the window (a DST
    transition inside it) and :data:`_MARGIN` (a gap or overlap at an edge),
    then each wall time is placed in the zone and filtered exactly, a UTC
    UNTIL included. The work is charged to ``budget`` (by default a fresh
    :data:`RULE_WORK_BUDGET`); running out raises its error.
    """
    budget = budget or WorkBudget(RULE_WORK_BUDGET)
    lo, hi = start.timestamp(), end.timestamp()
    if rule.until is not None:
        hi = min(hi, rule.until)
        if hi < lo:  # ended before the window: nothing to scan for
            return []
    if rule.rule is None and rule.step is None:
        assert rule.row.at is not None
        return [rule.row.at] if lo <= rule.row.at <= hi else []
    local_lo, local_hi = start.astimezone(rule.tz), end.astimezone(rule.tz)
    margin = _MARGIN + abs(local_hi.utcoffset() - local_lo.utcoffset())  # type: ignore[operator]
    wall_lo = local_lo.replace(tzinfo=None) - margin
    wall_hi = local_hi.replace(tzinfo=None) + margin
    tz = rule.tz
    if rule.step is not None:
        walls = [
            w
            for first in rule.starts
            for w in _steps(first, rule.step, None, wall_lo, wall_hi, budget)
        ]
    else:
        assert rule.rule is not None
        walls = _walls(rule.rule, wall_lo, wall_hi, budget)
    found = {w.replace(tzinfo=tz).timestamp() for w in walls}
    return sorted(t for t in found if lo <= t <= hi)


def describe(row: RuleRow) -> str:
    """One line for listings: when the rule fires."""
    if row.at is not None:
        local = dt.datetime.fromtimestamp(row.at, zone(row.tz))
        return f"once at {local:%Y-%m-%d %H:%M %Z} ({row.tz})"
    return f"{row.rrule} from {row.dtstart} ({row.tz})"
