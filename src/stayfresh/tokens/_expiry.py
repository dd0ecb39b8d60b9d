"""Turn every expiry format providers use into an aware UTC datetime.

Accepted: ``expires_in`` seconds (counted from when the request was sent), ISO
8601 with or without an offset (no offset means UTC), epoch seconds, epoch
milliseconds (numbers or numeric strings), and Java's ``Date.toString()``
(``Tue Nov 24 06:19:38 UTC 2026``). Anything else raises
:class:`ExpiryParseError`, never another exception: text longer than any of
these forms is refused unread, and every result lies between 1970 and 9999.
A user may also give an offset from now (``+45m``,
:func:`parse_expiry_input`), read by the one duration parser.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from .._input import parse_duration, shorten

UTC = dt.UTC

#: epoch values above this are milliseconds (year 5138 in seconds)
_MS_THRESHOLD = 1e11
#: Java's Date.toString(): "EEE MMM dd HH:mm:ss zzz yyyy"
_JAVA_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([A-Za-z][A-Za-z0-9+:\-/_]*) (\d{4})$"
)
#: the abbreviations Java prints for the zones users meet most, as fixed offsets
_ABBREVIATIONS: dict[str, int] = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AKST": -9, "AKDT": -8, "HST": -10,
    "WET": 0, "WEST": 1, "BST": 1, "IST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3,
    "MSK": 3, "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11, "ACST": 9, "AWST": 8,
    "NZST": 12, "NZDT": 13,
}  # fmt: skip
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: longer than any supported form (a Java date with a long region id is ~60)
_MAX_TEXT = 100
_MIN = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MAX = dt.datetime(9999, 1, 1, tzinfo=UTC)


class ExpiryParseError(ValueError):
    """The value is not an expiry stayfresh understands."""


def from_expires_in(seconds: object, sent_at: dt.datetime) -> dt.datetime:
    """``sent_at + expires_in``: counting from the send time errs on the safe side."""
    number = _number(seconds)
    if number is None or number < 0 or number > 10 * 365 * 86400:
        raise ExpiryParseError(f"expires_in must be a number of seconds, got {shorten(seconds)}")
    try:
        return sent_at.astimezone(UTC) + dt.timedelta(seconds=number)
    except OverflowError:
        raise ExpiryParseError(f"expires_in {shorten(seconds)} goes past the year 9999") from None


def parse_expiry(value: object) -> dt.datetime:
    """An absolute expiry in any supported form → aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return _aware(value)
    number = _number(value)
    if number is not None:
        return _from_epoch(number, value)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise ExpiryParseError(f"not a timestamp: {shorten(value)}")
    text = value.strip()
    java = _JAVA_RE.match(text)
    if java:
        return _from_java(text, java.group(7))
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ExpiryParseError(f"unrecognised timestamp: {shorten(text)}") from None
    return _aware(parsed)


def parse_expiry_input(value: str, now: dt.datetime) -> dt.datetime:
    """An expiry a user typed: ``+45m`` / ``+1h30m`` (an offset from ``now``) or any absolute form.

    The offset goes through the one duration parser, so it is at most ten
    years and ``now + offset`` cannot overflow; the result is range-checked
    like every other expiry.
    """
    text = value.strip()
    if not text.startswith("+"):
        return parse_expiry(text)
    try:
        offset = dt.timedelta(seconds=parse_duration(text[1:], what="expiry offset"))
    except ValueError as exc:
        raise ExpiryParseError(str(exc)) from None
    try:
        return _aware(now.astimezone(UTC) + offset)
    except OverflowError:  # now is within ten years of the year 9999
        raise ExpiryParseError("expiry past the year 9999") from None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (
        isinstance(value, str)
        and len(value) <= _MAX_TEXT
        and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value)
    ):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _from_epoch(number: float, original: object) -> dt.datetime:
    seconds = number / 1000.0 if abs(number) >= _MS_THRESHOLD else number
    if seconds < 0:
        raise ExpiryParseError(f"negative epoch timestamp: {shorten(original)}")
    try:
        result = dt.datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ExpiryParseError(f"epoch timestamp out of range: {shorten(original)}") from None
    return result


def _from_java(text: str, zone: str) -> dt.datetime:
    # dateutil loads only for Java dates: ISO and epoch expiries are the common case
    from dateutil import parser as dateparser
    from dateutil import tz

    offset = _ABBREVIATIONS.get(zone.upper())
    tzinfo: dt.tzinfo | None
    if offset is not None:
        tzinfo = dt.timezone(dt.timedelta(hours=offset))
    else:
        tzinfo = tz.gettz(zone)  # Java prints region ids for zones it has no name for
        if tzinfo is None:
            raise ExpiryParseError(f"unknown time zone {shorten(zone)} in {shorten(text)}")
    try:
        naive = dateparser.parse(text.replace(f" {zone} ", " "), ignoretz=True)
    except (ValueError, OverflowError):
        raise ExpiryParseError(f"unrecognised Java date: {shorten(text)}") from None
    if _WEEKDAYS[naive.weekday()] != text[:3]:
        raise ExpiryParseError(f"weekday does not match the date in {shorten(text)}")
    return _aware(naive.replace(tzinfo=tzinfo))


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        result = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ExpiryParseError(f"timestamp out of range: {value!r}") from None
    if not _MIN <= result <= _MAX:
        raise ExpiryParseError(f"timestamp out of range: {result.isoformat()}")
    return result
