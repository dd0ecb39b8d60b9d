"""SQL of notifications on PostgreSQL, mixed into :class:`PostgresStore`.

SQLite gets "no other writer in between" from its one write lock; here each
method says what it needs. A reschedule locks the ``notify_state`` row first,
so two reschedules (from two hosts) run one after the other and the second
sees the first's window. A claim locks the due pending rows and inserts
delivery rows with ``ON CONFLICT DO NOTHING``: the primary key decides which
deliverer claims an occurrence. The scheduling lock is an advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import psycopg
from psycopg.rows import DictRow

from ._notify_base import (
    ClaimOutcome,
    DeliveryRow,
    LayerTelemetryRow,
    NewRule,
    NotifyFreshness,
    NotifyStore,
    PendingRow,
    RescheduleResult,
    RuleRow,
    SinkRow,
)

if TYPE_CHECKING:
    from ._base import RefreshLock

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]
Key = tuple[int, float, int]

_RULE_COLUMNS = "id, title, body, at, rrule, dtstart, tz, enabled, created_at"
_DELIVERY_COLUMNS = (
    "rule_id, due_at, sink_id, title, body, state, attempts, claimed_until,"
    " next_attempt_at, updated_at, error"
)
_KEY = "rule_id = %s AND due_at = %s AND sink_id = %s"


def _rule(r: DictRow) -> RuleRow:
    return RuleRow(
        id=int(r["id"]), title=r["title"], body=r["body"], at=r["at"], rrule=r["rrule"],
        dtstart=r["dtstart"], tz=r["tz"], enabled=bool(r["enabled"]),
        created_at=float(r["created_at"]),
    )  # fmt: skip


def _delivery(r: DictRow) -> DeliveryRow:
    return DeliveryRow(
        rule_id=int(r["rule_id"]), due_at=float(r["due_at"]), sink_id=int(r["sink_id"]),
        title=r["title"], body=r["body"], state=r["state"], attempts=int(r["attempts"]),
        claimed_until=r["claimed_until"], next_attempt_at=r["next_attempt_at"],
        updated_at=float(r["updated_at"]), error=r["error"],
    )  # fmt: skip


def _sink(r: DictRow) -> SinkRow:
    return SinkRow(
        id=int(r["id"]), kind=r["kind"], target=r["target"],
        at_least_once=bool(r["at_least_once"]), created_at=float(r["created_at"]),
    )  # fmt: skip


def _count(tx: Conn, layer: str, outcome: str, at: float, error: str | None) -> None:
    column = {"success": "successes", "failure": "failures", "skip": "skips"}[outcome]
    tx.execute(
        f"INSERT INTO notify_telemetry AS t (layer, executions, {column}, last_{outcome}_at"
        + (", last_error" if outcome == "failure" else "")
        + ") VALUES (%s, 1, 1, %s"
        + (", %s" if outcome == "failure" else "")
        + f") ON CONFLICT (layer) DO UPDATE SET executions = t.executions + 1,"
        f" {column} = t.{column} + 1, last_{outcome}_at = excluded.last_{outcome}_at"
        + (", last_error = excluded.last_error" if outcome == "failure" else ""),
        (layer, at, error) if outcome == "failure" else (layer, at),
    )


class PostgresNotifyMixin(NotifyStore):
    """The :class:`NotifyStore` methods of :class:`PostgresStore`."""

    if TYPE_CHECKING:

        def write_tx(self, body: Callable[[Conn], T]) -> T: ...

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[DictRow]: ...

        def advisory_lock(self, name: str) -> RefreshLock: ...

    # -- rules -------------------------------------------------------------------------

    def add_notify_rule(self, rule: NewRule, *, now: float) -> RuleRow:
        def body(tx: Conn) -> RuleRow:
            row = tx.execute(
                "INSERT INTO notify_rules (title, body, at, rrule, dtstart, tz, enabled,"
                f" created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) RETURNING {_RULE_COLUMNS}",
                (rule.title, rule.body, rule.at, rule.rrule, rule.dtstart, rule.tz,
                 rule.enabled, now),
            ).fetchone()  # fmt: skip
            tx.execute("UPDATE notify_state SET rules_version = rules_version + 1")
            assert row is not None
            return _rule(row)

        return self.write_tx(body)

    def get_notify_rule(self, rule_id: int) -> RuleRow | None:
        rows = self.read(f"SELECT {_RULE_COLUMNS} FROM notify_rules WHERE id = %s", (rule_id,))
        return _rule(rows[0]) if rows else None

    def list_notify_rules(self) -> list[RuleRow]:
        return [
            _rule(r) for r in self.read(f"SELECT {_RULE_COLUMNS} FROM notify_rules ORDER BY id")
        ]

    def delete_notify_rule(self, rule_id: int) -> bool:
        def body(tx: Conn) -> bool:
            if tx.execute("DELETE FROM notify_rules WHERE id = %s", (rule_id,)).rowcount == 0:
                return False
            tx.execute("DELETE FROM notify_pending WHERE rule_id = %s", (rule_id,))
            tx.execute("UPDATE notify_state SET rules_version = rules_version + 1")
            return True

        return self.write_tx(body)

    # -- the window ----------------------------------------------------------------------

    def notify_freshness(self) -> NotifyFreshness:
        row = self.read(
            "SELECT last_reschedule_at, rules_version, window_rules_version,"
            " EXISTS (SELECT 1 FROM notify_rules WHERE enabled) AS has_rules"
            " FROM notify_state WHERE id = 1"
        )[0]
        return NotifyFreshness(
            last_reschedule_at=row["last_reschedule_at"],
            rules_version=int(row["rules_version"]),
            window_rules_version=int(row["window_rules_version"]),
            has_rules=bool(row["has_rules"]),
        )

    def reschedule_notifications(
        self,
        plan: Callable[[Sequence[RuleRow]], Sequence[PendingRow]],
        *,
        now: float,
        layer: str,
    ) -> RescheduleResult:
        def body(tx: Conn) -> RescheduleResult:
            state = tx.execute(
                "SELECT rules_version FROM notify_state WHERE id = 1 FOR UPDATE"
            ).fetchone()
            version = int(state["rules_version"]) if state else 0
            rules = [
                _rule(r)
                for r in tx.execute(
                    f"SELECT {_RULE_COLUMNS} FROM notify_rules WHERE enabled ORDER BY id"
                )
            ]
            rows = plan(rules)
            if any(r.due_at < now for r in rows):
                raise ValueError("a reschedule plan may only hold occurrences due at or after now")
            cancelled = tx.execute(
                "DELETE FROM notify_pending WHERE due_at >= %s OR rule_id NOT IN"
                " (SELECT id FROM notify_rules WHERE enabled)",
                (now,),
            ).rowcount
            left = tx.execute("SELECT COUNT(*) AS n FROM notify_pending").fetchone()
            with tx.cursor() as cur:
                cur.executemany(
                    "INSERT INTO notify_pending (rule_id, due_at, title, body)"
                    " VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    [(r.rule_id, r.due_at, r.title, r.body) for r in rows],
                )
            tx.execute(
                "UPDATE notify_state SET window_rules_version = %s, last_reschedule_at = %s,"
                " window_end = %s",
                (version, now, max((r.due_at for r in rows), default=None)),
            )
            _count(tx, layer, "success", now, None)
            return RescheduleResult(
                rules=len(rules), cancelled=cancelled, scheduled=len(rows),
                overdue_kept=int(left["n"]) if left else 0, rules_version=version,
            )  # fmt: skip

        return self.write_tx(body)

    def list_pending_notifications(self, *, limit: int | None = None) -> list[PendingRow]:
        rows = self.read(
            "SELECT rule_id, due_at, title, body FROM notify_pending ORDER BY due_at, rule_id"
            " LIMIT %s",
            (limit,),
        )
        return [
            PendingRow(
                rule_id=int(r["rule_id"]),
                due_at=float(r["due_at"]),
                title=r["title"],
                body=r["body"],
            )
            for r in rows
        ]

    def notify_scheduling_lock(self) -> RefreshLock:
        return self.advisory_lock("stayfresh:notify-scheduling")

    # -- telemetry -------------------------------------------------------------------------

    def record_notify_layer(
        self,
        layer: str,
        outcome: Literal["failure", "skip"],
        *,
        at: float,
        error: str | None = None,
    ) -> None:
        self.write_tx(lambda tx: _count(tx, layer, outcome, at, error))

    def notify_telemetry(self) -> list[LayerTelemetryRow]:
        return [
            LayerTelemetryRow(
                layer=r["layer"],
                executions=int(r["executions"]),
                successes=int(r["successes"]),
                failures=int(r["failures"]),
                skips=int(r["skips"]),
                last_success_at=r["last_success_at"],
                last_failure_at=r["last_failure_at"],
                last_skip_at=r["last_skip_at"],
                last_error=r["last_error"],
            )
            for r in self.read("SELECT * FROM notify_telemetry ORDER BY layer")
        ]

    # -- sinks -------------------------------------------------------------------------

    def add_notify_sink(
        self, kind: str, target: str | None, *, at_least_once: bool, now: float
    ) -> SinkRow:
        def body(tx: Conn) -> SinkRow:
            row = tx.execute(
                "INSERT INTO notify_sinks (kind, target, at_least_once, created_at)"
                " VALUES (%s,%s,%s,%s) RETURNING *",
                (kind, target, at_least_once, now),
            ).fetchone()
            assert row is not None
            return _sink(row)

        return self.write_tx(body)

    def list_notify_sinks(self) -> list[SinkRow]:
        return [_sink(r) for r in self.read("SELECT * FROM notify_sinks ORDER BY id")]

    def delete_notify_sink(self, sink_id: int) -> bool:
        return self.write_tx(
            lambda tx: tx.execute("DELETE FROM notify_sinks WHERE id = %s", (sink_id,)).rowcount > 0
        )

    # -- delivery ------------------------------------------------------------------------

    def claim_notifications(
        self, *, now: float, grace: float, lease: float, sinks: Mapping[int, bool]
    ) -> ClaimOutcome:
        cutoff = now - grace

        def body(tx: Conn) -> ClaimOutcome:
            claimed: list[Key] = []
            missed: list[Key] = []
            unknown: list[Key] = []
            gave_up: list[Key] = []
            due = tx.execute(
                "DELETE FROM notify_pending WHERE due_at <= %s RETURNING rule_id, due_at, title, body",
                (now,),
            ).fetchall()
            for p in sorted(due, key=lambda p: (p["due_at"], p["rule_id"])):
                late = p["due_at"] < cutoff
                for sink_id in sinks:
                    row = tx.execute(
                        "INSERT INTO notify_deliveries (rule_id, due_at, sink_id, title, body,"
                        " state, attempts, claimed_until, updated_at)"
                        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING RETURNING 1",
                        (p["rule_id"], p["due_at"], sink_id, p["title"], p["body"],
                         "missed" if late else "sending", 0 if late else 1,
                         None if late else now + lease, now),
                    ).fetchone()  # fmt: skip
                    if row is not None:
                        (missed if late else claimed).append((p["rule_id"], p["due_at"], sink_id))
            stale = tx.execute(
                "SELECT rule_id, due_at, sink_id, state FROM notify_deliveries"
                " WHERE (state = 'failed' AND next_attempt_at <= %s)"
                " OR (state = 'sending' AND claimed_until < %s)"
                " ORDER BY rule_id, due_at, sink_id FOR UPDATE SKIP LOCKED",
                (now, now),
            ).fetchall()
            for s in stale:
                key: Key = (s["rule_id"], s["due_at"], s["sink_id"])
                at_least_once = sinks.get(s["sink_id"])
                if at_least_once is None:
                    _give_up(tx, key, now, "the sink was removed")
                    gave_up.append(key)
                elif s["state"] == "sending" and not at_least_once:
                    tx.execute(
                        "UPDATE notify_deliveries SET state = 'unknown', claimed_until = NULL,"
                        f" updated_at = %s, error = %s WHERE {_KEY}",
                        (now, "interrupted while sending; not resent (at-most-once sink)", *key),
                    )
                    unknown.append(key)
                elif s["due_at"] < cutoff:
                    _give_up(tx, key, now, "grace period over")
                    gave_up.append(key)
                else:
                    tx.execute(
                        "UPDATE notify_deliveries SET state = 'sending', attempts = attempts + 1,"
                        f" claimed_until = %s, next_attempt_at = NULL, updated_at = %s WHERE {_KEY}",
                        (now + lease, now, *key),
                    )
                    claimed.append(key)
            fetched = {k: _fetch(tx, k) for k in (*claimed, *missed, *unknown, *gave_up)}
            return ClaimOutcome(
                claims=[fetched[k] for k in claimed],
                missed=[fetched[k] for k in missed],
                unknown=[fetched[k] for k in unknown],
                gave_up=[fetched[k] for k in gave_up],
            )

        return self.write_tx(body)

    def finish_notification(
        self,
        claim: DeliveryRow,
        *,
        ok: bool,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        return self.write_tx(
            lambda tx: (
                tx.execute(
                    "UPDATE notify_deliveries SET state = %s, claimed_until = NULL,"
                    f" next_attempt_at = %s, updated_at = %s, error = %s WHERE {_KEY}"
                    " AND state = 'sending' AND attempts = %s",
                    (
                        "sent" if ok else "failed",
                        None if ok else retry_at,
                        at,
                        error,
                        claim.rule_id,
                        claim.due_at,
                        claim.sink_id,
                        claim.attempts,
                    ),
                ).rowcount
                == 1
            )
        )

    def next_notification_time(self) -> float | None:
        rows = self.read(
            "SELECT LEAST((SELECT MIN(due_at) FROM notify_pending),"
            " (SELECT MIN(next_attempt_at) FROM notify_deliveries WHERE state = 'failed'),"
            " (SELECT MIN(claimed_until) FROM notify_deliveries WHERE state = 'sending')) AS t"
        )
        value = rows[0]["t"]
        return None if value is None else float(value)

    def list_notification_deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        return [
            _delivery(r)
            for r in self.read(
                f"SELECT {_DELIVERY_COLUMNS} FROM notify_deliveries"
                " ORDER BY updated_at DESC, due_at DESC LIMIT %s",
                (limit,),
            )
        ]


def _give_up(tx: Conn, key: Key, now: float, why: str) -> None:
    tx.execute(
        "UPDATE notify_deliveries SET state = 'failed', claimed_until = NULL,"
        " next_attempt_at = NULL, updated_at = %s,"
        f" error = COALESCE(error || '; ', '') || %s WHERE {_KEY}",
        (now, why, *key),
    )


def _fetch(tx: Conn, key: Key) -> DeliveryRow:
    row = tx.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM notify_deliveries WHERE {_KEY}", key
    ).fetchone()
    assert row is not None
    return _delivery(row)
