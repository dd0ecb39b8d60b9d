"""One backoff function and one ``Retry-After`` parser for the whole project.

Every retry loop in stayfresh — the work engine's rescheduling, page and
download retries, notification re-sends, PostgreSQL reconnects — asks
:func:`backoff_delay` how long to wait, and every HTTP answer's
``Retry-After`` is read by :func:`parse_retry_after`. Both are pure (time is
an argument), so they are tested without waiting and cannot drift apart.

Why not tenacity or stamina: they own the sleeping and the loop. Ours cannot
give those away: a worker's wait must end when the work is cancelled
(``ctx.wait_cancelled``), the engine's retries are rows in the database that
survive a restart, and the keeper's single flight decides itself what a
failure means. What is left to share is this arithmetic.

This module imports nothing from stayfresh and no HTTP client, so the token
providers (on the valid-token path) and ``notify`` can use it.
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum

#: WorkManager's backoff clamp and default initial delay (seconds)
MIN_BACKOFF = 10.0
MAX_BACKOFF = 5 * 60 * 60.0
DEFAULT_BACKOFF = 30.0
#: a server asking to wait longer than this is waited for this long at most
MAX_RETRY_AFTER = 24 * 3600.0


class BackoffPolicy(StrEnum):
    """How the wait before a retry grows with the attempt number."""

    EXPONENTIAL = "exponential"
    LINEAR = "linear"


def backoff_delay(
    attempt: int,
    policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL,
    initial: float = DEFAULT_BACKOFF,
    *,
    floor: float = MIN_BACKOFF,
    cap: float = MAX_BACKOFF,
    at_least: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential: ``initial * 2**(attempt-1)``; linear: ``initial * attempt``;
    clamped to ``[floor, cap]`` (the work engine's defaults: 10 s to 5 h).
    ``at_least`` is what the server asked for (``Retry-After``): honoured, but
    never beyond ``cap``, so a hostile server cannot park a loop for a day.
    """
    n = max(1, attempt)
    if policy is BackoffPolicy.LINEAR:
        delay = initial * n
    else:
        # avoid float overflow for absurd attempt counts: the cap wins long before
        delay = initial * (2.0 ** min(n - 1, 64))
    delay = min(cap, max(floor, delay))
    if at_least is not None and at_least > delay:
        delay = min(cap, at_least)
    return delay


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a ``Retry-After`` value (delta seconds or an HTTP date), capped at a day.

    None when absent or unreadable; a date in the past is 0. ``now`` is an
    aware datetime (the moment the answer arrived).
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
        return min(seconds, MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        import email.utils  # a Retry-After date is rare: not loaded with the module

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 5322's "-0000" parses as naive: it is UTC with no local zone given
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)
