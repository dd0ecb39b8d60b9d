"""RRULE text at the boundary: one validation, and dateutil driven under a work budget.

:func:`parse_rrule` is the one check of a rule's text, used when a reminder
is added (through :func:`normalize_rrule`) and again on every stored rule
before it is expanded (rows written by an older version or by hand). It
refuses, with a :class:`ConfigError`, what dateutil would accept and then
loop on, crash on or misread:

- ``INTERVAL`` outside 1…:data:`MAX_INTERVAL` (0 never advances: dateutil
  loops forever), ``COUNT`` outside 1…:data:`MAX_COUNT`;
- BY… values outside their RFC 5545 ranges (``BYHOUR=25`` crashes
  dateutil mid-iteration; ``BYDAY=60MO`` indexes past a year), parts that
  RFC 5545 forbids with the frequency, unknown or repeated parts, empty
  lists, COUNT together with UNTIL, ``FREQ=SECONDLY``.

What text cannot show — BY parts that are each valid but never match
together, such as ``BYMONTH=2;BYMONTHDAY=30`` — is caught by the budget
(:mod:`._budget`): :func:`walls_between` charges every candidate, and
:class:`BudgetedRule` charges each calendar period dateutil sets up, even
when nothing matches and nothing is yielded.

``UNTIL`` in UTC (``…Z``) stays an instant: it is kept in the stored text,
removed from what dateutil sees (which works on naive wall times) and
compared with each occurrence's instant, so the repeated fall-back hour and
the spring-forward gap are cut where RFC 5545 says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from dateutil import rrule as _rrule

from ..errors import ConfigError
from ._budget import PERIOD_COST, WorkBudget

UTC = dt.UTC
#: longest RRULE text accepted
MAX_RRULE_LENGTH = 500
#: largest INTERVAL (1000 years, weeks, … minutes); beyond that dateutil walks month by
#: month to the year 9999 to find out there is nothing
MAX_INTERVAL = 1000
#: largest COUNT; a COUNT rule is walked from its start, so it must fit in the budget
MAX_COUNT = 5_000

_FREQS = ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: BY part → (smallest, largest absolute value, negative allowed)
_RANGES: dict[str, tuple[int, int, bool]] = {
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}
#: RFC 5545 §3.3.10: parts that MUST NOT be used with these frequencies
_FORBIDDEN = {
    "BYMONTHDAY": ("WEEKLY",),
    "BYYEARDAY": ("DAILY", "WEEKLY", "MONTHLY"),
    "BYWEEKNO": ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY"),
}
_KNOWN = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYSECOND", *_RANGES}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_INT = re.compile(r"^[+-]?[0-9]{1,3}$")
_DAY = re.compile(r"^([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^[0-9]{8}(T[0-9]{6}Z?)?$")
_NUMBER = re.compile(r"^[0-9]{1,8}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedRule:
    """A checked RRULE: its canonical text, its parts, and what dateutil is given.

    ``until`` is the UTC ``UNTIL`` as POSIX seconds (removed from
    ``for_dateutil``); a floating ``UNTIL`` stays in ``for_dateutil``.
    """

    text: str
    parts: Mapping[str, str]
    for_dateutil: str
    until: float | None


def _ints(key: str, value: str) -> list[int]:
    low, high, negative = _RANGES[key]
    numbers = []
    for item in value.split(","):
        if not _INT.match(item):
            raise ConfigError(f"bad {key} value {item!r}: expected a number")
        n = int(item)
        if not (low <= abs(n) <= high) or (n < 0 and not negative) or (n == 0 and low > 0):
            sign = "±" if negative else ""
            raise ConfigError(f"{key} value {item} is out of range ({sign}{low}…{high})")
        numbers.append(n)
    return numbers


def _check_byday(value: str, freq: str, parts: Mapping[str, str]) -> None:
    for item in value.split(","):
        match = _DAY.match(item)
        if not match:
            raise ConfigError(f"bad BYDAY value {item!r}: expected e.g. MO, 1MO or -1FR")
        if match[1] is None:
            continue
        n = abs(int(match[1]))
        limit = {"MONTHLY": 5, "YEARLY": 53}.get(freq)
        if limit is None or "BYWEEKNO" in parts:
            raise ConfigError(
                f"BYDAY={item}: a numbered weekday needs FREQ=MONTHLY or YEARLY (without BYWEEKNO)"
            )
        if not 1 <= n <= limit:
            raise ConfigError(f"BYDAY={item}: the number must be within ±1…{limit} for {freq}")


def _check_number(key: str, value: str, high: int) -> None:
    if not _NUMBER.match(value) or not 1 <= int(value) <= high:
        raise ConfigError(f"{key}={value} is out of range (1…{high})")


def _until(value: str) -> float | None:
    """The UTC instant of ``UNTIL=…Z``; None for a floating one; ConfigError when unreadable."""
    fmt = {8: "%Y%m%d", 15: "%Y%m%dT%H%M%S", 16: "%Y%m%dT%H%M%SZ"}[len(value)]
    try:
        parsed = dt.datetime.strptime(value, fmt)
    except ValueError as exc:
        raise ConfigError(f"bad UNTIL {value!r}: expected YYYYMMDDTHHMMSSZ") from exc
    return parsed.replace(tzinfo=UTC).timestamp() if value.endswith("Z") else None


@lru_cache(maxsize=4096)
def parse_rrule(text: str) -> ParsedRule:
    """Check an RRULE value (``RRULE:`` prefix optional) against everything in the module doc.

    The one validation of a rule's text: :func:`normalize_rrule` (adding a
    reminder) and every expansion of a stored rule go through it.
    """
    value = text.strip()
    if len(value) > MAX_RRULE_LENGTH:
        raise ConfigError(f"the RRULE is longer than {MAX_RRULE_LENGTH} characters")
    if value.upper().startswith("RRULE:"):
        value = value[6:]
    if not value or not value.isprintable() or ":" in value:
        raise ConfigError("give one RRULE value such as FREQ=DAILY;BYHOUR=9 (no DTSTART lines)")
    parts: dict[str, str] = {}
    for part in value.split(";"):
        if not part:
            continue
        key, sep, val = part.partition("=")
        key, val = key.strip().upper(), val.strip().upper()
        if not sep or not key or not val:
            raise ConfigError(f"bad RRULE part {part[:40]!r}: expected NAME=VALUE")
        if key not in _KNOWN:
            raise ConfigError(f"unknown RRULE part {key[:40]!r}")
        if key in parts:
            raise ConfigError(f"RRULE part {key} is given twice")
        parts[key] = val
    freq = parts.get("FREQ")
    if freq == "SECONDLY":
        raise ConfigError("FREQ=SECONDLY is not supported for reminders")
    if freq not in _FREQS:
        raise ConfigError(f"invalid RRULE {text[:80]!r}: FREQ must be one of {', '.join(_FREQS)}")
    _check_number("INTERVAL", parts.get("INTERVAL", "1"), MAX_INTERVAL)
    if "COUNT" in parts:
        _check_number("COUNT", parts["COUNT"], MAX_COUNT)
        if "UNTIL" in parts:
            raise ConfigError("give COUNT or UNTIL, not both (RFC 5545)")
    for key in _RANGES.keys() & parts.keys():
        _ints(key, parts[key])
        if freq in _FORBIDDEN.get(key, ()):
            raise ConfigError(f"{key} cannot be used with FREQ={freq} (RFC 5545)")
    if "BYSECOND" in parts and parts["BYSECOND"] != "0":
        raise ConfigError("reminders are to the minute: BYSECOND can only be 0")
    if "BYDAY" in parts:
        _check_byday(parts["BYDAY"], freq, parts)
    if "BYSETPOS" in parts and not (parts.keys() & {*_RANGES, "BYDAY"}) - {"BYSETPOS"}:
        raise ConfigError("BYSETPOS needs another BY… part to pick from (RFC 5545)")
    if parts.get("WKST", "MO") not in _WEEKDAYS:
        raise ConfigError(f"bad WKST {parts['WKST']!r}: expected MO…SU")
    until = None
    if "UNTIL" in parts:
        if not _UNTIL.match(parts["UNTIL"]):
            raise ConfigError(f"bad UNTIL {parts['UNTIL'][:40]!r}: expected YYYYMMDDTHHMMSSZ")
        until = _until(parts["UNTIL"])
    canonical = ";".join(f"{k}={v}" for k, v in parts.items())
    for_dateutil = ";".join(
        f"{k}={v}" for k, v in parts.items() if not (k == "UNTIL" and until is not None)
    )
    return ParsedRule(canonical, parts, for_dateutil, until)


def normalize_rrule(text: str, tz: str | None = None) -> str:
    """A validated RRULE value (no ``RRULE:`` prefix) to store; a ConfigError says what is wrong.

    ``tz`` is accepted for compatibility; a UTC ``UNTIL`` is kept as it is
    (an instant, compared as one), not made local. What depends on the
    start (``FREQ=HOURLY;INTERVAL=2;BYHOUR=1`` is fine from 01:00, empty
    from 00:00) is checked by ``make_rule``, which has the start.
    """
    return parse_rrule(text).text


class BudgetedRule(_rrule.rrule):
    """dateutil's rrule, charging each calendar period its scan sets up to the current budget.

    dateutil's iterator rebuilds its masks (``_iterinfo.rebuild``) for every
    month (every year for a yearly rule) it moves into, and each rebuild
    reads ``_byeaster`` from the rule exactly once. That read is the one
    place where the scan touches the rule even while nothing matches and
    nothing is yielded, so it is where the work of a rule that never
    matches becomes visible. The budget is taken from :data:`_CURRENT`,
    set by :func:`walls_between` for the duration of one walk (rules are
    cached and shared between threads; the budget is not).
    """

    @property
    def _byeaster(self) -> Any:
        budget = _CURRENT.get()
        if budget is not None:
            budget.charge(PERIOD_COST)
        return self.__dict__["_byeaster"]

    @_byeaster.setter
    def _byeaster(self, value: Any) -> None:
        self.__dict__["_byeaster"] = value

    def replace(self, **kwargs: Any) -> BudgetedRule:
        """dateutil's ``replace`` builds a plain rrule; keep the budgeted class."""
        return _budgeted(super().replace(**kwargs))


_CURRENT: ContextVar[WorkBudget | None] = ContextVar("stayfresh_rrule_budget", default=None)


def _budgeted(rule: _rrule.rrule | _rrule.rruleset) -> BudgetedRule:
    """The same rule object as a :class:`BudgetedRule` (its attributes stay where they are)."""
    if not isinstance(rule, _rrule.rrule):
        raise ConfigError("give one RRULE value, not a rule set")
    rule.__class__ = BudgetedRule
    return rule  # type: ignore[return-value]


@lru_cache(maxsize=65536)
def dateutil_rule(for_dateutil: str, dtstart: str) -> BudgetedRule:
    """The dateutil rule from ``dtstart`` (naive local ISO); immutable, so one serves every reschedule.

    ``for_dateutil`` is :attr:`ParsedRule.for_dateutil`: checked text only.
    """
    try:
        rule = _rrule.rrulestr(for_dateutil, dtstart=dt.datetime.fromisoformat(dtstart))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ConfigError(f"invalid RRULE {for_dateutil[:80]!r}: {exc}") from exc
    return _budgeted(rule)


def walls_between(
    rule: BudgetedRule, lo: dt.datetime, hi: dt.datetime, budget: WorkBudget
) -> list[dt.datetime]:
    """The rule's wall times in ``[lo, hi]`` (dateutil's ``between(inc=True)``), within ``budget``.

    Every candidate the iterator yields is charged here, every period it
    scans by :class:`BudgetedRule`; running out raises the budget's error.
    """
    token = _CURRENT.set(budget)
    found = []
    try:
        for wall in rule:
            budget.charge()
            if wall > hi:
                break
            if wall >= lo:
                found.append(wall)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # dateutil finds some impossible combinations only while iterating
        # (FREQ=MINUTELY;INTERVAL=120;BYHOUR=1 from an even hour)
        raise ConfigError(f"the rule cannot be expanded: {exc}") from exc
    finally:
        _CURRENT.reset(token)
    return found
