"""What runs after each successful reschedule: registered once, at the composition point.

Kept apart from the reschedule itself so that wiring it (every ``stayfresh``
command does, through :func:`stayfresh._wiring.install`) does not import the
rule expansion machinery (RRULE, time zones).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers treat this as True
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..store import Store

#: called after every successful reschedule with (store, now): the delivery scheduler
after_reschedule: list[Callable[[Store, float], object]] = []


def add_reschedule_hook(hook: Callable[[Store, float], object]) -> None:
    """Run ``hook(store, now)`` after each successful reschedule (used to wake the deliverer)."""
    if hook not in after_reschedule:
        after_reschedule.append(hook)
