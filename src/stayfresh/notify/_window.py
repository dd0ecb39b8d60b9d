"""The rolling window: which occurrences are pending at ``now`` (pure).

ADR-001 keeps only the next two days of notifications scheduled and rebuilds
that buffer as a whole; ADR-007 keeps the idea and adds a second caller. This
module is the decision "what belongs in the buffer", free of I/O so that it
can be tested against a brute-force expansion and benchmarked alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence

from ..store import PendingRow, RuleRow
from ._rules import compile_rule, occurrences

log = logging.getLogger(__name__)

#: how far ahead pending notifications are kept (ADR-001's rolling window)
NOTIFICATION_WINDOW = dt.timedelta(days=2)


@dataclasses.dataclass(frozen=True, slots=True)
class WindowPlan:
    """The window computed at one ``now``: what to schedule, what did not fit, what failed."""

    rows: tuple[PendingRow, ...]
    left_out: tuple[PendingRow, ...] = ()
    #: rules that could not be expanded (id, message); the others are still scheduled
    broken: tuple[tuple[int, str], ...] = ()


def compute_window(
    rules: Sequence[RuleRow],
    now: dt.datetime,
    *,
    horizon: dt.timedelta = NOTIFICATION_WINDOW,
    capacity: int | None = None,
) -> WindowPlan:
    """Occurrences of the enabled ``rules`` in ``[now, now + horizon]``, earliest first.

    Ordered by (due time, rule id); each (rule, time) once. With a
    ``capacity`` only the earliest that many are kept, like a phone that
    holds 64 pending notifications; the rest come back in a later window.
    A rule that cannot be expanded (a zone that disappeared from tzdata) is
    reported in ``broken`` instead of failing everyone else's reminders.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    end = now + horizon
    found: list[tuple[float, int, PendingRow]] = []
    broken: list[tuple[int, str]] = []
    for row in rules:
        if not row.enabled:
            continue
        try:
            times = occurrences(compile_rule(row), now, end)
        except Exception as exc:  # one bad rule must not empty the window
            broken.append((row.id, f"{type(exc).__name__}: {exc}"))
            continue
        for ts in times:
            found.append(
                (ts, row.id, PendingRow(rule_id=row.id, due_at=ts, title=row.title, body=row.body))
            )
    found.sort(key=lambda item: (item[0], item[1]))
    ordered = tuple(item[2] for item in found)
    if capacity is not None and len(ordered) > capacity:
        return WindowPlan(ordered[:capacity], ordered[capacity:], tuple(broken))
    return WindowPlan(ordered, (), tuple(broken))
