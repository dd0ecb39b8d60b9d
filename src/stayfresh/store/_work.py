"""The work engine's store methods, written once for every backend, and its rules.

The business decisions (which states a unique-work policy looks at and what
it does, what a prerequisite's outcome makes of a new work, whose outputs a
dependent receives, why a run was lost, when other runners must look again)
are pure functions of rows and ``now`` at the top of this module; the SQL
that applies them is in ``queries/work.sql``.

What differs per backend is in ``queries/work.sqlite.sql`` and
``queries/work.postgres.sql``, and is about plans, not rules: a work's tags
and prerequisites come along as arrays (PostgreSQL) or JSON arrays (SQLite)
in the one statement that reads it; the due-work scan is two index range
scans on SQLite; and a claim is one statement of data-modifying CTEs on
PostgreSQL (``FOR UPDATE SKIP LOCKED``: two daemons never wait on each other
and never both take a work), while on SQLite ``claim_work`` only reads the
candidates and :meth:`WorkSQL.claim_work` opens their runs — the rows say
which happened (``run_id`` is set once a run is open), so one body serves both.

Locking (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already excludes every other
writer, and the row locks are dropped there):

- unique-work policies first take a transaction advisory lock on the unique
  name (``stayfresh:work-name:<name>``), so two concurrent ``keep`` enqueues
  cannot both insert, then lock the existing works ``FOR UPDATE``;
- a new work's prerequisites are read ``FOR SHARE``;
- cancelling locks its targets; finishes run in work-id order, and unblocking a
  dependent locks it first, so two prerequisites finishing at once cannot both
  see the other unfinished and leave the dependent BLOCKED forever.

Enqueue, cancel, run-now, and a finish that re-enqueues or unblocks work wake
the runners (:meth:`~._sql.Tx.wake`: ``NOTIFY`` on PostgreSQL once the
transaction commits, so every daemon looks again, on any host).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from ._contracts import WorkStore
from ._rows import (
    ClaimedRun,
    DaemonRow,
    EnqueueAction,
    EnqueueResult,
    NewWork,
    RowLike,
    RunFinish,
    RunRow,
    UniquePolicy,
    WorkRow,
    from_row,
    loads_json,
    work_from_row,
)
from ._sql import SQLBase, Tx

#: states in which a work may still run (or wait to)
UNFINISHED_STATES = ("ENQUEUED", "RUNNING", "BLOCKED")


#: terminal states; periodic work only ever reaches CANCELLED
FINISHED_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


def constraints_key(constraints: Mapping[str, Any] | None) -> str:
    """The canonical JSON of a constraint set: one spelling per value.

    Stores keep constraints in this form, so a runner can name the constraint
    sets it found unmet in :meth:`WorkStore.due_work` by plain string equality.
    """
    return json.dumps(dict(constraints or {}), sort_keys=True, separators=(",", ":"))


#: the history error of a run another runner took over, by why it could
LOST_EXPIRED = "runner stopped renewing its lease"


LOST_DEAD = "runner process is gone (taken over before its lease ran out)"


def lost_reason(lease_until: float | None, now: float) -> str:
    """Why a RUNNING work's run was lost when it is claimed again at ``now``."""
    return LOST_EXPIRED if lease_until is None or lease_until <= now else LOST_DEAD


def late_note(finish: RunFinish) -> str:
    """Appended to a ``lost`` run's error when its runner reports after all.

    The run lost its lease (its runner was frozen, suspended, cut off), so its
    result must not touch the work; the history still says what it was.
    """
    return (
        f"; its runner ended it later with {finish.outcome!r} at"
        f" {dt.datetime.fromtimestamp(finish.ended_at, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        " (result discarded: the work had been taken over)"
    )


# -- the rules: pure functions of rows and now ------------------------------------------


def policy_states(periodic: bool) -> tuple[str, ...]:
    """The states of the existing works a unique-name policy looks at.

    One-time work: the unfinished ones. Periodic work never finishes for good
    (SUCCEEDED or FAILED is the end of one period): every one not CANCELLED.
    """
    return (*UNFINISHED_STATES, "SUCCEEDED", "FAILED") if periodic else UNFINISHED_STATES


@dataclasses.dataclass(frozen=True, slots=True)
class UniqueDecision:
    """What a unique-name policy does given the existing works (newest first)."""

    action: EnqueueAction
    #: ``kept``: insert nothing, these ids stand for the request
    kept: tuple[str, ...] = ()
    #: ``updated``: the id changed in place (nothing inserted)
    update: str | None = None
    #: ``replaced``: cancel these (and their dependents), then insert
    cancel: tuple[str, ...] = ()
    #: ``appended``: the new roots also wait for these
    after: tuple[str, ...] = ()


def unique_decision(policy: UniquePolicy | None, existing: Sequence[str]) -> UniqueDecision:
    """The policy applied to ``existing`` (ids, newest first)."""
    if policy is None or not existing:
        return UniqueDecision("enqueued")
    if policy == "keep":
        return UniqueDecision("kept", kept=tuple(existing))
    if policy == "update":
        return UniqueDecision("updated", update=existing[0])
    if policy in ("replace", "cancel_and_reenqueue"):
        return UniqueDecision("replaced", cancel=tuple(existing))
    if policy == "append":
        return UniqueDecision("appended", after=tuple(existing))
    raise ValueError(f"unknown unique-work policy {policy!r}")


def state_after(prerequisite_states: Collection[str]) -> str:
    """The state a new work starts in, from its prerequisites' states.

    Any FAILED: FAILED; else any CANCELLED: CANCELLED; else all SUCCEEDED (or
    none at all): ENQUEUED; else BLOCKED until they finish.
    """
    found = set(prerequisite_states)
    if "FAILED" in found:
        return "FAILED"
    if "CANCELLED" in found:
        return "CANCELLED"
    return "ENQUEUED" if found <= {"SUCCEEDED"} else "BLOCKED"


def merge_outputs(input: Mapping[str, Any], outputs: Iterable[str | None]) -> dict[str, Any]:
    """A dependent's input with its prerequisites' outputs (JSON objects) laid over it, in order."""
    merged = dict(input)
    for output in outputs:
        merged.update(loads_json(output) or {})
    return merged


def new_work_params(
    w: NewWork, after: Collection[str], prerequisites: Sequence[RowLike], now: float
) -> dict[str, Any]:
    """The row of a new work, given its prerequisites' rows (``state``, ``output``, in order).

    A work that waits for prerequisites is due no earlier than ``now``; when they
    all succeeded already, their outputs are merged over its input at once.
    """
    waits = bool(after)
    state = state_after([p["state"] for p in prerequisites]) if waits else "ENQUEUED"
    merged = (
        merge_outputs(w.input, [p["output"] for p in prerequisites])
        if waits and state == "ENQUEUED"
        else w.input
    )
    return {
        "id": w.id, "name": w.name, "worker": w.worker, "input": constraints_key(merged),
        "periodic": w.periodic, "interval": w.interval, "flex": w.flex,
        "constraints": constraints_key(w.constraints), "backoff_policy": w.backoff_policy,
        "backoff_delay": w.backoff_delay, "timeout": w.timeout, "state": state,
        "scheduled_at": w.scheduled_at,
        "next_run_at": max(w.scheduled_at, now) if waits else w.scheduled_at,
        "now": now, "finished_at": now if state in FINISHED_STATES else None,
    }  # fmt: skip


def released_input(input: str, prerequisites: Sequence[RowLike]) -> str | None:
    """A BLOCKED dependent's new input once every prerequisite succeeded, else None.

    ``prerequisites``: their rows (``state``, ``output``) in the order they finished.
    """
    if any(p["state"] != "SUCCEEDED" for p in prerequisites):
        return None
    return constraints_key(
        merge_outputs(loads_json(input) or {}, [p["output"] for p in prerequisites])
    )


def lost_runs(candidates: Iterable[RowLike], now: float) -> list[dict[str, Any]]:
    """The open runs a claim closes as ``lost``: those of the RUNNING candidates taken over.

    A candidate row names its ``current_run`` only when it was RUNNING (and its
    run is not closed yet: the statement checks), with the ``lease_until`` that
    says why it was lost.
    """
    return [
        {"run_id": c["current_run"], "now": now, "error": lost_reason(c["lease_until"], now)}
        for c in candidates
        if c["current_run"] is not None and c["run_id"] is None
    ]


def finish_params(f: RunFinish) -> dict[str, Any]:
    """The parameters of one finish (for ``finish_work``, ``close_run``)."""
    return {
        "work_id": f.work_id, "run_id": f.run_id, "runner_id": f.runner_id, "state": f.state,
        "scheduled_at": f.scheduled_at, "next_run_at": f.next_run_at,
        "run_attempt": f.run_attempt, "outcome": f.outcome, "error": f.error,
        "output": None if f.output is None else constraints_key(f.output),
        "ended_at": f.ended_at, "finished_at": f.ended_at if f.state in FINISHED_STATES else None,
    }  # fmt: skip


def finish_wakes(state: str, unblocked: Collection[str]) -> bool:
    """Whether a finish makes work due that other runners' sleep plans predate."""
    return state == "ENQUEUED" or bool(unblocked)


def cancel_selects_all(
    ids: Collection[str], name: str | None, tag: str | None, everything: bool
) -> bool | None:
    """None when a cancel chooses nothing; True when it chooses every work; False
    when its ids, name and tag choose (``everything`` counts only without them)."""
    chosen = bool(ids) or name is not None or tag is not None
    if chosen:
        return False
    return True if everything else None


def earliest(*times: float | None) -> float | None:
    """The smallest of the given times; None when there is none."""
    known = [float(t) for t in times if t is not None]
    return min(known) if known else None


# -- rows ---------------------------------------------------------------------------------


def _names(value: Any) -> tuple[str, ...]:
    """A tags / prerequisites column: an array (PostgreSQL, ordered by the query) or a
    JSON array (SQLite, whose aggregate order is not promised: sorted here)."""
    if isinstance(value, str):
        return () if value == "[]" else tuple(sorted(json.loads(value)))
    return tuple(value)


def work_row(r: RowLike) -> WorkRow:
    """A work read with its ``tags`` and ``deps`` columns."""
    return work_from_row(r, _names(r["tags"]), _names(r["deps"]))


def run_row(r: RowLike) -> RunRow:
    return from_row(RunRow, r)


# -- the store methods --------------------------------------------------------------------
# (helper names are fresh while the old twin mixins still sit behind this class in the
# backends' bases: a shared name would shadow theirs)


#: a store call that took longer than this (a locked table, a busy file) moves its leases on
WAIT_COUNTED = 1.0


def waited(called: float) -> float:
    """Seconds a call has waited since ``called`` (monotonic), or 0 below :data:`WAIT_COUNTED`.

    Leases are computed from the caller's ``now``; a call that waited for the
    database must not commit a lease that has already run out (another runner
    would take the work over while it runs). Sub-second waits are ignored, so
    that a clock given by a test stays exact.
    """
    elapsed = time.monotonic() - called
    return elapsed if elapsed > WAIT_COUNTED else 0.0


class WorkSQL(SQLBase, WorkStore):
    """The :class:`WorkStore` methods, for both backends."""

    # -- enqueueing ----------------------------------------------------------------------

    def enqueue_work(
        self, works: Sequence[NewWork], *, policy: UniquePolicy | None, now: float
    ) -> EnqueueResult:
        if not works:
            raise ValueError("nothing to enqueue")
        if policy == "update" and len(works) != 1:
            raise ValueError("the update policy takes a single work")
        name = works[0].name
        unique = name is not None and policy is not None
        states = policy_states(works[0].periodic)

        def body(tx: Tx) -> EnqueueResult:
            existing: list[str] = []
            if unique:
                tx.lock(f"work-name:{name}")  # one enqueuer per unique name, on every machine
                existing = [r["id"] for r in tx.all("unique_existing", name=name, states=states)]
            decision = unique_decision(policy, existing)
            if decision.kept:
                return EnqueueResult(ids=decision.kept, action="kept")
            if decision.update is not None:
                self._revise_work(tx, decision.update, works[0], now)
                tx.wake()
                return EnqueueResult(ids=(decision.update,), action="updated")
            if decision.cancel:
                self._cancel_with_dependents(tx, list(decision.cancel), now)
            self._put_works(tx, works, decision.after, now)
            tx.wake()
            return EnqueueResult(ids=tuple(w.id for w in works), action=decision.action)

        return self.transact(body)

    def _put_works(
        self, tx: Tx, works: Sequence[NewWork], after: tuple[str, ...], now: float
    ) -> None:
        """Insert ``works`` in batches; a work that waits for others reads them first
        (they may be earlier works of this very batch, so what is pending goes in then)."""
        rows: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        deps: list[dict[str, Any]] = []

        def flush() -> None:
            tx.many("insert_work", rows)
            tx.many("insert_tag", tags)
            tx.many("insert_dep", deps)
            rows.clear()
            tags.clear()
            deps.clear()

        for w in works:
            waits_for = sorted(set(w.after or after))
            prerequisites: list[RowLike] = []
            if waits_for:
                flush()
                prerequisites = tx.all("prerequisites", ids=waits_for)
                if len(prerequisites) != len(waits_for):
                    raise ValueError("a prerequisite work does not exist")
            rows.append(new_work_params(w, waits_for, prerequisites, now))
            tags.extend({"work_id": w.id, "tag": t} for t in sorted(set(w.tags)))
            deps.extend({"work_id": w.id, "prerequisite_id": a} for a in waits_for)
        flush()

    def _revise_work(self, tx: Tx, work_id: str, w: NewWork, now: float) -> None:
        tx.run(
            "update_in_place",
            id=work_id,
            worker=w.worker,
            input=constraints_key(w.input),
            interval=w.interval,
            flex=w.flex,
            constraints=constraints_key(w.constraints),
            backoff_policy=w.backoff_policy,
            backoff_delay=w.backoff_delay,
            timeout=w.timeout,
            now=now,
        )
        tx.run("delete_tags", work_id=work_id)
        tx.many("insert_tag", [{"work_id": work_id, "tag": t} for t in sorted(set(w.tags))])

    # -- reading -------------------------------------------------------------------------

    def get_work(self, work_id: str) -> WorkRow | None:
        row = self.select_one("work_by_ids", ids=[work_id])
        return None if row is None else work_row(row)

    def find_work(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        states: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[WorkRow]:
        rows = self.select(
            "find_work",
            name=name,
            tag=tag,
            id_prefix=id_prefix,
            prefix_len=None if id_prefix is None else len(id_prefix),
            any_state=states is None,
            states=list(states or ()),
            limit=None if limit is None else int(limit),
        )
        return [work_row(r) for r in rows]

    def due_work(
        self,
        now: float,
        *,
        limit: int,
        skip_constraints: Collection[str] = (),
        dead_owners: Collection[str] = (),
    ) -> list[WorkRow]:
        rows = self.select(
            "due_work",
            now=now,
            any_skip=bool(skip_constraints),
            skip=list(skip_constraints),
            any_dead=bool(dead_owners),
            dead=list(dead_owners),
            limit=int(limit),
        )
        return [work_row(r) for r in rows]

    def next_wake_time(self, now: float, *, runner_id: str) -> float | None:
        row = self.select_one("next_wake_times", now=now, runner=runner_id)
        return None if row is None else earliest(row["due"], row["expiry"])

    def work_runs(self, work_ids: Collection[str], *, limit: int = 100) -> list[RunRow]:
        if not work_ids:
            return []
        return [run_row(r) for r in self.select("work_runs", ids=list(work_ids), limit=int(limit))]

    def beat(self, runner_id: str, *, host: str, pid: int, started_at: float, now: float) -> None:
        def body(tx: Tx) -> None:
            tx.run("beat", id=runner_id, host=host, pid=pid, started_at=started_at, now=now)
            tx.run("forget_old_daemons", before=now - 86400)

        self.transact(body)

    def daemons(self, *, seen_since: float) -> list[DaemonRow]:
        return [from_row(DaemonRow, r) for r in self.select("daemons", since=seen_since)]

    def forget_daemon(self, runner_id: str) -> None:
        self.transact(lambda tx: tx.run("forget_daemon", id=runner_id))

    def run_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for r in self.select("run_counts"):
            counts.setdefault(r["work_id"], {})[r["outcome"]] = int(r["runs"])
        return counts

    # -- running -------------------------------------------------------------------------

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
        called = time.monotonic()

        def body(tx: Tx) -> list[ClaimedRun]:
            # the lease runs from when the rows are ours, not from ``now``: a claim that
            # waited (a locked table, a busy file, a reconnect) must not commit a lease
            # that has already run out, or another runner takes the work over as well
            tx.one("touch_work", ids=sorted(set(ids)))  # waits here for a lock held on the table
            at = now + waited(called)
            lease = {"runner": runner_id, "now": at, "until": at + lease_seconds}
            # PostgreSQL: the claim itself, each row with its new run_id; SQLite: the
            # candidates (run_id NULL), whose runs are opened here
            rows = tx.all(
                "claim_work",
                ids=sorted(set(ids)),
                dead=list(dead_owners),
                expired=LOST_EXPIRED,
                gone=LOST_DEAD,
                **lease,
            )
            taken = {r["id"]: int(r["run_id"]) for r in rows if r["run_id"] is not None}
            opening = [r["id"] for r in rows if r["run_id"] is None]
            if opening:
                tx.many("lose_run", lost_runs(rows, at))
                opened = tx.all("open_runs", ids=opening, **lease)
                tx.many(
                    "take_lease", [{"id": o["work_id"], "run_id": o["id"], **lease} for o in opened]
                )
                taken.update((o["work_id"], int(o["id"])) for o in opened)
            if not taken:
                return []
            by_id = {w.id: w for w in map(work_row, tx.all("work_by_ids", ids=sorted(taken)))}
            order = sorted(taken.items(), key=lambda t: t[1])
            return [ClaimedRun(work=by_id[work_id], run_id=run_id) for work_id, run_id in order]

        return self.transact(body)

    def renew_leases(
        self, ids: Collection[str], *, runner_id: str, now: float, lease_seconds: float
    ) -> set[str]:
        if not ids:
            return set()
        called = time.monotonic()

        def body(tx: Tx) -> list[RowLike]:  # from when the rows are ours, as a claim
            tx.one("touch_work", ids=list(ids))
            until = now + waited(called) + lease_seconds
            return tx.all("renew_leases", ids=list(ids), until=until, runner=runner_id)

        return {r["id"] for r in self.transact(body)}

    def finish_runs(self, finishes: Sequence[RunFinish], *, keep_runs: int) -> list[str]:
        if not finishes:
            return []
        # in work-id order: two finishers lock rows in the same order (PostgreSQL)
        ordered = sorted(finishes, key=lambda f: f.work_id)

        def body(tx: Tx) -> list[str]:
            changed: list[str] = []
            wake = False
            for f in ordered:
                p = finish_params(f)
                moved = tx.run("finish_work", **p) == 1
                if tx.run("close_run", **p) == 0:
                    tx.run(
                        "note_late_result", run_id=f.run_id, note=late_note(f), output=p["output"]
                    )
                if keep_runs > 0:
                    tx.run("trim_runs", work_id=f.work_id, keep=keep_runs)
                if not moved:
                    continue
                changed.append(f.work_id)
                unblocked: list[str] = []
                if f.state == "SUCCEEDED":
                    unblocked = self._release_dependents(tx, f.work_id, f.ended_at)
                    changed.extend(unblocked)
                elif f.state in ("FAILED", "CANCELLED"):
                    changed.extend(self._end_dependents(tx, [f.work_id], f.state, f.ended_at))
                wake = wake or finish_wakes(f.state, unblocked)
            if wake:
                tx.wake()  # other daemons' sleep plans predate this new due time
            return changed

        return self.transact(body)

    def _release_dependents(self, tx: Tx, work_id: str, now: float) -> list[str]:
        """Enqueue the BLOCKED dependents whose prerequisites have all succeeded."""
        unblocked = []
        for dep in tx.all("blocked_dependents", id=work_id):
            merged = released_input(dep["input"], tx.all("prerequisite_outcomes", id=dep["id"]))
            if merged is None:
                continue
            next_run_at = max(float(dep["scheduled_at"]), now)
            tx.run("unblock", id=dep["id"], input=merged, next_run_at=next_run_at, now=now)
            unblocked.append(dep["id"])
        return unblocked

    def _end_dependents(self, tx: Tx, roots: list[str], state: str, now: float) -> list[str]:
        """Move every unfinished transitive dependent of ``roots`` to ``state``."""
        ids = [r["id"] for r in tx.all("unfinished_dependents", roots=roots)]
        self._end_works(tx, ids, state, now)
        return ids

    def _end_works(self, tx: Tx, ids: list[str], state: str, now: float) -> None:
        if ids:
            tx.run("end_open_runs", ids=ids, now=now)
            tx.run("set_finished", ids=ids, state=state, now=now)

    def _cancel_with_dependents(self, tx: Tx, ids: list[str], now: float) -> list[str]:
        self._end_works(tx, ids, "CANCELLED", now)
        return ids + self._end_dependents(tx, ids, "CANCELLED", now)

    # -- cancelling, run-now, progress, pruning ------------------------------------------

    def cancel_work(
        self,
        *,
        ids: Collection[str] = (),
        name: str | None = None,
        tag: str | None = None,
        everything: bool = False,
        now: float,
    ) -> list[str]:
        every = cancel_selects_all(ids, name, tag, everything)
        if every is None:
            return []

        def body(tx: Tx) -> list[str]:
            targets = [
                r["id"]
                for r in tx.all(
                    "cancel_targets", everything=every, ids=list(ids), name=name, tag=tag
                )
            ]
            if not targets:
                return []
            cancelled = self._cancel_with_dependents(tx, targets, now)
            tx.wake()
            return cancelled

        return self.transact(body)

    def run_work_now(self, ids: Collection[str], *, now: float) -> list[str]:
        if not ids:
            return []

        def body(tx: Tx) -> list[str]:
            found = [r["id"] for r in tx.all("run_now", ids=list(ids), now=now)]
            if found:
                tx.wake()
            return found

        return self.transact(body)

    def set_progress(self, work_id: str, run_id: int, progress: Mapping[str, Any]) -> bool:
        changed = self.transact(
            lambda tx: tx.run(
                "set_progress", id=work_id, run_id=run_id, progress=constraints_key(progress)
            )
        )
        return changed == 1

    def prune_work(self, *, finished_before: float) -> int:
        return self.transact(lambda tx: tx.run("prune_work", finished_before=finished_before))
