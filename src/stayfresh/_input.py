"""The one parser per kind of outside input: durations, names, JSON documents.

DESIGN.md, "Trust at the edges": what comes from outside is bounded (size,
time, work), checked, and turned into a typed error. Every command option,
setting and file reader goes through these few functions, so they accept the
same forms everywhere and refuse the same absurdities (``1e400s``, a 100,000
levels deep ``--input``, a megabyte-long name) before anything is stored.

They are pure and raise :class:`ValueError` with a one-line message that
never echoes more than a short prefix of the input; callers turn it into
:class:`~stayfresh.errors.ConfigError` (exit 2) or a click usage error. This
module imports nothing from stayfresh, so every part (tokens, notify, work,
jobs, cli) may use it without breaking the one-way dependencies.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import unicodedata
from typing import Any

#: the longest duration anything accepts (ten years): long enough for any
#: real interval, short enough that ``now + d`` never overflows a datetime
MAX_DURATION = 10 * 365 * 86400.0
#: a duration is a few characters; longer text is refused before it is scanned
MAX_DURATION_TEXT = 64
#: the longest work name, tag or item id (account names: 100, see tokens)
MAX_NAME = 200
#: ``work add --input`` and other small JSON documents given by a user
MAX_JSON_BYTES = 64 * 1024
#: nesting deeper than this is refused before ``json.loads`` would recurse
MAX_JSON_DEPTH = 32

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?", re.IGNORECASE)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")
#: a JSON string (possessive, so an unterminated one costs one linear pass)
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_DEPTH_STEP = str.maketrans({"[": "\1", "{": "\1", "]": "\0", "}": "\0"})


def shorten(value: object, limit: int = 40) -> str:
    """``repr`` of a user's value cut to ``limit`` characters, for one-line messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """Seconds from ``"15m"``, ``"30s"``, ``"1h30m"``, ``"2d"``, ``"250ms"`` or a number.

    A bare number means seconds. Units: ms, s, m, h, d, w (any case; spaces
    between parts are ignored). The result is finite, at least 0 and at most
    :data:`MAX_DURATION`; anything else raises ``ValueError``, so a typo
    becomes a usage error instead of a strange (or overflowing) schedule.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"{what}: not a duration: {shorten(text)}")
    if isinstance(text, str):
        if len(text) > MAX_DURATION_TEXT:
            raise ValueError(f"{what}: not a duration: {shorten(text)} (too long)")
        seconds = _duration_text(text, what)
    else:
        try:
            seconds = float(text)
        except OverflowError:  # an int beyond any float
            seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {shorten(text)}")
    if seconds > MAX_DURATION:
        raise ValueError(
            f"{what} must be at most {format_duration(MAX_DURATION)}, got {shorten(text)}"
        )
    return seconds


def _duration_text(text: str, what: str) -> float:
    cleaned = "".join(text.split())
    if not cleaned:
        raise ValueError(f"{what}: empty duration")
    total = 0.0
    pos = 0
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        value, unit = match.groups()
        total += float(value) * _UNITS[(unit or "s").lower()]
        pos = match.end()
    if pos != len(cleaned):
        raise ValueError(f"{what}: not a duration: {shorten(text)} (use e.g. 30s, 15m, 1h, 2d)")
    return total


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration` for display: ``5400`` → ``"1h30m"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    remaining = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def check_name(value: object, what: str, *, max_len: int = MAX_NAME, extra: str = "") -> str:
    """``value`` if it is a safe name: letters, digits, ``. _ @ + -`` (and ``extra``).

    Names end up in work names (``token-refresh:NAME``), file names, command
    lines and log lines, so they are short and plain; they cannot start with
    ``-`` (an option) or ``.`` (a hidden or relative path).
    """
    allowed = _NAME_CHARS | frozenset(extra)
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_len
        or value[0] in ".-"
        or not set(value) <= allowed
    ):
        chars = " ".join("._@+-" + extra)
        raise ValueError(
            f"invalid {what} {shorten(value)}: use letters, digits and {chars} "
            f"(at most {max_len} characters, not starting with . or -)"
        )
    return value


def check_text(value: object, what: str, *, max_len: int = MAX_NAME) -> str:
    """``value`` if it is one line of at most ``max_len`` printable characters (item ids)."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_len
        or any(unicodedata.category(c).startswith(("C", "Z")) and c != " " for c in value)
    ):
        raise ValueError(
            f"invalid {what} {shorten(value)}: one line of at most {max_len} printable characters"
        )
    return value


def json_depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest, found without parsing it.

    ``json.loads`` recurses once per level, so 100,000 ``[`` raise
    ``RecursionError`` (or worse, on a small stack). This linear scan drops
    strings, keeps only brackets and takes the running maximum.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_DEPTH_STEP)
    steps = (1 if b == "\1" else -1 for b in brackets)
    return max(itertools.accumulate(steps, initial=0))


def loads_json(
    data: str | bytes,
    what: str,
    *,
    max_bytes: int | None = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """``json.loads`` of a document from outside, bounded in size and nesting first.

    Raises ``ValueError`` (one line, no more than a prefix of the input) for
    a document that is too large, too deep, not UTF-8 or not JSON.
    ``max_bytes=None`` when the caller has already bounded the size (an HTTP
    body read with a cap).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes // 1024} KiB")
    if isinstance(data, bytes):
        try:
            data = data.decode(json.detect_encoding(data))
        except (UnicodeDecodeError, LookupError):
            raise ValueError(f"{what} is not UTF-8 text") from None
    if json_depth(data) > max_depth:
        raise ValueError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # within max_depth, yet the stack was already deep
        raise ValueError(f"{what} nests too deeply") from None
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
