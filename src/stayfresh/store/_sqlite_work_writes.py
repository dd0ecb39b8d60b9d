"""Changing work on SQLite: the state-changing half of :class:`SQLiteWorkMixin`.

Enqueueing (with unique-name policies and prerequisites), claiming, lease
renewal, finishing runs (and what that does to dependents), cancelling,
run-now, progress and pruning. Each method runs in one ``BEGIN IMMEDIATE``
transaction (see :mod:`._sqlite_work` for why that makes claiming safe).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._rows import loads_json
from ._sqlite_work_reads import _chunks, _marks
from ._work_base import (
    FINISHED_STATES,
    UNFINISHED_STATES,
    ClaimedRun,
    EnqueueResult,
    NewWork,
    RunFinish,
    UniquePolicy,
    WorkRow,
    WorkStore,
    constraints_key,
    late_note,
    lost_reason,
)


class SQLiteWorkWrites(WorkStore):
    """The state-changing :class:`WorkStore` methods of :class:`SQLiteStore`."""

    if TYPE_CHECKING:

        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

        def _rows(
            self, conn: sqlite3.Connection | None, where: str, params: Sequence[Any]
        ) -> list[WorkRow]: ...

    # -- enqueueing ----------------------------------------------------------------

    def enqueue_work(
        self, works: Sequence[NewWork], *, policy: UniquePolicy | None, now: float
    ) -> EnqueueResult:
        if not works:
            raise ValueError("nothing to enqueue")
        name = works[0].name
        with self.write() as tx:
            existing: list[str] = []
            if name is not None and policy is not None:
                states: tuple[str, ...] = UNFINISHED_STATES
                if works[0].periodic:
                    states = (*states, "SUCCEEDED", "FAILED")
                existing = [
                    r[0]
                    for r in tx.execute(
                        f"SELECT id FROM work WHERE name = ? AND state IN ({_marks(len(states))})"
                        " ORDER BY created_at DESC, rowid DESC",
                        (name, *states),
                    )
                ]
            action: Any = "enqueued"
            extra_after: tuple[str, ...] = ()
            if existing:
                if policy == "keep":
                    return EnqueueResult(ids=tuple(existing), action="kept")
                if policy == "update":
                    if len(works) != 1:
                        raise ValueError("the update policy takes a single work")
                    self._update_in_place(tx, existing[0], works[0], now)
                    return EnqueueResult(ids=(existing[0],), action="updated")
                if policy in ("replace", "cancel_and_reenqueue"):
                    self._cancel_ids(tx, existing, now)
                    action = "replaced"
                elif policy == "append":
                    extra_after = tuple(existing)
                    action = "appended"
            for work in works:
                after = work.after if work.after else extra_after
                self._insert(tx, work, after, now)
        return EnqueueResult(ids=tuple(w.id for w in works), action=action)

    def _insert(
        self, tx: sqlite3.Connection, w: NewWork, after: tuple[str, ...], now: float
    ) -> None:
        state = "ENQUEUED"
        merged: dict[str, Any] = dict(w.input)
        if after:
            prereq = tx.execute(
                f"SELECT id, state, output FROM work WHERE id IN ({_marks(len(after))})", after
            ).fetchall()
            if len(prereq) != len(set(after)):
                raise ValueError("a prerequisite work does not exist")
            found = {r["state"] for r in prereq}
            if "FAILED" in found:
                state = "FAILED"
            elif "CANCELLED" in found:
                state = "CANCELLED"
            elif found != {"SUCCEEDED"}:
                state = "BLOCKED"
            else:
                for r in prereq:
                    merged.update(loads_json(r["output"]) or {})
        tx.execute(
            "INSERT INTO work (id, name, worker, input, periodic, interval, flex, constraints,"
            " backoff_policy, backoff_delay, timeout, state, scheduled_at, next_run_at,"
            " created_at, updated_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                w.id, w.name, w.worker, constraints_key(merged), int(w.periodic), w.interval,
                w.flex, constraints_key(w.constraints), w.backoff_policy, w.backoff_delay,
                w.timeout, state, w.scheduled_at, max(w.scheduled_at, now) if after else w.scheduled_at,
                now, now, now if state in FINISHED_STATES else None,
            ),
        )  # fmt: skip
        tx.executemany(
            "INSERT INTO work_tags (work_id, tag) VALUES (?, ?)", [(w.id, t) for t in set(w.tags)]
        )
        tx.executemany(
            "INSERT INTO work_deps (work_id, prerequisite_id) VALUES (?, ?)",
            [(w.id, a) for a in set(after)],
        )

    def _update_in_place(
        self, tx: sqlite3.Connection, work_id: str, w: NewWork, now: float
    ) -> None:
        tx.execute(
            "UPDATE work SET worker = ?, input = ?, interval = ?, flex = ?, constraints = ?,"
            " backoff_policy = ?, backoff_delay = ?, timeout = ?, updated_at = ? WHERE id = ?",
            (
                w.worker, constraints_key(w.input), w.interval, w.flex,
                constraints_key(w.constraints), w.backoff_policy, w.backoff_delay, w.timeout,
                now, work_id,
            ),
        )  # fmt: skip
        tx.execute("DELETE FROM work_tags WHERE work_id = ?", (work_id,))
        tx.executemany(
            "INSERT INTO work_tags (work_id, tag) VALUES (?, ?)",
            [(work_id, t) for t in set(w.tags)],
        )

    # -- running -------------------------------------------------------------------

    def claim_work(
        self,
        ids: Collection[str],
        *,
        runner_id: str,
        now: float,
        lease_seconds: float,
        dead_owners: Collection[str] = (),
    ) -> list[ClaimedRun]:
        if not ids:
            return []
        taken: list[tuple[str, int]] = []
        dead = list(dead_owners)
        with self.write() as tx:
            for chunk in _chunks(list(ids), 500):
                q = _marks(len(chunk))
                rows = tx.execute(
                    f"SELECT id, state, current_run, run_attempt, scheduled_at, lease_until"
                    f" FROM work WHERE id IN ({q}) AND ((state = 'ENQUEUED' AND next_run_at <= ?)"
                    f" OR (state = 'RUNNING' AND (lease_until <= ?"
                    f" OR lease_owner IN ({_marks(len(dead))}))))",
                    (*chunk, now, now, *dead),
                ).fetchall()
                for r in rows:
                    if r["state"] == "RUNNING" and r["current_run"] is not None:
                        tx.execute(
                            "UPDATE work_runs SET outcome = 'lost', ended_at = ?, error = ?"
                            " WHERE id = ? AND ended_at IS NULL",
                            (now, lost_reason(r["lease_until"], now), r["current_run"]),
                        )
                    cur = tx.execute(
                        "INSERT INTO work_runs (work_id, attempt, runner_id, scheduled_at,"
                        " started_at) VALUES (?, ?, ?, ?, ?)",
                        (r["id"], r["run_attempt"] + 1, runner_id, r["scheduled_at"], now),
                    )
                    run_id = int(cur.lastrowid or 0)
                    tx.execute(
                        "UPDATE work SET state = 'RUNNING', run_attempt = run_attempt + 1,"
                        " lease_owner = ?, lease_until = ?, current_run = ?, run_now = 0,"
                        " progress = NULL, updated_at = ? WHERE id = ?",
                        (runner_id, now + lease_seconds, run_id, now, r["id"]),
                    )
                    taken.append((r["id"], run_id))
            rows_by_id = {
                w.id: w
                for chunk in _chunks([t[0] for t in taken], 500)
                for w in self._rows(tx, f"id IN ({_marks(len(chunk))})", chunk)
            }
        return [ClaimedRun(work=rows_by_id[work_id], run_id=run_id) for work_id, run_id in taken]

    def renew_leases(
        self, ids: Collection[str], *, runner_id: str, now: float, lease_seconds: float
    ) -> set[str]:
        if not ids:
            return set()
        held: set[str] = set()
        with self.write() as tx:
            for chunk in _chunks(list(ids), 500):
                q = _marks(len(chunk))
                tx.execute(
                    f"UPDATE work SET lease_until = ? WHERE id IN ({q}) AND state = 'RUNNING'"
                    " AND lease_owner = ?",
                    (now + lease_seconds, *chunk, runner_id),
                )
                held.update(
                    r[0]
                    for r in tx.execute(
                        f"SELECT id FROM work WHERE id IN ({q}) AND state = 'RUNNING'"
                        " AND lease_owner = ?",
                        (*chunk, runner_id),
                    )
                )
        return held

    def finish_runs(self, finishes: Sequence[RunFinish], *, keep_runs: int) -> list[str]:
        changed: list[str] = []
        if not finishes:
            return changed
        with self.write() as tx:
            for f in finishes:
                output = None if f.output is None else constraints_key(f.output)
                terminal = f.state in FINISHED_STATES
                cur = tx.execute(
                    "UPDATE work SET state = ?, scheduled_at = ?, next_run_at = ?, run_attempt = ?,"
                    " lease_owner = NULL, lease_until = NULL, current_run = NULL, progress = NULL,"
                    " output = COALESCE(?, output), last_outcome = ?, last_error = ?,"
                    " last_run_at = ?, updated_at = ?, finished_at = ?"
                    " WHERE id = ? AND current_run = ? AND lease_owner = ? AND state = 'RUNNING'",
                    (
                        f.state, f.scheduled_at, f.next_run_at, f.run_attempt, output, f.outcome,
                        f.error, f.ended_at, f.ended_at, f.ended_at if terminal else None,
                        f.work_id, f.run_id, f.runner_id,
                    ),
                )  # fmt: skip
                closed = tx.execute(
                    "UPDATE work_runs SET ended_at = ?, outcome = ?, output = ?, error = ?"
                    " WHERE id = ? AND ended_at IS NULL",
                    (f.ended_at, f.outcome, output, f.error, f.run_id),
                )
                if closed.rowcount == 0:
                    tx.execute(
                        "UPDATE work_runs SET error = COALESCE(error, '') || ?,"
                        " output = COALESCE(output, ?) WHERE id = ? AND outcome = 'lost'",
                        (late_note(f), output, f.run_id),
                    )
                if keep_runs > 0:
                    tx.execute(
                        "DELETE FROM work_runs WHERE work_id = ? AND id <= (SELECT id FROM"
                        " work_runs WHERE work_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (f.work_id, f.work_id, keep_runs),
                    )
                if cur.rowcount != 1:
                    continue
                changed.append(f.work_id)
                if f.state == "SUCCEEDED":
                    changed.extend(self._unblock_dependents(tx, f.work_id, f.ended_at))
                elif f.state in ("FAILED", "CANCELLED"):
                    changed.extend(self._finish_dependents(tx, [f.work_id], f.state, f.ended_at))
        return changed

    def _unblock_dependents(self, tx: sqlite3.Connection, work_id: str, now: float) -> list[str]:
        """Enqueue BLOCKED dependents whose prerequisites have all succeeded."""
        unblocked = []
        dependents = tx.execute(
            "SELECT w.id, w.input, w.scheduled_at FROM work w JOIN work_deps d ON d.work_id = w.id"
            " WHERE d.prerequisite_id = ? AND w.state = 'BLOCKED'",
            (work_id,),
        ).fetchall()
        for dep in dependents:
            prereqs = tx.execute(
                "SELECT p.state, p.output FROM work p JOIN work_deps d ON d.prerequisite_id = p.id"
                " WHERE d.work_id = ? ORDER BY p.finished_at, p.rowid",
                (dep["id"],),
            ).fetchall()
            if any(p["state"] != "SUCCEEDED" for p in prereqs):
                continue
            merged = loads_json(dep["input"]) or {}
            for p in prereqs:
                merged.update(loads_json(p["output"]) or {})
            tx.execute(
                "UPDATE work SET state = 'ENQUEUED', input = ?, next_run_at = ?, updated_at = ?"
                " WHERE id = ?",
                (constraints_key(merged), max(dep["scheduled_at"], now), now, dep["id"]),
            )
            unblocked.append(dep["id"])
        return unblocked

    def _finish_dependents(
        self, tx: sqlite3.Connection, roots: list[str], state: str, now: float
    ) -> list[str]:
        """Move every unfinished transitive dependent of ``roots`` to ``state``."""
        if not roots:
            return []
        ids = [
            r[0]
            for r in tx.execute(
                "WITH RECURSIVE down(id) AS ("
                f" SELECT work_id FROM work_deps WHERE prerequisite_id IN ({_marks(len(roots))})"
                " UNION SELECT d.work_id FROM work_deps d JOIN down ON d.prerequisite_id = down.id)"
                f" SELECT w.id FROM work w JOIN down ON w.id = down.id WHERE w.state IN"
                f" ({_marks(len(UNFINISHED_STATES))})",
                (*roots, *UNFINISHED_STATES),
            )
        ]
        self._set_finished(tx, ids, state, now)
        return ids

    def _set_finished(self, tx: sqlite3.Connection, ids: list[str], state: str, now: float) -> None:
        for chunk in _chunks(ids, 500):
            q = _marks(len(chunk))
            tx.execute(
                f"UPDATE work_runs SET outcome = 'cancelled', ended_at = ? WHERE ended_at IS NULL"
                f" AND id IN (SELECT current_run FROM work WHERE id IN ({q}))",
                (now, *chunk),
            )
            tx.execute(
                f"UPDATE work SET state = ?, lease_owner = NULL, lease_until = NULL,"
                f" current_run = NULL, progress = NULL, finished_at = ?, updated_at = ?"
                f" WHERE id IN ({q})",
                (state, now, now, *chunk),
            )

    def _cancel_ids(self, tx: sqlite3.Connection, ids: list[str], now: float) -> list[str]:
        self._set_finished(tx, ids, "CANCELLED", now)
        return ids + self._finish_dependents(tx, ids, "CANCELLED", now)

    def cancel_work(
        self,
        *,
        ids: Collection[str] = (),
        name: str | None = None,
        tag: str | None = None,
        everything: bool = False,
        now: float,
    ) -> list[str]:
        where: list[str] = []
        params: list[Any] = []
        if ids:
            where.append(f"id IN ({_marks(len(ids))})")
            params.extend(ids)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if tag is not None:
            where.append("id IN (SELECT work_id FROM work_tags WHERE tag = ?)")
            params.append(tag)
        if not where and not everything:
            return []
        # periodic work is never SUCCEEDED/FAILED for good: it is cancellable in any state
        clause = (
            "("
            + " OR ".join(where or ["1=1"])
            + ")"
            + (
                " AND (state IN ('ENQUEUED', 'RUNNING', 'BLOCKED') OR (periodic = 1"
                " AND state != 'CANCELLED'))"
            )
        )
        with self.write() as tx:
            targets = [r[0] for r in tx.execute(f"SELECT id FROM work WHERE {clause}", params)]
            return self._cancel_ids(tx, targets, now) if targets else []

    def run_work_now(self, ids: Collection[str], *, now: float) -> list[str]:
        if not ids:
            return []
        q = _marks(len(ids))
        with self.write() as tx:
            found = [
                r[0]
                for r in tx.execute(
                    f"SELECT id FROM work WHERE id IN ({q}) AND state = 'ENQUEUED'", tuple(ids)
                )
            ]
            tx.execute(
                f"UPDATE work SET next_run_at = ?, run_now = 1, updated_at = ?"
                f" WHERE id IN ({q}) AND state = 'ENQUEUED'",
                (now, now, *ids),
            )
        return found

    def set_progress(self, work_id: str, run_id: int, progress: Mapping[str, Any]) -> bool:
        with self.write() as tx:
            cur = tx.execute(
                "UPDATE work SET progress = ? WHERE id = ? AND current_run = ? AND state = 'RUNNING'",
                (constraints_key(progress), work_id, run_id),
            )
        return cur.rowcount == 1

    def prune_work(self, *, finished_before: float) -> int:
        with self.write() as tx:
            cur = tx.execute(
                "DELETE FROM work WHERE periodic = 0 AND state IN ('SUCCEEDED', 'FAILED',"
                " 'CANCELLED') AND finished_at < ? AND NOT EXISTS (SELECT 1 FROM work_deps d"
                " JOIN work w2 ON w2.id = d.work_id WHERE d.prerequisite_id = work.id"
                " AND w2.state IN ('ENQUEUED', 'RUNNING', 'BLOCKED'))",
                (finished_before,),
            )
        return cur.rowcount
