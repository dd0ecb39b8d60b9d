"""Times and durations as people read them, one spelling for every command.

Durations in the units the options take (``2d``, ``3h``, ``1h30m``, ``45s``);
instants relative to now (``in 5m``, ``3h ago``) or in the local zone with its
offset (``2026-11-30 14:40 +01:00``). ``--json`` keeps ISO 8601 in UTC.
"""

from __future__ import annotations

import datetime as dt
import math

from ..work import format_duration


def duration(seconds: float | None) -> str:
    """``2d``, ``3h``, ``1h30m``…; ``-`` when unknown or infinite."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return format_duration(abs(seconds)) if abs(seconds) >= 1 else "0s"


def relative(when: dt.datetime | str | float | None, now: float) -> str:
    """``in 5m30s`` / ``3h ago`` / ``now``; minutes only once it is an hour away."""
    if when is None:
        return "-"
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    at = when.timestamp() if isinstance(when, dt.datetime) else float(when)
    seconds = at - now
    span = abs(seconds) if abs(seconds) < 3600 else round(abs(seconds) / 60) * 60
    if span < 1:
        return "now"
    return f"in {duration(span)}" if seconds > 0 else f"{duration(span)} ago"


def local(when: dt.datetime | str | float | None) -> str:
    """The instant in this machine's zone, with its offset: ``2026-11-30 14:40 +01:00``."""
    if when is None:
        return "-"
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, dt.UTC)
    shown = when.astimezone()
    offset = shown.strftime("%z")
    return f"{shown:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def expires_in(minutes: float | None) -> str:
    """A token's time left: ``1h6m``, ``expired 3m ago``, or ``unknown``."""
    if minutes is None:
        return "unknown"
    if minutes <= 0:
        return f"expired {duration(-minutes * 60)} ago" if minutes < 0 else "expired"
    return duration(round(minutes) * 60)
