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
never for a monthly rule on day 29-31 or a yearly one on 29 February.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as _rrule
from dateutil.relativedelta import relativedelta

from ..errors import ConfigError
from ..store import NewRule, RuleRow

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
_DURATION = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*([smhdw])$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a :class:`ConfigError` names the bad value."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from exc


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_zone_name() -> str:
    """The machine's zone as an IANA name (``TZ``, else ``/etc/localtime``), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        path = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in path:
            candidates.append(path.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                _zone(name)
                return name
    return "UTC"


def to_utc(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Place a naive wall time in ``tz`` (RFC 5545: gap → offset before it; overlap → first)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def parse_when(text: str, tz: str, now: dt.datetime) -> dt.datetime:
    """A time given by a user: ISO 8601 (naive means local to ``tz``), ``now`` or ``+30m``.

    Returns an aware UTC datetime.
    """
    value = text.strip()
    if value.lower() == "now":
        return now.astimezone(UTC)
    match = _DURATION.match(value)
    if match and value.startswith("+"):
        return (now + dt.timedelta(seconds=float(match[1]) * _UNITS[match[2].lower()])).astimezone(
            UTC
        )
    try:
        parsed = dt.datetime.fromisoformat(
            value.replace(" ", "T", 1) if "T" not in value else value
        )
    except ValueError as exc:
        raise ConfigError(
            f"cannot read time {text!r}: use ISO 8601 (2026-01-31 09:00), 'now' or '+30m'"
        ) from exc
    if parsed.tzinfo is None:
        return to_utc(parsed, zone(tz))
    return parsed.astimezone(UTC)


def normalize_rrule(text: str, tz: str) -> str:
    """A validated RRULE value (no ``RRULE:`` prefix), with a UTC ``UNTIL`` made local.

    dateutil evaluates our rules on naive local times, where RFC 5545 allows
    UNTIL in UTC (``…Z``): such an UNTIL is converted to the zone's wall time.
    """
    value = text.strip()
    if value.upper().startswith("RRULE:"):
        value = value[6:]
    if not value or "\n" in value or ":" in value:
        raise ConfigError("give one RRULE value such as FREQ=DAILY;BYHOUR=9 (no DTSTART lines)")
    parts: list[str] = []
    for part in value.split(";"):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep:
            raise ConfigError(f"bad RRULE part {part!r}: expected NAME=VALUE")
        key = key.strip().upper()
        val = val.strip().upper()
        if key == "UNTIL" and val.endswith("Z"):
            try:
                until = dt.datetime.strptime(val, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError as exc:
                raise ConfigError(f"bad UNTIL {val!r}: expected YYYYMMDDTHHMMSSZ") from exc
            val = until.astimezone(zone(tz)).replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")
        parts.append(f"{key}={val}")
    normalized = ";".join(parts)
    if "FREQ=SECONDLY" in normalized:
        raise ConfigError("FREQ=SECONDLY is not supported for reminders")
    try:
        _rrule.rrulestr(normalized, dtstart=dt.datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"invalid RRULE {text!r}: {exc}") from exc
    return normalized


def make_rule(
    title: str,
    *,
    body: str = "",
    at: str | dt.datetime | None = None,
    rrule: str | None = None,
    start: str | dt.datetime | None = None,
    tz: str | None = None,
    now: dt.datetime,
) -> NewRule:
    """Validate a reminder given by a user or an application and make it storable.

    Exactly one of ``at`` (one time) and ``rrule`` (recurring from ``start``,
    default ``now`` to the minute) is given. ``tz`` defaults to the machine's
    zone; it is the zone the RRULE is evaluated in.
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
        return NewRule(
            title=title, body=body, at=when.timestamp(), rrule=None, dtstart=None, tz=tz_name
        )
    assert rrule is not None
    if start is None:
        first = now.astimezone(tzinfo).replace(second=0, microsecond=0, tzinfo=None)
    elif isinstance(start, dt.datetime):
        first = (start.astimezone(tzinfo) if start.tzinfo else start).replace(tzinfo=None)
    else:
        first = parse_when(start, tz_name, now).astimezone(tzinfo).replace(tzinfo=None)
    return NewRule(
        title=title,
        body=body,
        at=None,
        rrule=normalize_rrule(rrule, tz_name),
        dtstart=first.isoformat(),
        tz=tz_name,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to expand: its zone resolved, and either a fixed step or a parsed RRULE.

    ``step``/``starts`` describe the common reminders (every n minutes,
    hours, days or weeks; on some weekdays): their wall times are
    ``start + k·step`` for each start, computed without building an rrule.
    """

    row: RuleRow
    tz: ZoneInfo
    rule: _rrule.rrule | None
    step: dt.timedelta | None = None
    starts: tuple[dt.datetime, ...] = ()


_SIMPLE_FREQ = {
    "MINUTELY": _rrule.MINUTELY,
    "HOURLY": _rrule.HOURLY,
    "DAILY": _rrule.DAILY,
    "WEEKLY": _rrule.WEEKLY,
}


_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def _simple_series(
    value: str, start: dt.datetime
) -> tuple[dt.timedelta, tuple[dt.datetime, ...]] | None:
    """The RRULE as arithmetic series of wall times, when it is one of the common shapes.

    - FREQ=MINUTELY|HOURLY|DAILY|WEEKLY with INTERVAL and nothing else:
      ``start + k·step``;
    - FREQ=WEEKLY (or DAILY) with plain weekdays in BYDAY and INTERVAL=1: one
      weekly series per weekday, from its first date on or after ``start``.

    Anything else (COUNT, UNTIL, BYHOUR, BYSETPOS, ±n weekdays …) returns
    None and goes through dateutil. The property tests compare both paths
    with a brute-force expansion.
    """
    parts = dict(p.partition("=")[::2] for p in value.split(";") if p)
    freq = parts.pop("FREQ", "")
    parts.pop("WKST", None)
    interval = parts.pop("INTERVAL", "1")
    if freq not in _SIMPLE_FREQ or not interval.isdigit() or int(interval) < 1:
        return None
    if not parts:
        return _FIXED[_SIMPLE_FREQ[freq]] * int(interval), (start,)
    days = parts.pop("BYDAY", "").split(",")
    if (
        parts
        or freq not in ("DAILY", "WEEKLY")
        or interval != "1"
        or not all(d in _WEEKDAYS for d in days)
    ):
        return None
    firsts = sorted(
        start + dt.timedelta(days=(_WEEKDAYS[d] - start.weekday()) % 7) for d in set(days)
    )
    return dt.timedelta(weeks=1), tuple(firsts)


def compile_rule(row: RuleRow) -> CompiledRule:
    """Resolve the zone and parse the RRULE of a stored rule (parsed rules are cached)."""
    tzinfo = zone(row.tz)
    if row.rrule is None:
        return CompiledRule(row, tzinfo, None)
    assert row.dtstart is not None
    series = _simple_series(
        row.rrule, dt.datetime.fromisoformat(row.dtstart).replace(microsecond=0)
    )
    if series is not None:
        return CompiledRule(row, tzinfo, None, *series)
    return CompiledRule(row, tzinfo, _parse(row.rrule, row.dtstart))


@lru_cache(maxsize=65536)
def _parse(value: str, dtstart: str) -> _rrule.rrule:
    """An rrule object is immutable once built: one per (RRULE, start) serves every reschedule."""
    parsed = _rrule.rrulestr(value, dtstart=dt.datetime.fromisoformat(dtstart))
    assert isinstance(parsed, _rrule.rrule)
    return parsed


def _skip_ahead(rule: _rrule.rrule, wall_lo: dt.datetime) -> _rrule.rrule:
    """The same rule started by whole periods later, at or before ``wall_lo`` (see module doc)."""
    start: dt.datetime = rule._dtstart  # type: ignore[attr-defined]
    freq: int = rule._freq  # type: ignore[attr-defined]
    interval: int = rule._interval  # type: ignore[attr-defined]
    if rule._count is not None or start >= wall_lo or freq not in _STEPS:  # type: ignore[attr-defined]
        return rule
    if freq in _FIXED:
        periods = (wall_lo - start) // (_FIXED[freq] * interval)
        shifted = start + _FIXED[freq] * interval * periods
    elif freq == _rrule.MONTHLY and start.day <= 28:
        months = (wall_lo.year - start.year) * 12 + wall_lo.month - start.month - 1
        periods = max(0, months // interval)
        shifted = start + relativedelta(months=periods * interval)
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
) -> list[dt.datetime]:
    """``wall + k·step`` for k ≥ 0 inside ``[wall_lo, wall_hi]`` and not after ``until``."""
    if wall < wall_lo:
        wall += step * ((wall_lo - wall) // step)
    found = []
    while wall <= wall_hi and (until is None or wall <= until):
        if wall >= wall_lo:
            found.append(wall)
        wall += step
    return found


def _walls(rule: _rrule.rrule, wall_lo: dt.datetime, wall_hi: dt.datetime) -> list[dt.datetime]:
    """The rule's wall times in ``[wall_lo, wall_hi]``.

    A rule with no BY parts and no COUNT at a fixed period (every n minutes,
    hours, days or weeks) is ``start + k·period``: computed directly, the
    common case of a reminder. Everything else goes through dateutil.
    """
    freq: int = rule._freq  # type: ignore[attr-defined]
    if rule._count is None and not rule._original_rule and freq in _FIXED:  # type: ignore[attr-defined]
        step = _FIXED[freq] * rule._interval  # type: ignore[attr-defined]
        return _steps(rule._dtstart, step, rule._until, wall_lo, wall_hi)  # type: ignore[attr-defined]
    found: list[dt.datetime] = _skip_ahead(rule, wall_lo).between(wall_lo, wall_hi, inc=True)
    return found


def occurrences(rule: CompiledRule, start: dt.datetime, end: dt.datetime) -> list[float]:
    """Every occurrence of ``rule`` in ``[start, end]`` (aware), as sorted distinct POSIX seconds.

    The rule is expanded in wall time over ``[start, end]`` seen from the
    zone, widened by the zone's offset change across the window (a DST
    transition inside it) and :data:`_MARGIN` (a gap or overlap at an edge),
    then each wall time is placed in the zone and filtered exactly.
    """
    lo, hi = start.timestamp(), end.timestamp()
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
            w for first in rule.starts for w in _steps(first, rule.step, None, wall_lo, wall_hi)
        ]
    else:
        assert rule.rule is not None
        walls = _walls(rule.rule, wall_lo, wall_hi)
    found = {w.replace(tzinfo=tz).timestamp() for w in walls}
    return sorted(t for t in found if lo <= t <= hi)


def describe(row: RuleRow) -> str:
    """One line for listings: when the rule fires."""
    if row.at is not None:
        local = dt.datetime.fromtimestamp(row.at, zone(row.tz))
        return f"once at {local:%Y-%m-%d %H:%M %Z} ({row.tz})"
    return f"{row.rrule} from {row.dtstart} ({row.tz})"
