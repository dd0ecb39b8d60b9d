"""Changing work on PostgreSQL: the state-changing half of :class:`PostgresWorkMixin`.

Enqueueing (with unique-name policies and prerequisites), claiming, lease
renewal, finishing runs (and what that does to dependents), cancelling,
run-now, progress and pruning, each in one transaction that takes the row
locks its decision depends on and, where other daemons must look again,
notifies the wake channel (see :mod:`._postgres_work` for the locking rules).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._postgres_work_reads import Conn
from ._rows import loads_json
from ._work_base import (
    FINISHED_STATES,
    LOST_DEAD,
    LOST_EXPIRED,
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
)

T = TypeVar("T")

#: the LISTEN/NOTIFY channel that wakes runners (see ``stayfresh.work._pg_wake``)
WAKE_CHANNEL = "stayfresh_work"


def wake_runners(tx: Conn) -> None:
    """Queue a wake-up for every listening runner; sent when ``tx`` commits."""
    tx.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))


class PostgresWorkWrites(WorkStore):
    """The state-changing :class:`WorkStore` methods of :class:`PostgresStore`."""

    if TYPE_CHECKING:

        def write_tx(self, body: Callable[[Conn], T]) -> T: ...

        def _rows(self, conn: Conn | None, where: str, params: Sequence[Any]) -> list[WorkRow]: ...

    # -- enqueueing ----------------------------------------------------------------

    def enqueue_work(
        self, works: Sequence[NewWork], *, policy: UniquePolicy | None, now: float
    ) -> EnqueueResult:
        if not works:
            raise ValueError("nothing to enqueue")
        if policy == "update" and len(works) != 1:
            raise ValueError("the update policy takes a single work")
        name = works[0].name

        def body(tx: Conn) -> EnqueueResult:
            existing: list[str] = []
            if name is not None and policy is not None:
                # one enqueuer per unique name at a time, on every machine
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"stayfresh:work-name:{name}",),
                )
                states: tuple[str, ...] = UNFINISHED_STATES
                if works[0].periodic:
                    states = (*states, "SUCCEEDED", "FAILED")
                existing = [
                    r["id"]
                    for r in tx.execute(
                        "SELECT id FROM work WHERE name = %s AND state = ANY(%s)"
                        " ORDER BY created_at DESC, seq DESC FOR UPDATE",
                        (name, list(states)),
                    )
                ]
            action: Any = "enqueued"
            extra_after: tuple[str, ...] = ()
            if existing:
                if policy == "keep":
                    return EnqueueResult(ids=tuple(existing), action="kept")
                if policy == "update":
                    self._update_in_place(tx, existing[0], works[0], now)
                    wake_runners(tx)
                    return EnqueueResult(ids=(existing[0],), action="updated")
                if policy in ("replace", "cancel_and_reenqueue"):
                    self._cancel_ids(tx, existing, now)
                    action = "replaced"
                elif policy == "append":
                    extra_after = tuple(existing)
                    action = "appended"
            for work in works:
                self._insert(tx, work, work.after if work.after else extra_after, now)
            wake_runners(tx)
            return EnqueueResult(ids=tuple(w.id for w in works), action=action)

        return self.write_tx(body)

    def _insert(self, tx: Conn, w: NewWork, after: tuple[str, ...], now: float) -> None:
        state = "ENQUEUED"
        merged: dict[str, Any] = dict(w.input)
        if after:
            prereq = tx.execute(
                "SELECT id, state, output FROM work WHERE id = ANY(%s) ORDER BY seq FOR SHARE",
                (list(after),),
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
            " created_at, updated_at, finished_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                w.id, w.name, w.worker, constraints_key(merged), w.periodic, w.interval,
                w.flex, constraints_key(w.constraints), w.backoff_policy, w.backoff_delay,
                w.timeout, state, w.scheduled_at, max(w.scheduled_at, now) if after else w.scheduled_at,
                now, now, now if state in FINISHED_STATES else None,
            ),
        )  # fmt: skip
        with tx.cursor() as cur:
            cur.executemany(
                "INSERT INTO work_tags (work_id, tag) VALUES (%s, %s)",
                [(w.id, t) for t in sorted(set(w.tags))],
            )
            cur.executemany(
                "INSERT INTO work_deps (work_id, prerequisite_id) VALUES (%s, %s)",
                [(w.id, a) for a in sorted(set(after))],
            )

    def _update_in_place(self, tx: Conn, work_id: str, w: NewWork, now: float) -> None:
        tx.execute(
            "UPDATE work SET worker = %s, input = %s, interval = %s, flex = %s,"
            " constraints = %s, backoff_policy = %s, backoff_delay = %s, timeout = %s,"
            " updated_at = %s WHERE id = %s",
            (
                w.worker, constraints_key(w.input), w.interval, w.flex,
                constraints_key(w.constraints), w.backoff_policy, w.backoff_delay, w.timeout,
                now, work_id,
            ),
        )  # fmt: skip
        tx.execute("DELETE FROM work_tags WHERE work_id = %s", (work_id,))
        with tx.cursor() as cur:
            cur.executemany(
                "INSERT INTO work_tags (work_id, tag) VALUES (%s, %s)",
                [(work_id, t) for t in sorted(set(w.tags))],
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

        def body(tx: Conn) -> list[ClaimedRun]:
            # one statement for the whole batch: lock what is still claimable (skipping
            # rows another runner holds), close runs lost by dead runners, open a run
            # per work and take the lease
            taken = tx.execute(
                "WITH cand AS (SELECT id, state, current_run, run_attempt, scheduled_at,"
                " lease_until FROM work WHERE id = ANY(%(ids)s) AND ((state = 'ENQUEUED'"
                " AND next_run_at <= %(now)s) OR (state = 'RUNNING' AND (lease_until <= %(now)s"
                " OR lease_owner = ANY(%(dead)s)))) ORDER BY id FOR UPDATE SKIP LOCKED),"
                " lost AS (UPDATE work_runs r SET outcome = 'lost', ended_at = %(now)s,"
                " error = CASE WHEN cand.lease_until <= %(now)s THEN %(expired)s"
                " ELSE %(gone)s END FROM cand"
                " WHERE cand.state = 'RUNNING' AND r.id = cand.current_run AND r.ended_at IS NULL),"
                " runs AS (INSERT INTO work_runs (work_id, attempt, runner_id, scheduled_at,"
                " started_at) SELECT id, run_attempt + 1, %(runner)s, scheduled_at, %(now)s"
                " FROM cand ORDER BY id RETURNING id, work_id)"
                " UPDATE work w SET state = 'RUNNING', run_attempt = w.run_attempt + 1,"
                " lease_owner = %(runner)s, lease_until = %(until)s, current_run = runs.id,"
                " run_now = FALSE, progress = NULL, updated_at = %(now)s FROM runs"
                " WHERE w.id = runs.work_id RETURNING w.id, runs.id AS run_id",
                {
                    "ids": list(ids), "now": now, "runner": runner_id,
                    "until": now + lease_seconds, "dead": list(dead_owners),
                    "expired": LOST_EXPIRED, "gone": LOST_DEAD,
                },
            ).fetchall()  # fmt: skip
            if not taken:
                return []
            by_id = {w.id: w for w in self._rows(tx, "id = ANY(%s)", ([t["id"] for t in taken],))}
            order = sorted(taken, key=lambda t: int(t["run_id"]))
            return [ClaimedRun(work=by_id[t["id"]], run_id=int(t["run_id"])) for t in order]

        return self.write_tx(body)

    def renew_leases(
        self, ids: Collection[str], *, runner_id: str, now: float, lease_seconds: float
    ) -> set[str]:
        if not ids:
            return set()
        return self.write_tx(
            lambda tx: {
                r["id"]
                for r in tx.execute(
                    "UPDATE work SET lease_until = %s WHERE id = ANY(%s) AND state = 'RUNNING'"
                    " AND lease_owner = %s RETURNING id",
                    (now + lease_seconds, list(ids), runner_id),
                )
            }
        )

    def finish_runs(self, finishes: Sequence[RunFinish], *, keep_runs: int) -> list[str]:
        if not finishes:
            return []

        def body(tx: Conn) -> list[str]:
            changed: list[str] = []
            wake = False
            for f in sorted(finishes, key=lambda f: f.work_id):
                output = None if f.output is None else constraints_key(f.output)
                terminal = f.state in FINISHED_STATES
                cur = tx.execute(
                    "UPDATE work SET state = %s, scheduled_at = %s, next_run_at = %s,"
                    " run_attempt = %s, lease_owner = NULL, lease_until = NULL, current_run = NULL,"
                    " progress = NULL, output = COALESCE(%s, output), last_outcome = %s,"
                    " last_error = %s, last_run_at = %s, updated_at = %s, finished_at = %s"
                    " WHERE id = %s AND current_run = %s AND lease_owner = %s AND state = 'RUNNING'",
                    (
                        f.state, f.scheduled_at, f.next_run_at, f.run_attempt, output, f.outcome,
                        f.error, f.ended_at, f.ended_at, f.ended_at if terminal else None,
                        f.work_id, f.run_id, f.runner_id,
                    ),
                )  # fmt: skip
                closed = tx.execute(
                    "UPDATE work_runs SET ended_at = %s, outcome = %s, output = %s, error = %s"
                    " WHERE id = %s AND ended_at IS NULL",
                    (f.ended_at, f.outcome, output, f.error, f.run_id),
                )
                if closed.rowcount == 0:
                    tx.execute(
                        "UPDATE work_runs SET error = COALESCE(error, '') || %s,"
                        " output = COALESCE(output, %s) WHERE id = %s AND outcome = 'lost'",
                        (late_note(f), output, f.run_id),
                    )
                if keep_runs > 0:
                    tx.execute(
                        "DELETE FROM work_runs WHERE work_id = %s AND id <= (SELECT id FROM"
                        " work_runs WHERE work_id = %s ORDER BY id DESC LIMIT 1 OFFSET %s)",
                        (f.work_id, f.work_id, keep_runs),
                    )
                if cur.rowcount != 1:
                    continue
                changed.append(f.work_id)
                wake = wake or f.state == "ENQUEUED"
                if f.state == "SUCCEEDED":
                    unblocked = self._unblock_dependents(tx, f.work_id, f.ended_at)
                    changed.extend(unblocked)
                    wake = wake or bool(unblocked)
                elif f.state in ("FAILED", "CANCELLED"):
                    changed.extend(self._finish_dependents(tx, [f.work_id], f.state, f.ended_at))
            if wake:
                # other daemons' sleep plans predate this new due time
                wake_runners(tx)
            return changed

        return self.write_tx(body)

    def _unblock_dependents(self, tx: Conn, work_id: str, now: float) -> list[str]:
        """Enqueue BLOCKED dependents whose prerequisites have all succeeded."""
        unblocked = []
        dependents = tx.execute(
            "SELECT w.id, w.input, w.scheduled_at FROM work w JOIN work_deps d ON d.work_id = w.id"
            " WHERE d.prerequisite_id = %s AND w.state = 'BLOCKED' ORDER BY w.id FOR UPDATE OF w",
            (work_id,),
        ).fetchall()
        for dep in dependents:
            prereqs = tx.execute(
                "SELECT p.state, p.output FROM work p JOIN work_deps d ON d.prerequisite_id = p.id"
                " WHERE d.work_id = %s ORDER BY p.finished_at, p.seq",
                (dep["id"],),
            ).fetchall()
            if any(p["state"] != "SUCCEEDED" for p in prereqs):
                continue
            merged = loads_json(dep["input"]) or {}
            for p in prereqs:
                merged.update(loads_json(p["output"]) or {})
            tx.execute(
                "UPDATE work SET state = 'ENQUEUED', input = %s, next_run_at = %s, updated_at = %s"
                " WHERE id = %s",
                (constraints_key(merged), max(dep["scheduled_at"], now), now, dep["id"]),
            )
            unblocked.append(dep["id"])
        return unblocked

    def _finish_dependents(self, tx: Conn, roots: list[str], state: str, now: float) -> list[str]:
        """Move every unfinished transitive dependent of ``roots`` to ``state``."""
        if not roots:
            return []
        ids = [
            r["id"]
            for r in tx.execute(
                "WITH RECURSIVE down(id) AS ("
                " SELECT work_id FROM work_deps WHERE prerequisite_id = ANY(%s)"
                " UNION SELECT d.work_id FROM work_deps d JOIN down ON d.prerequisite_id = down.id)"
                " SELECT w.id FROM work w JOIN down ON w.id = down.id"
                " WHERE w.state = ANY(%s) ORDER BY w.id",
                (roots, list(UNFINISHED_STATES)),
            )
        ]
        self._set_finished(tx, ids, state, now)
        return ids

    def _set_finished(self, tx: Conn, ids: list[str], state: str, now: float) -> None:
        if not ids:
            return
        tx.execute(
            "UPDATE work_runs SET outcome = 'cancelled', ended_at = %s WHERE ended_at IS NULL"
            " AND id IN (SELECT current_run FROM work WHERE id = ANY(%s))",
            (now, ids),
        )
        tx.execute(
            "UPDATE work SET state = %s, lease_owner = NULL, lease_until = NULL,"
            " current_run = NULL, progress = NULL, finished_at = %s, updated_at = %s"
            " WHERE id = ANY(%s)",
            (state, now, now, ids),
        )

    def _cancel_ids(self, tx: Conn, ids: list[str], now: float) -> list[str]:
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
            where.append("id = ANY(%s)")
            params.append(list(ids))
        if name is not None:
            where.append("name = %s")
            params.append(name)
        if tag is not None:
            where.append("id IN (SELECT work_id FROM work_tags WHERE tag = %s)")
            params.append(tag)
        if not where and not everything:
            return []
        # periodic work is never SUCCEEDED/FAILED for good: it is cancellable in any state
        clause = (
            "(" + " OR ".join(where or ["TRUE"]) + ") AND (state IN ('ENQUEUED', 'RUNNING',"
            " 'BLOCKED') OR (periodic AND state <> 'CANCELLED'))"
        )

        def body(tx: Conn) -> list[str]:
            targets = [
                r["id"]
                for r in tx.execute(
                    f"SELECT id FROM work WHERE {clause} ORDER BY id FOR UPDATE", params
                )
            ]
            if not targets:
                return []
            cancelled = self._cancel_ids(tx, targets, now)
            wake_runners(tx)
            return cancelled

        return self.write_tx(body)

    def run_work_now(self, ids: Collection[str], *, now: float) -> list[str]:
        if not ids:
            return []

        def body(tx: Conn) -> list[str]:
            found = [
                r["id"]
                for r in tx.execute(
                    "UPDATE work SET next_run_at = %s, run_now = TRUE, updated_at = %s"
                    " WHERE id = ANY(%s) AND state = 'ENQUEUED' RETURNING id",
                    (now, now, list(ids)),
                )
            ]
            if found:
                wake_runners(tx)
            return found

        return self.write_tx(body)

    def set_progress(self, work_id: str, run_id: int, progress: Mapping[str, Any]) -> bool:
        return self.write_tx(
            lambda tx: (
                tx.execute(
                    "UPDATE work SET progress = %s WHERE id = %s AND current_run = %s"
                    " AND state = 'RUNNING'",
                    (constraints_key(progress), work_id, run_id),
                ).rowcount
                == 1
            )
        )

    def prune_work(self, *, finished_before: float) -> int:
        return self.write_tx(
            lambda tx: (
                tx.execute(
                    "DELETE FROM work WHERE NOT periodic AND state IN ('SUCCEEDED', 'FAILED',"
                    " 'CANCELLED') AND finished_at < %s AND NOT EXISTS (SELECT 1 FROM work_deps d"
                    " JOIN work w2 ON w2.id = d.work_id WHERE d.prerequisite_id = work.id"
                    " AND w2.state IN ('ENQUEUED', 'RUNNING', 'BLOCKED'))",
                    (finished_before,),
                ).rowcount
            )
        )
