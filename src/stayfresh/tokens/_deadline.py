"""When a token must be refreshed: arithmetic on POSIX seconds, with no imports.

The one rule behind :func:`stayfresh.tokens.refresh_deadline` (the keeper's
test, on a :class:`TokenSet`) and the CLI's valid-token path, which applies it
to the stored row's numbers without loading the keeper.
"""

from __future__ import annotations

#: refresh when the token expires within this many seconds (30 min) unless told otherwise
DEFAULT_THRESHOLD_SECONDS = 1800.0


def margin(expires_at: float | None, obtained_at: float | None, threshold: float) -> float:
    """The refresh margin in seconds, never more than half the token's lifetime.

    A token that lives 60 s with a 30 min threshold would otherwise be stale
    from birth and refreshed on every call.
    """
    if expires_at is not None and obtained_at is not None:
        lifetime = expires_at - obtained_at
        if 0 < lifetime < 2 * threshold:
            return lifetime / 2
    return threshold


def deadline(
    has_access_token: bool, expires_at: float | None, obtained_at: float | None, threshold: float
) -> float:
    """The POSIX time from which the token must be refreshed (inf if never).

    No access token at all means "refresh now"; no known expiry means "valid
    until a server says 401" (the auth integrations then force a refresh).
    """
    if not has_access_token:
        return float("-inf")
    if expires_at is None:
        return float("inf")
    return expires_at - margin(expires_at, obtained_at, threshold)
