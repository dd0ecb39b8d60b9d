"""The notifications' part of the store contract: :class:`NotifyStore`.

The store keeps reminder rules, the rolling window of pending occurrences,
delivery records, sinks, the window's freshness and per-layer telemetry. It
never expands a rule or decides whether a refresh is due: ``stayfresh.notify``
computes (pure functions taking ``now``) and hands the store plain rows.
What the store guarantees is atomicity between processes (and, with
PostgreSQL, machines):

- a reschedule reads the rules, replaces the window and records its success
  in one transaction, so a crash never leaves half a window;
- claiming an occurrence for a sink inserts a row keyed by
  ``(rule_id, due_at, sink_id)``, so two deliverers can never both claim it.

A PostgreSQL backend implements the same methods: the reschedule in one
transaction (the ``plan`` callback runs inside it), claims with
``INSERT … ON CONFLICT DO NOTHING RETURNING``, and the scheduling lock as an
advisory lock. Times are POSIX seconds.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ._base import RefreshLock

#: delivery states; ``sending`` is the only one that is not final or retried
DeliveryState = Literal["sending", "sent", "failed", "missed", "unknown"]
#: sink id of the implicit log sink used while no sink is configured
DEFAULT_SINK_ID = 0


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewRule:
    """A reminder to store: one time (``at``) or recurring (``rrule`` from ``dtstart`` in ``tz``)."""

    title: str
    body: str
    at: float | None
    rrule: str | None
    dtstart: str | None  # naive ISO local time in ``tz``
    tz: str
    enabled: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RuleRow:
    """A reminder as stored."""

    id: int
    title: str
    body: str
    at: float | None
    rrule: str | None
    dtstart: str | None
    tz: str
    enabled: bool
    created_at: float


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PendingRow:
    """One occurrence in the window, with the text it will be delivered with."""

    rule_id: int
    due_at: float
    title: str
    body: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SinkRow:
    """A delivery target. ``target`` is an Apprise URL and may contain secrets."""

    id: int
    kind: str  # log | apprise | desktop
    target: str | None
    at_least_once: bool
    created_at: float

    def __repr__(self) -> str:  # the URL may carry a token
        return f"SinkRow(id={self.id}, kind={self.kind!r}, at_least_once={self.at_least_once})"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryRow:
    """The delivery of one occurrence to one sink."""

    rule_id: int
    due_at: float
    sink_id: int
    title: str
    body: str
    state: DeliveryState
    attempts: int
    claimed_until: float | None
    next_attempt_at: float | None
    updated_at: float
    error: str | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ClaimOutcome:
    """What :meth:`NotifyStore.claim_notifications` did, for the deliverer to act on and log."""

    #: rows now ``sending`` under this caller's claim: send them, then finish them
    claims: list[DeliveryRow]
    #: occurrences found past the grace period, recorded ``missed``
    missed: list[DeliveryRow]
    #: at-most-once sends interrupted by a crash, recorded ``unknown`` (never resent)
    unknown: list[DeliveryRow]
    #: retries or interrupted at-least-once sends past the grace period, given up
    gave_up: list[DeliveryRow]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RescheduleResult:
    """What one full reschedule did."""

    rules: int
    cancelled: int
    scheduled: int
    overdue_kept: int
    rules_version: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NotifyFreshness:
    """Everything the foreground layer needs to decide, read in one query."""

    last_reschedule_at: float | None
    rules_version: int
    window_rules_version: int
    has_rules: bool


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LayerTelemetryRow:
    """Persisted counters of one refresh layer. ``executions`` = successes + failures + skips."""

    layer: str
    executions: int
    successes: int
    failures: int
    skips: int
    last_success_at: float | None
    last_failure_at: float | None
    last_skip_at: float | None
    last_error: str | None


class NotifyStore(abc.ABC):
    """Rules, window, deliveries, sinks and telemetry; every method is one transaction."""

    # -- rules -------------------------------------------------------------------------

    @abc.abstractmethod
    def add_notify_rule(self, rule: NewRule, *, now: float) -> RuleRow:
        """Store a rule and bump the rules version (the window is now stale)."""

    @abc.abstractmethod
    def get_notify_rule(self, rule_id: int) -> RuleRow | None:
        """The rule with that id, or None."""

    @abc.abstractmethod
    def list_notify_rules(self) -> list[RuleRow]:
        """Every rule, by id."""

    @abc.abstractmethod
    def delete_notify_rule(self, rule_id: int) -> bool:
        """Remove a rule and its pending occurrences (delivery history stays); bump the version."""

    # -- the window ----------------------------------------------------------------------

    @abc.abstractmethod
    def notify_freshness(self) -> NotifyFreshness:
        """Last reschedule time, rules versions and whether any rule exists: one read."""

    @abc.abstractmethod
    def reschedule_notifications(
        self,
        plan: Callable[[Sequence[RuleRow]], Sequence[PendingRow]],
        *,
        now: float,
        layer: str,
    ) -> RescheduleResult:
        """Replace the window in one transaction: cancel all, compute, schedule fresh.

        Inside one write transaction: read the enabled rules, call ``plan``
        with them (pure; its rows must be due at or after ``now``), delete
        every pending row due at or after ``now`` and every row of a rule that
        is gone or disabled, insert the plan's rows, set the window's rules
        version and ``last_reschedule_at = now``, and count a success for
        ``layer``. Overdue rows (due before ``now``) of live rules are kept for
        the deliverer, which sends them late or records them missed. If
        ``plan`` raises, nothing changes.
        """

    @abc.abstractmethod
    def list_pending_notifications(self, *, limit: int | None = None) -> list[PendingRow]:
        """Pending occurrences, earliest first."""

    @abc.abstractmethod
    def notify_scheduling_lock(self) -> RefreshLock:
        """The one cross-process lock both refresh layers take (``acquire(0)``: skip, not queue)."""

    # -- telemetry -------------------------------------------------------------------------

    @abc.abstractmethod
    def record_notify_layer(
        self,
        layer: str,
        outcome: Literal["failure", "skip"],
        *,
        at: float,
        error: str | None = None,
    ) -> None:
        """Count a failed or skipped execution of ``layer`` (successes come with the reschedule)."""

    @abc.abstractmethod
    def notify_telemetry(self) -> list[LayerTelemetryRow]:
        """The counters of every layer that ever ran, by layer name."""

    # -- sinks -------------------------------------------------------------------------

    @abc.abstractmethod
    def add_notify_sink(
        self, kind: str, target: str | None, *, at_least_once: bool, now: float
    ) -> SinkRow:
        """Store a sink."""

    @abc.abstractmethod
    def list_notify_sinks(self) -> list[SinkRow]:
        """Every sink, by id."""

    @abc.abstractmethod
    def delete_notify_sink(self, sink_id: int) -> bool:
        """Remove a sink; False when it did not exist."""

    # -- delivery ------------------------------------------------------------------------

    @abc.abstractmethod
    def claim_notifications(
        self, *, now: float, grace: float, lease: float, sinks: Mapping[int, bool]
    ) -> ClaimOutcome:
        """Take everything deliverable at ``now`` for ``sinks`` (id → at-least-once), atomically.

        - Pending rows due at or before ``now`` leave the window; for each
          sink a delivery row is inserted unless one exists: ``missed`` when
          due more than ``grace`` ago, else ``sending`` with
          ``claimed_until = now + lease`` and attempt 1 (a claim).
        - ``failed`` rows whose ``next_attempt_at`` has come are claimed again.
        - ``sending`` rows whose claim ran out (their sender died): for an
          at-least-once sink, claimed again within the grace period, else
          given up; for an at-most-once sink, recorded ``unknown`` and never
          resent.
        - Rows of sinks not in ``sinks`` (removed) are given up.
        """

    @abc.abstractmethod
    def finish_notification(
        self,
        claim: DeliveryRow,
        *,
        ok: bool,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        """Record the end of one claimed send: ``sent``, or ``failed`` (retried at ``retry_at``).

        Only while the claim is still this one (same attempt, still
        ``sending``); returns False when another deliverer took it over.
        """

    @abc.abstractmethod
    def next_notification_time(self) -> float | None:
        """When a deliverer next has something to do: the earliest pending due time,
        failed retry or sending claim expiry; None when nothing waits."""

    @abc.abstractmethod
    def list_notification_deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        """Delivery records, most recently updated first."""
