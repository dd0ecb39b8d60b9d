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
from ._budget import RULE_WORK_BUDGET, WindowBudgetExceeded, WorkBudget
from ._config import NOTIFICATION_WINDOW
from ._rules import compile_rule, occurrences

log = logging.getLogger(__name__)


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
    budget: WorkBudget | None = None,
) -> WindowPlan:
    """Occurrences of the enabled ``rules`` in ``[now, now + horizon]``, earliest first.

    Ordered by (due time, rule id); each (rule, time) once. With a
    ``capacity`` only the earliest that many are kept, like a phone that
    holds 64 pending notifications; the rest come back in a later window.
    A rule that cannot be expanded (a zone that disappeared from tzdata, a
    row whose RRULE fails today's check, a rule over its work budget) is
    reported in ``broken`` instead of failing everyone else's reminders.
    Each rule has :data:`RULE_WORK_BUDGET`; with a ``budget`` for the whole
    window (the foreground layer's), the cost of every rule left out is
    charged to it, and running out of it (or of its time) raises
    :class:`WindowBudgetExceeded`: nothing is planned.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    end = now + horizon
    found: list[tuple[float, int, PendingRow]] = []
    broken: list[tuple[int, str]] = []
    for row in rules:
        if not row.enabled:
            continue
        own = budget.for_rule() if budget is not None else WorkBudget(RULE_WORK_BUDGET)
        try:
            times = occurrences(compile_rule(row), now, end, own)
        except WindowBudgetExceeded:
            raise
        except Exception as exc:  # one bad rule must not empty the window
            broken.append((row.id, f"{type(exc).__name__}: {exc}"))
            if budget is not None:
                budget.charge(own.used)
            continue
        for ts in times:
            if row.snoozed_until is not None and ts < row.snoozed_until:
                continue  # snoozed: this occurrence does not fire
            found.append(
                (ts, row.id, PendingRow(rule_id=row.id, due_at=ts, title=row.title, body=row.body))
            )
    found.sort(key=lambda item: (item[0], item[1]))
    ordered = tuple(item[2] for item in found)
    if capacity is not None and len(ordered) > capacity:
        return WindowPlan(ordered[:capacity], ordered[capacity:], tuple(broken))
    return WindowPlan(ordered, (), tuple(broken))
