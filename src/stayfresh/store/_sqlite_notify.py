"""SQL of notifications on SQLite, mixed into :class:`SQLiteStore`.

Each method is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock is
taken at the start), so the reschedule's read-compute-replace and a claim's
read-insert-delete see no other writer in between.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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

_RULE_COLUMNS = "id, title, body, at, rrule, dtstart, tz, enabled, created_at"
_DELIVERY_COLUMNS = (
    "rule_id, due_at, sink_id, title, body, state, attempts, claimed_until,"
    " next_attempt_at, updated_at, error"
)
_guard = threading.Lock()


def _rule(row: sqlite3.Row) -> RuleRow:
    return RuleRow(
        id=int(row["id"]),
        title=row["title"],
        body=row["body"],
        at=row["at"],
        rrule=row["rrule"],
        dtstart=row["dtstart"],
        tz=row["tz"],
        enabled=bool(row["enabled"]),
        created_at=float(row["created_at"]),
    )


def _delivery(row: sqlite3.Row) -> DeliveryRow:
    return DeliveryRow(
        rule_id=int(row["rule_id"]),
        due_at=float(row["due_at"]),
        sink_id=int(row["sink_id"]),
        title=row["title"],
        body=row["body"],
        state=row["state"],
        attempts=int(row["attempts"]),
        claimed_until=row["claimed_until"],
        next_attempt_at=row["next_attempt_at"],
        updated_at=float(row["updated_at"]),
        error=row["error"],
    )


def _sink(row: sqlite3.Row) -> SinkRow:
    return SinkRow(
        id=int(row["id"]),
        kind=row["kind"],
        target=row["target"],
        at_least_once=bool(row["at_least_once"]),
        created_at=float(row["created_at"]),
    )


class SQLiteNotifyMixin(NotifyStore):
    """The :class:`NotifyStore` methods of :class:`SQLiteStore`."""

    if TYPE_CHECKING:
        lock_dir: Path

        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

    # -- rules -------------------------------------------------------------------------

    def add_notify_rule(self, rule: NewRule, *, now: float) -> RuleRow:
        with self.write() as tx:
            cur = tx.execute(
                "INSERT INTO notify_rules (title, body, at, rrule, dtstart, tz, enabled, created_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (rule.title, rule.body, rule.at, rule.rrule, rule.dtstart, rule.tz,
                 int(rule.enabled), now),
            )  # fmt: skip
            tx.execute("UPDATE notify_state SET rules_version = rules_version + 1")
            row = tx.execute(
                f"SELECT {_RULE_COLUMNS} FROM notify_rules WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
        return _rule(row)

    def get_notify_rule(self, rule_id: int) -> RuleRow | None:
        rows = self.read(f"SELECT {_RULE_COLUMNS} FROM notify_rules WHERE id = ?", (rule_id,))
        return _rule(rows[0]) if rows else None

    def list_notify_rules(self) -> list[RuleRow]:
        return [
            _rule(r) for r in self.read(f"SELECT {_RULE_COLUMNS} FROM notify_rules ORDER BY id")
        ]

    def delete_notify_rule(self, rule_id: int) -> bool:
        with self.write() as tx:
            cur = tx.execute("DELETE FROM notify_rules WHERE id = ?", (rule_id,))
            if cur.rowcount:
                tx.execute("DELETE FROM notify_pending WHERE rule_id = ?", (rule_id,))
                tx.execute("UPDATE notify_state SET rules_version = rules_version + 1")
        return cur.rowcount > 0

    # -- the window ----------------------------------------------------------------------

    def notify_freshness(self) -> NotifyFreshness:
        row = self.read(
            "SELECT last_reschedule_at, rules_version, window_rules_version,"
            " EXISTS (SELECT 1 FROM notify_rules WHERE enabled = 1) AS has_rules"
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
        with self.write() as tx:
            version = int(tx.execute("SELECT rules_version FROM notify_state").fetchone()[0])
            rules = [
                _rule(r)
                for r in tx.execute(
                    f"SELECT {_RULE_COLUMNS} FROM notify_rules WHERE enabled = 1 ORDER BY id"
                )
            ]
            rows = plan(rules)
            if any(r.due_at < now for r in rows):
                raise ValueError("a reschedule plan may only hold occurrences due at or after now")
            cancelled = tx.execute(
                "DELETE FROM notify_pending WHERE due_at >= ? OR rule_id NOT IN"
                " (SELECT id FROM notify_rules WHERE enabled = 1)",
                (now,),
            ).rowcount
            overdue = int(tx.execute("SELECT COUNT(*) FROM notify_pending").fetchone()[0])
            tx.executemany(
                "INSERT OR IGNORE INTO notify_pending (rule_id, due_at, title, body)"
                " VALUES (?,?,?,?)",
                ((r.rule_id, r.due_at, r.title, r.body) for r in rows),
            )
            window_end = max((r.due_at for r in rows), default=None)
            tx.execute(
                "UPDATE notify_state SET window_rules_version = ?, last_reschedule_at = ?,"
                " window_end = ?",
                (version, now, window_end),
            )
            self._count(tx, layer, "success", now, None)
        return RescheduleResult(
            rules=len(rules), cancelled=cancelled, scheduled=len(rows),
            overdue_kept=overdue, rules_version=version,
        )  # fmt: skip

    def list_pending_notifications(self, *, limit: int | None = None) -> list[PendingRow]:
        rows = self.read(
            "SELECT rule_id, due_at, title, body FROM notify_pending ORDER BY due_at, rule_id"
            " LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [
            PendingRow(rule_id=int(r[0]), due_at=float(r[1]), title=r[2], body=r[3]) for r in rows
        ]

    def notify_scheduling_lock(self) -> RefreshLock:
        # imported here: _sqlite imports this module
        from ._sqlite import FileRefreshLock

        with _guard:
            lock: RefreshLock | None = getattr(self, "_notify_lock", None)
            if lock is None:
                self.lock_dir.mkdir(mode=0o700, exist_ok=True)
                # account locks are named by a 24-hex digest: this name cannot collide
                lock = FileRefreshLock(self.lock_dir / "notify-scheduling.lock")
                self._notify_lock = lock
            return lock

    # -- telemetry -------------------------------------------------------------------------

    @staticmethod
    def _count(
        tx: sqlite3.Connection, layer: str, outcome: str, at: float, error: str | None
    ) -> None:
        tx.execute("INSERT OR IGNORE INTO notify_telemetry (layer) VALUES (?)", (layer,))
        column = {"success": "successes", "failure": "failures", "skip": "skips"}[outcome]
        tx.execute(
            f"UPDATE notify_telemetry SET executions = executions + 1, {column} = {column} + 1,"
            f" last_{outcome}_at = ?"
            + (", last_error = ?" if outcome == "failure" else "")
            + " WHERE layer = ?",
            (at, error, layer) if outcome == "failure" else (at, layer),
        )

    def record_notify_layer(
        self,
        layer: str,
        outcome: Literal["failure", "skip"],
        *,
        at: float,
        error: str | None = None,
    ) -> None:
        with self.write() as tx:
            self._count(tx, layer, outcome, at, error)

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
        with self.write() as tx:
            cur = tx.execute(
                "INSERT INTO notify_sinks (kind, target, at_least_once, created_at)"
                " VALUES (?,?,?,?)",
                (kind, target, int(at_least_once), now),
            )
            row = tx.execute("SELECT * FROM notify_sinks WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _sink(row)

    def list_notify_sinks(self) -> list[SinkRow]:
        return [_sink(r) for r in self.read("SELECT * FROM notify_sinks ORDER BY id")]

    def delete_notify_sink(self, sink_id: int) -> bool:
        with self.write() as tx:
            cur = tx.execute("DELETE FROM notify_sinks WHERE id = ?", (sink_id,))
        return cur.rowcount > 0

    # -- delivery ------------------------------------------------------------------------

    def claim_notifications(
        self, *, now: float, grace: float, lease: float, sinks: Mapping[int, bool]
    ) -> ClaimOutcome:
        claimed: list[tuple[int, float, int]] = []
        missed: list[tuple[int, float, int]] = []
        unknown: list[tuple[int, float, int]] = []
        gave_up: list[tuple[int, float, int]] = []
        cutoff = now - grace
        with self.write() as tx:
            due = tx.execute(
                "SELECT rule_id, due_at, title, body FROM notify_pending WHERE due_at <= ?"
                " ORDER BY due_at, rule_id",
                (now,),
            ).fetchall()
            for rule_id, due_at, title, body in due:
                late = due_at < cutoff
                for sink_id in sinks:
                    cur = tx.execute(
                        "INSERT OR IGNORE INTO notify_deliveries (rule_id, due_at, sink_id, title,"
                        " body, state, attempts, claimed_until, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (rule_id, due_at, sink_id, title, body,
                         "missed" if late else "sending", 0 if late else 1,
                         None if late else now + lease, now),
                    )  # fmt: skip
                    if cur.rowcount:
                        (missed if late else claimed).append((rule_id, due_at, sink_id))
            tx.execute("DELETE FROM notify_pending WHERE due_at <= ?", (now,))
            stale = tx.execute(
                "SELECT rule_id, due_at, sink_id, state FROM notify_deliveries"
                " WHERE (state = 'failed' AND next_attempt_at <= ?)"
                " OR (state = 'sending' AND claimed_until < ?)",
                (now, now),
            ).fetchall()
            for rule_id, due_at, sink_id, state in stale:
                key = (rule_id, due_at, sink_id)
                at_least_once = sinks.get(sink_id)
                if at_least_once is None:
                    self._give_up(tx, key, now, "the sink was removed")
                    gave_up.append(key)
                elif state == "sending" and not at_least_once:
                    tx.execute(
                        "UPDATE notify_deliveries SET state = 'unknown', claimed_until = NULL,"
                        " updated_at = ?, error = ? WHERE rule_id = ? AND due_at = ? AND sink_id = ?",
                        (now, "interrupted while sending; not resent (at-most-once sink)", *key),
                    )
                    unknown.append(key)
                elif due_at < cutoff:
                    self._give_up(tx, key, now, "grace period over")
                    gave_up.append(key)
                else:
                    tx.execute(
                        "UPDATE notify_deliveries SET state = 'sending', attempts = attempts + 1,"
                        " claimed_until = ?, next_attempt_at = NULL, updated_at = ?"
                        " WHERE rule_id = ? AND due_at = ? AND sink_id = ?",
                        (now + lease, now, *key),
                    )
                    claimed.append(key)
            fetched = {k: self._fetch(tx, k) for k in (*claimed, *missed, *unknown, *gave_up)}
        return ClaimOutcome(
            claims=[fetched[k] for k in claimed],
            missed=[fetched[k] for k in missed],
            unknown=[fetched[k] for k in unknown],
            gave_up=[fetched[k] for k in gave_up],
        )

    @staticmethod
    def _give_up(tx: sqlite3.Connection, key: tuple[int, float, int], now: float, why: str) -> None:
        tx.execute(
            "UPDATE notify_deliveries SET state = 'failed', claimed_until = NULL,"
            " next_attempt_at = NULL, updated_at = ?, error = COALESCE(error || '; ', '') || ?"
            " WHERE rule_id = ? AND due_at = ? AND sink_id = ?",
            (now, why, *key),
        )

    @staticmethod
    def _fetch(tx: sqlite3.Connection, key: tuple[int, float, int]) -> DeliveryRow:
        row = tx.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM notify_deliveries"
            " WHERE rule_id = ? AND due_at = ? AND sink_id = ?",
            key,
        ).fetchone()
        return _delivery(row)

    def finish_notification(
        self,
        claim: DeliveryRow,
        *,
        ok: bool,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        with self.write() as tx:
            cur = tx.execute(
                "UPDATE notify_deliveries SET state = ?, claimed_until = NULL, next_attempt_at = ?,"
                " updated_at = ?, error = ? WHERE rule_id = ? AND due_at = ? AND sink_id = ?"
                " AND state = 'sending' AND attempts = ?",
                ("sent" if ok else "failed", None if ok else retry_at, at, error,
                 claim.rule_id, claim.due_at, claim.sink_id, claim.attempts),
            )  # fmt: skip
        return cur.rowcount == 1

    def next_notification_time(self) -> float | None:
        row = self.read(
            "SELECT MIN(t) FROM ("
            " SELECT MIN(due_at) AS t FROM notify_pending"
            " UNION ALL SELECT MIN(next_attempt_at) FROM notify_deliveries WHERE state = 'failed'"
            " UNION ALL SELECT MIN(claimed_until) FROM notify_deliveries WHERE state = 'sending')"
        )
        value = row[0][0]
        return None if value is None else float(value)

    def list_notification_deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        return [
            _delivery(r)
            for r in self.read(
                f"SELECT {_DELIVERY_COLUMNS} FROM notify_deliveries"
                " ORDER BY updated_at DESC, due_at DESC LIMIT ?",
                (limit,),
            )
        ]
