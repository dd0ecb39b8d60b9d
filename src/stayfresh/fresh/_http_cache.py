"""How long an HTTP response may be reused, from its ``Cache-Control`` (RFC 9111 §5.2.2).

For kinds that keep a server's document fresh (a JWKS, a discovery document,
a feed): the server's word, bounded, never trusted blindly.
"""

from __future__ import annotations

from collections.abc import Mapping

#: a lifetime longer than this (one year) is taken as this
MAX_LIFETIME = 365 * 24 * 3600.0


def max_age(headers: Mapping[str, str], default: float) -> float:
    """Seconds the response may be reused: ``max-age``; 0 for ``no-store``/``no-cache``.

    ``headers`` has lower-case names (an :class:`~stayfresh.fresh.HttpReply`'s).
    ``default`` when the server says nothing usable (no header, a malformed or
    negative ``max-age``, an oversized header). Bounded to a year.
    """
    value = headers.get("cache-control")
    if not value or len(value) > 1000:
        return default
    found = default
    for part in value.lower().split(","):
        name, _, arg = part.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            digits = arg.strip().strip('"')
            if not digits.isdigit() or len(digits) > 12:
                return default
            found = min(float(digits), MAX_LIFETIME)
    return found
