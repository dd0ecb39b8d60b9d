"""Notifications: rules, the rolling window, deliveries and sinks, written once.

The decisions come first, as pure functions of rows and ``now`` (no
database): which state a due occurrence's delivery starts in
(:func:`new_deliveries`), what a claim does with a stale delivery — claimed
again, ``unknown``, given up (:func:`settle_stale`) — how a finished send is
recorded (:func:`finished_state`), what a reschedule plan may hold
(:func:`check_plan`). :class:`NotifySQL` then runs them inside one
transaction per method, over the named statements of ``queries/notify.sql``.

Both backends run the same statements. What differs is in the text, and
translated mechanically: PostgreSQL locks the ``notify_state`` row during a
reschedule (two hosts rescheduling run one after the other) and the stale
deliveries it settles (``FOR UPDATE SKIP LOCKED``: concurrent claimers never
wait on each other's rows); SQLite's ``BEGIN IMMEDIATE`` gives both already.
Due pending rows are deleted with ``RETURNING`` first, so on PostgreSQL their
row locks keep a second claimer off them; then each delivery is inserted with
``ON CONFLICT DO NOTHING``, and the primary key decides who claims it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from ._contracts import NotifyStore
from ._rows import (
    ClaimOutcome,
    DeliveryRow,
    DeliveryState,
    NewRule,
    NotifyFreshness,
    PendingRow,
    RescheduleResult,
    RowLike,
    RuleRow,
    SinkRow,
    from_row,
)
from ._sql import SQLBase, Tx

#: (rule_id, due_at, sink_id): one occurrence for one sink, a delivery's primary key
Key = tuple[int, float, int]
#: where a claim puts a delivery row it touched (a :class:`ClaimOutcome` field)
Bucket = Literal["claims", "missed", "unknown", "gave_up"]

#: errors a claim records (appended to the row's last error when giving up)
SINK_REMOVED = "the sink was removed"
GRACE_OVER = "grace period over"
NOT_RESENT = "interrupted while sending; not resent (at-most-once sink)"

# -- the decisions (pure) ------------------------------------------------------------------


def check_plan(rows: Sequence[PendingRow], now: float) -> None:
    """A reschedule plan holds only occurrences due at or after ``now``; else ValueError."""
    if any(r.due_at < now for r in rows):
        raise ValueError("a reschedule plan may only hold occurrences due at or after now")


def window_end(rows: Sequence[PendingRow]) -> float | None:
    """The last due time of a new window (None when it is empty)."""
    return max((r.due_at for r in rows), default=None)


def new_deliveries(
    due: Iterable[PendingRow], sinks: Iterable[int], *, now: float, grace: float, lease: float
) -> list[DeliveryRow]:
    """The delivery rows a claim inserts for the pending rows due at ``now``.

    Earliest first (due time, then rule), each for every sink in the order
    given. Due more than ``grace`` ago: ``missed`` (never sent, no
    attempt). Otherwise ``sending``, attempt 1, claimed until ``now + lease``.
    """
    cutoff = now - grace
    order = list(sinks)
    rows: list[DeliveryRow] = []
    for p in sorted(due, key=lambda p: (p.due_at, p.rule_id)):
        late = p.due_at < cutoff
        rows.extend(
            DeliveryRow(
                rule_id=p.rule_id,
                due_at=p.due_at,
                sink_id=sink_id,
                title=p.title,
                body=p.body,
                state="missed" if late else "sending",
                attempts=0 if late else 1,
                claimed_until=None if late else now + lease,
                next_attempt_at=None,
                updated_at=now,
                error=None,
            )
            for sink_id in order
        )
    return rows


def append_error(error: str | None, why: str) -> str:
    """``why`` after the row's last error, if any (``"boom; grace period over"``)."""
    return why if error is None else f"{error}; {why}"


def settle_stale(
    row: DeliveryRow, sinks: Mapping[int, bool], *, now: float, grace: float, lease: float
) -> tuple[Bucket, DeliveryRow]:
    """What a claim does with a stale delivery: a ``failed`` row whose retry time has
    come, or a ``sending`` row whose claim ran out (its sender died).

    In this order: its sink is gone (not in ``sinks``, id → at-least-once):
    given up. An at-most-once send that was interrupted: ``unknown``, never
    resent (nobody knows whether it left). Due more than ``grace`` ago: given
    up. Otherwise claimed again: ``sending``, one more attempt, until
    ``now + lease``.
    """
    at_least_once = sinks.get(row.sink_id)
    if at_least_once is None:
        return "gave_up", _given_up(row, now, SINK_REMOVED)
    if row.state == "sending" and not at_least_once:
        return "unknown", dataclasses.replace(
            row, state="unknown", claimed_until=None, updated_at=now, error=NOT_RESENT
        )
    if row.due_at < now - grace:
        return "gave_up", _given_up(row, now, GRACE_OVER)
    return "claims", dataclasses.replace(
        row, state="sending", attempts=row.attempts + 1, claimed_until=now + lease,
        next_attempt_at=None, updated_at=now,
    )  # fmt: skip


def _given_up(row: DeliveryRow, now: float, why: str) -> DeliveryRow:
    return dataclasses.replace(
        row, state="failed", claimed_until=None, next_attempt_at=None, updated_at=now,
        error=append_error(row.error, why),
    )  # fmt: skip


def claim_outcome(touched: Iterable[tuple[Bucket, DeliveryRow]]) -> ClaimOutcome:
    """The claim's report, in the order the rows were touched, each as it was left."""
    last: dict[Key, DeliveryRow] = {}
    keys: dict[Bucket, list[Key]] = {"claims": [], "missed": [], "unknown": [], "gave_up": []}
    for bucket, row in touched:
        k = (row.rule_id, row.due_at, row.sink_id)
        last[k] = row
        keys[bucket].append(k)
    return ClaimOutcome(
        claims=[last[k] for k in keys["claims"]],
        missed=[last[k] for k in keys["missed"]],
        unknown=[last[k] for k in keys["unknown"]],
        gave_up=[last[k] for k in keys["gave_up"]],
    )


def finished_state(ok: bool, retry_at: float | None) -> tuple[DeliveryState, float | None]:
    """A claimed send's end: ``sent``, or ``failed`` until ``retry_at`` (None: no retry)."""
    return ("sent", None) if ok else ("failed", retry_at)


# -- rows ----------------------------------------------------------------------------------


def rule_from_row(r: RowLike) -> RuleRow:
    return from_row(RuleRow, r)


def pending_from_row(r: RowLike) -> PendingRow:
    return from_row(PendingRow, r)


def delivery_from_row(r: RowLike) -> DeliveryRow:
    return from_row(DeliveryRow, r)


def sink_from_row(r: RowLike) -> SinkRow:
    return from_row(SinkRow, r)


def _delivery_params(row: DeliveryRow) -> dict[str, Any]:
    """Every column of a delivery row, by name (spelled out: the claim's hot loop)."""
    return {
        "rule_id": row.rule_id, "due_at": row.due_at, "sink_id": row.sink_id,
        "title": row.title, "body": row.body, "state": row.state, "attempts": row.attempts,
        "claimed_until": row.claimed_until, "next_attempt_at": row.next_attempt_at,
        "updated_at": row.updated_at, "error": row.error,
    }  # fmt: skip


# -- the store methods -----------------------------------------------------------------------


class NotifySQL(SQLBase, NotifyStore):
    """The :class:`NotifyStore` methods, for both backends."""

    # -- rules -------------------------------------------------------------------------

    def add_notify_rule(self, rule: NewRule, *, now: float) -> RuleRow:
        def body(tx: Tx) -> RuleRow:
            row = tx.one(
                "add_rule", title=rule.title, body=rule.body, at=rule.at, rrule=rule.rrule,
                dtstart=rule.dtstart, tz=rule.tz, enabled=rule.enabled, now=now,
            )  # fmt: skip
            assert row is not None  # RETURNING of a plain INSERT
            tx.run("bump_rules_version")
            return rule_from_row(row)

        return self.transact(body)

    def get_notify_rule(self, rule_id: int) -> RuleRow | None:
        row = self.select_one("get_rule", id=rule_id)
        return None if row is None else rule_from_row(row)

    def list_notify_rules(self) -> list[RuleRow]:
        return [rule_from_row(r) for r in self.select("list_rules")]

    def update_notify_rule(self, rule_id: int, rule: NewRule) -> RuleRow | None:
        def body(tx: Tx) -> RuleRow | None:
            row = tx.one(
                "update_rule", id=rule_id, title=rule.title, body=rule.body, at=rule.at,
                rrule=rule.rrule, dtstart=rule.dtstart, tz=rule.tz, enabled=rule.enabled,
            )  # fmt: skip
            if row is None:
                return None
            tx.run("bump_rules_version")
            return rule_from_row(row)

        return self.transact(body)

    def snooze_notify_rule(self, rule_id: int, until: float | None) -> RuleRow | None:
        def body(tx: Tx) -> RuleRow | None:
            row = tx.one("snooze_rule", id=rule_id, until=until)
            if row is None:
                return None
            tx.run("bump_rules_version")
            return rule_from_row(row)

        return self.transact(body)

    def delete_notify_rule(self, rule_id: int) -> bool:
        def body(tx: Tx) -> bool:
            if tx.run("delete_rule", id=rule_id) == 0:
                return False
            tx.run("delete_rule_pending", id=rule_id)
            tx.run("bump_rules_version")
            return True

        return self.transact(body)

    # -- the window ----------------------------------------------------------------------

    def notify_freshness(self) -> NotifyFreshness:
        row = self.select_one("freshness")
        assert row is not None  # notify_state has its one row from the migration on
        return from_row(NotifyFreshness, row)

    def reschedule_notifications(
        self,
        plan: Callable[[Sequence[RuleRow]], Sequence[PendingRow]],
        *,
        now: float,
    ) -> RescheduleResult:
        # the body may run again on PostgreSQL after a lost connection: ``plan`` is pure
        def body(tx: Tx) -> RescheduleResult:
            state = tx.one("lock_rules_version")
            version = 0 if state is None else int(state["rules_version"])
            rules = [rule_from_row(r) for r in tx.all("enabled_rules")]
            rows = plan(rules)
            check_plan(rows, now)
            cancelled = tx.run("cancel_window", now=now)
            left = tx.one("count_pending")
            tx.many(
                "add_pending",
                ({"rule_id": r.rule_id, "due_at": r.due_at, "title": r.title, "body": r.body}
                 for r in rows),
            )  # fmt: skip
            tx.run("window_built", version=version, now=now, window_end=window_end(rows))
            return RescheduleResult(
                rules=len(rules), cancelled=cancelled, scheduled=len(rows),
                overdue_kept=0 if left is None else int(left["n"]), rules_version=version,
            )  # fmt: skip

        return self.transact(body)

    def list_pending_notifications(self, *, limit: int | None = None) -> list[PendingRow]:
        return [pending_from_row(r) for r in self.select("list_pending", limit=limit)]

    # -- sinks -------------------------------------------------------------------------

    def add_notify_sink(
        self, kind: str, target: str | None, *, at_least_once: bool, now: float
    ) -> SinkRow:
        def body(tx: Tx) -> SinkRow:
            row = tx.one("add_sink", kind=kind, target=target, at_least_once=at_least_once, now=now)
            assert row is not None  # RETURNING of a plain INSERT
            return sink_from_row(row)

        return self.transact(body)

    def list_notify_sinks(self) -> list[SinkRow]:
        return [sink_from_row(r) for r in self.select("list_sinks")]

    def delete_notify_sink(self, sink_id: int) -> bool:
        return self.transact(lambda tx: tx.run("delete_sink", id=sink_id)) > 0

    # -- delivery ------------------------------------------------------------------------

    def claim_notifications(
        self, *, now: float, grace: float, lease: float, sinks: Mapping[int, bool]
    ) -> ClaimOutcome:
        def body(tx: Tx) -> ClaimOutcome:
            due = [pending_from_row(r) for r in tx.all("take_due_pending", now=now)]
            touched: list[tuple[Bucket, DeliveryRow]] = [
                ("claims" if row.state == "sending" else "missed", row)
                for row in new_deliveries(due, sinks, now=now, grace=grace, lease=lease)
                if tx.run("insert_delivery", **_delivery_params(row)) == 1
            ]
            settled = [
                settle_stale(delivery_from_row(r), sinks, now=now, grace=grace, lease=lease)
                for r in tx.all("stale_deliveries", now=now)
            ]
            tx.many("settle_delivery", (_delivery_params(row) for _, row in settled))
            return claim_outcome([*touched, *settled])

        return self.transact(body)

    def finish_notification(
        self,
        claim: DeliveryRow,
        *,
        ok: bool,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        state, next_attempt_at = finished_state(ok, retry_at)
        params = {
            "state": state, "next_attempt_at": next_attempt_at, "at": at, "error": error,
            "rule_id": claim.rule_id, "due_at": claim.due_at, "sink_id": claim.sink_id,
            "attempts": claim.attempts,
        }  # fmt: skip
        changed = self.transact(lambda tx: tx.run("finish_delivery", **params))
        return changed == 1

    def next_notification_time(self) -> float | None:
        row = self.select_one("next_notification_time")
        value = None if row is None else row["t"]
        return None if value is None else float(value)

    def list_notification_deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        return [delivery_from_row(r) for r in self.select("list_deliveries", limit=limit)]
