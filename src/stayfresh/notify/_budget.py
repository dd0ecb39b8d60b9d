"""Work budgets: how much expanding reminders may cost, counted rather than timed.

A rule that can never match again (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``)
makes dateutil scan day after day up to the year 9999 — seconds of CPU for
one rule, on every reschedule, in every command (the foreground layer runs
when a command opens the store). Rules whose text shows the problem are
refused by :mod:`._rrule`; everything else is charged while it expands, in
*candidates examined*: each wall time the iterator produces costs 1, each
calendar period dateutil sets up for its scan (a month, or a year for a
yearly rule) costs :data:`PERIOD_COST`, about the days it looks at.

Counting makes the limits deterministic (the same rule always fails at the
same point, on any machine, under any load), so tests can hit them without
sleeping. The foreground layer adds a time limit as a backstop, because a
slow disk or a loaded machine is work we do not count.
"""

from __future__ import annotations

import time
from typing import Literal

from ..errors import ConfigError, StayfreshError

#: candidates one rule may examine in one expansion: far more than any rule that fires
#: at least once in a few decades needs, and at most ~0.2 s of dateutil's scanning here
RULE_WORK_BUDGET = 20_000
#: what one calendar period (a month, or a year) set up by dateutil's scan is charged
PERIOD_COST = 31
#: work the foreground layer may waste on rules it has to leave out (their whole cost)
#: before it gives up on the window: the third rule at its limit stops it
FOREGROUND_WORK_BUDGET = 3 * RULE_WORK_BUDGET - 1
#: seconds the foreground layer's expansion may take, whatever was counted (a backstop)
FOREGROUND_TIME_BUDGET = 2.0


class RuleTooExpensive(ConfigError):
    """A reminder rule needs more than :data:`RULE_WORK_BUDGET` to expand: it cannot make progress.

    A :class:`ConfigError` (exit 2) when a rule is added; in a window the
    rule is left out and reported, and the other reminders are scheduled.
    """


class WindowBudgetExceeded(StayfreshError):
    """The whole window needs more than the caller allowed (the foreground layer's budget).

    Nothing is changed: the reschedule is abandoned and the background
    layer, which has no such limit, does it.
    """


class WorkBudget:
    """A counter with a limit, and optionally a time limit shared with the rules under it.

    ``kind`` says what running out means: ``"rule"`` raises
    :class:`RuleTooExpensive` (leave this rule out), ``"window"`` raises
    :class:`WindowBudgetExceeded` (give up on the whole window). A window
    budget is charged by :func:`compute_window` with the cost of each rule
    it leaves out — work that bought nothing; the work of rules that
    expand is what the window is for and is bounded by their own budgets.
    Its time limit starts with the first charge of any rule under it, so
    waiting for the database is not counted against the expansion.
    """

    __slots__ = ("_deadline", "kind", "limit", "parent", "seconds", "used")

    def __init__(
        self,
        limit: int,
        *,
        kind: Literal["rule", "window"] = "rule",
        parent: WorkBudget | None = None,
        seconds: float | None = None,
    ) -> None:
        self.limit = limit
        self.kind = kind
        self.parent = parent
        self.seconds = seconds
        self.used = 0
        self._deadline: float | None = None

    @classmethod
    def foreground(cls) -> WorkBudget:
        """The foreground layer's budget for one window: wasted work and time."""
        return cls(FOREGROUND_WORK_BUDGET, kind="window", seconds=FOREGROUND_TIME_BUDGET)

    def for_rule(self) -> WorkBudget:
        """A rule's own budget, under this one's time limit."""
        return WorkBudget(RULE_WORK_BUDGET, parent=self)

    def charge(self, amount: int = 1) -> None:
        """Count ``amount`` candidates; raise when this budget runs out or time is up."""
        self.used += amount
        if self.used > self.limit:
            raise self._exceeded(f"more than {self.limit:,} candidates examined")
        self.check_time()

    def check_time(self) -> None:
        """Raise when this budget's (or its parent's) time limit has passed."""
        if self.parent is not None:
            self.parent.check_time()
        if self.seconds is None:
            return
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.seconds
        elif now > self._deadline:
            raise self._exceeded(f"its time budget of {self.seconds:g} s is used up")

    def _exceeded(self, why: str) -> StayfreshError:
        if self.kind == "window":
            return WindowBudgetExceeded(f"the notification window needs too much work ({why})")
        return RuleTooExpensive(
            f"the rule cannot make progress ({why} without reaching the end of the window): "
            "check that its BY… parts can match, e.g. BYMONTH=2;BYMONTHDAY=30 never does"
        )
