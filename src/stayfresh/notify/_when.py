"""Times and zones given by users: IANA zones, ``now``, ``+30m``, ISO 8601 wall times.

A naive time is a wall time in the reminder's zone and stays naive until it
is placed (:func:`to_utc`, RFC 5545 §3.3.5: a time in the spring-forward gap
takes the offset from before the gap, a repeated time is the first of the
two); an aware time is an instant. Every failure is a :class:`ConfigError`
naming the value, never an ``OverflowError`` from a year-9999 date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._input import parse_duration, shorten
from ..errors import ConfigError

UTC = dt.UTC


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


def read_time(text: str, tz: str, now: dt.datetime) -> dt.datetime:
    """A time given by a user, as given: naive (a wall time in ``tz``) or aware (an instant).

    ISO 8601, ``now`` or ``+30m`` (any duration :func:`parse_duration` reads).
    Keeping a naive time naive is what lets a start in the spring-forward
    gap keep its wall-clock time on every other day.
    """
    value = text.strip()
    try:
        if value.lower() == "now":
            return now.astimezone(UTC)
        if value.startswith("+"):
            return (now + dt.timedelta(seconds=parse_duration(value[1:]))).astimezone(UTC)
        parsed = dt.datetime.fromisoformat(
            value.replace(" ", "T", 1) if "T" not in value else value
        )
        return parsed if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(
            f"cannot read time {shorten(text)}: use ISO 8601 (2026-01-31 09:00), 'now' or '+30m'"
        ) from exc


def parse_when(text: str, tz: str, now: dt.datetime) -> dt.datetime:
    """A time given by a user: ISO 8601 (naive means local to ``tz``), ``now`` or ``+30m``.

    Returns an aware UTC datetime.
    """
    when = read_time(text, tz, now)
    if when.tzinfo is not None:
        return when
    try:
        return to_utc(when, zone(tz))
    except OverflowError as exc:
        raise ConfigError(f"time {shorten(text)} is out of range") from exc
