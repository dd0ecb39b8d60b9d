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
#: wall-clock margin around a window when expanding in local time (covers any DST shift)
_MARGIN = dt.timedelta(days=1)
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
    """A rule ready to expand: its zone resolved and its RRULE parsed once."""

    row: RuleRow
    tz: ZoneInfo
    rule: _rrule.rrule | None


def compile_rule(row: RuleRow) -> CompiledRule:
    """Resolve the zone and parse the RRULE of a stored rule."""
    tzinfo = zone(row.tz)
    if row.rrule is None:
        return CompiledRule(row, tzinfo, None)
    assert row.dtstart is not None
    parsed = _rrule.rrulestr(row.rrule, dtstart=dt.datetime.fromisoformat(row.dtstart))
    assert isinstance(parsed, _rrule.rrule)
    return CompiledRule(row, tzinfo, parsed)


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


def occurrences(rule: CompiledRule, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every occurrence of ``rule`` in ``[start, end]`` (aware), as sorted distinct UTC datetimes."""
    if rule.rule is None:
        assert rule.row.at is not None
        when = dt.datetime.fromtimestamp(rule.row.at, UTC)
        return [when] if start <= when <= end else []
    wall_lo = start.astimezone(rule.tz).replace(tzinfo=None) - _MARGIN
    wall_hi = end.astimezone(rule.tz).replace(tzinfo=None) + _MARGIN
    expanded = _skip_ahead(rule.rule, wall_lo).between(wall_lo, wall_hi, inc=True)
    found = {to_utc(w, rule.tz) for w in expanded}
    return sorted(t for t in found if start <= t <= end)


def describe(row: RuleRow) -> str:
    """One line for listings: when the rule fires."""
    if row.at is not None:
        local = dt.datetime.fromtimestamp(row.at, zone(row.tz))
        return f"once at {local:%Y-%m-%d %H:%M %Z} ({row.tz})"
    return f"{row.rrule} from {row.dtstart} ({row.tz})"
