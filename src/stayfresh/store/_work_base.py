"""The work engine's part of the store contract: :class:`WorkStore`.

The store keeps work requests, their chains, tags, leases and run history,
and performs every state change that must be atomic between processes (and,
with PostgreSQL, machines): unique-work policies, claiming due work with a
lease, finishing a run and propagating it along a chain, cancelling. It
never decides *when* something is due — the engine computes schedules
(``stayfresh.work._schedule``) and hands the store plain numbers. Rows are
plain values; times are POSIX seconds; JSON columns are dicts.

A PostgreSQL backend implements the same methods with ``FOR UPDATE SKIP
LOCKED`` in :meth:`claim_work` and an advisory lock per unique name in
:meth:`enqueue_work`; waking runners is not the store's job (see
``stayfresh.work._control``).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

#: states in which a work may still run (or wait to)
UNFINISHED_STATES = ("ENQUEUED", "RUNNING", "BLOCKED")
#: terminal states; periodic work only ever reaches CANCELLED
FINISHED_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")

UniquePolicy = Literal["keep", "replace", "append", "update", "cancel_and_reenqueue"]
EnqueueAction = Literal["enqueued", "kept", "replaced", "appended", "updated"]


def constraints_key(constraints: Mapping[str, Any] | None) -> str:
    """The canonical JSON of a constraint set: one spelling per value.

    Stores keep constraints in this form, so a runner can name the constraint
    sets it found unmet in :meth:`WorkStore.due_work` by plain string equality.
    """
    return json.dumps(dict(constraints or {}), sort_keys=True, separators=(",", ":"))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewWork:
    """A work to insert, with its first schedule already computed by the engine."""

    id: str
    name: str | None
    worker: str
    input: Mapping[str, Any]
    periodic: bool
    interval: float | None
    flex: float | None
    constraints: Mapping[str, Any]
    backoff_policy: str
    backoff_delay: float
    timeout: float
    tags: tuple[str, ...]
    scheduled_at: float
    #: ids of works this one waits for (a chain); they must exist
    after: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WorkRow:
    """A work as stored."""

    id: str
    name: str | None
    worker: str
    input: Mapping[str, Any]
    periodic: bool
    interval: float | None
    flex: float | None
    constraints: Mapping[str, Any]
    backoff_policy: str
    backoff_delay: float
    timeout: float
    tags: tuple[str, ...]
    state: str
    run_attempt: int
    scheduled_at: float
    next_run_at: float
    run_now: bool
    lease_owner: str | None
    lease_until: float | None
    current_run: int | None
    output: Mapping[str, Any] | None
    progress: Mapping[str, Any] | None
    last_outcome: str | None
    last_error: str | None
    last_run_at: float | None
    created_at: float
    updated_at: float
    finished_at: float | None
    prerequisites: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class EnqueueResult:
    """What :meth:`WorkStore.enqueue_work` did: the ids now standing for the request."""

    ids: tuple[str, ...]
    action: EnqueueAction


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedRun:
    """A work claimed by one runner, and the history row of this attempt."""

    work: WorkRow
    run_id: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunFinish:
    """The end of one run and the work's next state, computed by the engine.

    ``run_attempt`` is the work's attempt counter after this run (0 after a
    periodic period completes, unchanged for a retry, one less for a
    released run that never counted).
    """

    work_id: str
    run_id: int
    runner_id: str
    ended_at: float
    outcome: str  # success | failure | retry | timeout | released | error
    output: Mapping[str, Any] | None
    error: str | None
    state: str
    scheduled_at: float
    next_run_at: float
    run_attempt: int


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


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunRow:
    """One attempt in a work's history."""

    id: int
    work_id: str
    attempt: int
    runner_id: str
    scheduled_at: float
    started_at: float
    ended_at: float | None
    outcome: str
    output: Mapping[str, Any] | None
    error: str | None


class WorkStore(abc.ABC):
    """Durable work: every method is one short transaction."""

    @abc.abstractmethod
    def enqueue_work(
        self, works: Sequence[NewWork], *, policy: UniquePolicy | None, now: float
    ) -> EnqueueResult:
        """Insert ``works`` (one work or a chain sharing one ``name``) atomically.

        Without a name or policy the works are simply inserted. Otherwise the
        policy is applied against the *existing* works of that name — for
        one-time work those unfinished (ENQUEUED, RUNNING, BLOCKED); for
        periodic work those not CANCELLED:

        - ``keep``: if any exist, insert nothing and return their ids;
        - ``replace`` / ``cancel_and_reenqueue``: cancel them (and their
          dependents), then insert;
        - ``append``: the new works' roots also wait for every existing one;
        - ``update``: change the existing work's definition in place (worker,
          input, interval, flex, constraints, backoff, timeout, tags), keeping
          its id, state, attempt count and next run time; with several
          existing works, the newest is updated. Only a single work may be
          given.

        A work whose prerequisites already include a FAILED (CANCELLED) one is
        inserted FAILED (CANCELLED); one with unfinished prerequisites is
        BLOCKED; otherwise ENQUEUED with ``next_run_at = scheduled_at``.
        """

    @abc.abstractmethod
    def get_work(self, work_id: str) -> WorkRow | None:
        """The work with that id, or None."""

    @abc.abstractmethod
    def find_work(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        states: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[WorkRow]:
        """Works matching every given filter, newest first."""

    @abc.abstractmethod
    def due_work(
        self,
        now: float,
        *,
        limit: int,
        skip_constraints: Collection[str] = (),
        dead_owners: Collection[str] = (),
    ) -> list[WorkRow]:
        """Works a runner could claim at ``now``, earliest due first.

        ENQUEUED works with ``next_run_at <= now``, and RUNNING works whose
        lease ran out (their runner died) or whose ``lease_owner`` is one of
        ``dead_owners`` (the caller proved those processes gone, see
        ``stayfresh.work._owner``: the store cannot). Works whose :func:`constraints_key`
        is in ``skip_constraints`` are left out (the runner found those
        constraints unmet) unless they were forced with :meth:`run_work_now`.
        Read-only: claiming happens in :meth:`claim_work`.
        """

    @abc.abstractmethod
    def claim_work(
        self,
        ids: Collection[str],
        *,
        runner_id: str,
        now: float,
        lease_seconds: float,
        dead_owners: Collection[str] = (),
    ) -> list[ClaimedRun]:
        """Atomically take the lease on those of ``ids`` that are still claimable.

        Claimable means what :meth:`due_work` lists (with the same
        ``dead_owners``). Each claimed work becomes RUNNING, owned by
        ``runner_id`` until ``now + lease_seconds``, its attempt counter grows
        by one and a history row is opened. A RUNNING work taken over from a
        dead runner has its old history row closed as ``lost`` (error: the
        lease ran out, or the owner's process is gone). Two runners can never
        both claim the same work: the check and the update are one transaction.
        """

    @abc.abstractmethod
    def renew_leases(
        self, ids: Collection[str], *, runner_id: str, now: float, lease_seconds: float
    ) -> set[str]:
        """Extend this runner's leases; return the ids it still holds.

        A work missing from the answer was cancelled (or its lease was lost):
        the runner should stop running it.
        """

    @abc.abstractmethod
    def finish_runs(self, finishes: Sequence[RunFinish], *, keep_runs: int) -> list[str]:
        """Record the end of runs and move each work to its next state.

        The work row changes only while ``runner_id`` still holds the lease of
        that run (a cancelled or reclaimed work keeps its state); the history
        row is closed either way. A row already closed (``lost`` when another
        runner took the work over, ``cancelled``) keeps its outcome, and the
        late result is appended to its error text, so the history says what
        the run that lost its lease would have reported. A SUCCEEDED
        work unblocks its dependents once all their prerequisites succeeded,
        merging the prerequisites' outputs over the dependent's input; a
        FAILED (CANCELLED) one fails (cancels) every transitive dependent. At
        most ``keep_runs`` history rows are kept per work. Returns the ids
        whose state changed: a finish whose work is missing from the answer
        had lost its lease.
        """

    @abc.abstractmethod
    def cancel_work(
        self,
        *,
        ids: Collection[str] = (),
        name: str | None = None,
        tag: str | None = None,
        everything: bool = False,
        now: float,
    ) -> list[str]:
        """Cancel unfinished works chosen by id, name, tag, or all of them.

        Their transitive dependents are cancelled too; a RUNNING work loses
        its lease (so its runner stops it) and its open history row is closed
        as ``cancelled``. Returns every id cancelled.
        """

    @abc.abstractmethod
    def run_work_now(self, ids: Collection[str], *, now: float) -> list[str]:
        """Make ENQUEUED works due at ``now``, ignoring constraints once."""

    @abc.abstractmethod
    def set_progress(self, work_id: str, run_id: int, progress: Mapping[str, Any]) -> bool:
        """Store the progress of a running run; False if that run no longer holds the work."""

    @abc.abstractmethod
    def next_wake_time(self, now: float, *, runner_id: str) -> float | None:
        """The earliest time after ``now`` at which a runner has something to do.

        The smallest future ``next_run_at`` of ENQUEUED work, or lease expiry
        of work RUNNING under another runner; None when nothing is scheduled.
        """

    @abc.abstractmethod
    def work_runs(self, work_ids: Collection[str], *, limit: int = 100) -> list[RunRow]:
        """The newest history rows of those works, newest first."""

    @abc.abstractmethod
    def prune_work(self, *, finished_before: float) -> int:
        """Delete finished one-time works (and their history) finished before a time.

        Works with an unfinished dependent are kept. Returns how many went.
        """
