"""The foreground layer's test, on plain numbers and with no imports.

ADR-007's ``shouldRescheduleNotifications``: the one rule behind
:func:`stayfresh.notify.refresh_decision` and the CLI's valid-token path,
which reads the notification state's numbers without loading the notify
package's machinery (rules, time zones, RRULE expansion).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers treat this as True
if TYPE_CHECKING:
    from ..store import NotifyFreshness

#: the foreground layer reschedules when this many hours passed since the last reschedule
NOTIFICATION_REFRESH_HOURS = 4


def window_bounds(
    last_reschedule_at: float | None,
    rules_version: int,
    window_rules_version: int,
    has_rules: bool,
    every: float = NOTIFICATION_REFRESH_HOURS * 3600.0,
) -> tuple[float, float]:
    """(fresh from, stale from): the window is fresh at ``now`` when ``fresh_from <= now < stale_from``.

    Stale at once when the reminders changed since it was built or it never
    was; never stale without reminders; otherwise fresh for ``every`` seconds
    after the last reschedule — and stale before it (the clock went back).
    """
    if rules_version != window_rules_version:
        return _STALE
    if not has_rules:
        return -_INF, _INF
    if last_reschedule_at is None:
        return _STALE
    return last_reschedule_at, last_reschedule_at + every


_INF = float("inf")
_STALE = (-_INF, -_INF)


def reschedule_needed(
    last_reschedule_at: float | None,
    rules_version: int,
    window_rules_version: int,
    has_rules: bool,
    now: float,
    every: float = NOTIFICATION_REFRESH_HOURS * 3600.0,
) -> tuple[bool, str]:
    """(whether the window must be rebuilt, why) — :func:`window_bounds` at ``now``."""
    fresh_from, stale_from = window_bounds(
        last_reschedule_at, rules_version, window_rules_version, has_rules, every
    )
    needed = not fresh_from <= now < stale_from
    if rules_version != window_rules_version:
        return needed, "reminders changed since the last reschedule"
    if not has_rules:
        return needed, "no enabled reminders and the window is up to date"
    if last_reschedule_at is None:
        return needed, "never rescheduled"
    elapsed = now - last_reschedule_at
    if elapsed < 0:
        return needed, f"the clock is {-elapsed:.0f}s before the last reschedule"
    if needed:
        return needed, f"{elapsed / 3600:.2f} h since the last reschedule (≥ {every / 3600:g} h)"
    return needed, f"last reschedule {elapsed / 3600:.2f} h ago (< {every / 3600:g} h)"


def window_decision(
    fresh: NotifyFreshness, now: float, every: float = NOTIFICATION_REFRESH_HOURS * 3600.0
) -> tuple[bool, str]:
    """:func:`reschedule_needed` on the store's one freshness read."""
    return reschedule_needed(
        fresh.last_reschedule_at,
        fresh.rules_version,
        fresh.window_rules_version,
        fresh.has_rules,
        now,
        every,
    )
