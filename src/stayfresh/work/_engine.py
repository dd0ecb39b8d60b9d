"""The work engine's front: enqueue, unique work, chains, cancel, inspect.

:class:`WorkManager` is what applications and the CLI call. It turns a
:class:`WorkRequest` into stored rows (computing the first due time with the
pure rules of :mod:`._schedule`), applies unique-work policies atomically in
the store, and pokes the runners through the :class:`Waker` after every
change, so a sleeping daemon looks again at once. :func:`plan_finish` is the
pure decision "given this run's outcome at ``now``, what next?" that the
runner applies.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from ..errors import ConfigError
from ..store import ClaimedRun, NewWork, RunFinish, UniquePolicy, WorkStore
from ._control import Waker, waker_for
from ._model import (
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    RunInfo,
    WorkInfo,
    WorkRequest,
    WorkState,
)
from ._schedule import (
    MAX_BACKOFF,
    BackoffPolicy,
    check_interval,
    first_due,
    min_backoff,
    next_period_due,
    retry_due,
)

log = logging.getLogger(__name__)

Outcome = Literal["success", "failure", "retry", "error", "timeout", "released"]

#: history rows kept per work
DEFAULT_KEEP_RUNS = 50
#: finished one-time works are kept this long (WorkManager keeps them at least a day)
DEFAULT_KEEP_FINISHED = 7 * 86400.0


class WorkManager:
    """Enqueue and manage durable work in a store.

    ``clock`` returns POSIX seconds; tests inject a fake one. ``waker``
    defaults to the store's control sockets.
    """

    def __init__(
        self,
        store: WorkStore,
        *,
        clock: Callable[[], float] = time.time,
        waker: Waker | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.waker = waker if waker is not None else waker_for(store)
        self._env = dict(os.environ if environ is None else environ)

    # -- enqueueing ----------------------------------------------------------------

    def _new_work(
        self, request: WorkRequest, name: str | None, now: float, after: tuple[str, ...] = ()
    ) -> NewWork:
        interval = flex = None
        if request.every is not None:
            interval, flex = check_interval(request.every, request.flex, self._env)
        backoff = min(MAX_BACKOFF, max(min_backoff(self._env), request.backoff_delay))
        return NewWork(
            id=str(uuid.uuid4()),
            name=name,
            worker=request.worker,
            input=request.input,
            periodic=request.periodic,
            interval=interval,
            flex=flex,
            constraints=request.constraints.to_json(),
            backoff_policy=request.backoff.value,
            backoff_delay=backoff,
            timeout=request.timeout,
            tags=request.tags,
            scheduled_at=first_due(now, delay=request.delay, interval=interval, flex=flex),
            after=after,
        )

    def enqueue(
        self,
        request: WorkRequest,
        *,
        name: str | None = None,
        policy: ExistingWorkPolicy | ExistingPeriodicWorkPolicy | str | None = None,
        after: Sequence[str] = (),
    ) -> WorkInfo:
        """Store ``request`` and wake the runners; return the work now standing for it.

        With a ``name`` the work is unique: ``policy`` says what happens when
        work of that name exists (default KEEP, WorkManager's most common
        choice). ``after`` lists ids of works this one waits for.
        """
        infos = self.enqueue_chain([request], name=name, policy=policy, after=after)
        return infos[-1]

    def enqueue_chain(
        self,
        requests: Sequence[WorkRequest],
        *,
        name: str | None = None,
        policy: ExistingWorkPolicy | ExistingPeriodicWorkPolicy | str | None = None,
        after: Sequence[str] = (),
    ) -> list[WorkInfo]:
        """Enqueue ``A → B → C``: each waits for the previous one and gets its output.

        A failure or cancellation along the chain fails or cancels the rest.
        Periodic work cannot be chained (as in WorkManager).
        """
        if not requests:
            raise ConfigError("nothing to enqueue")
        if len(requests) > 1 and any(r.periodic for r in requests):
            raise ConfigError("periodic work cannot be part of a chain")
        if after and requests[0].periodic:
            raise ConfigError("periodic work cannot wait for other work")
        store_policy = self._store_policy(requests[0].periodic, name, policy)
        if store_policy == "update" and len(requests) > 1:
            raise ConfigError("the update policy applies to a single work")
        now = self.clock()
        works: list[NewWork] = []
        previous: tuple[str, ...] = tuple(after)
        for request in requests:
            work = self._new_work(request, name, now, previous)
            works.append(work)
            previous = (work.id,)
        try:
            result = self.store.enqueue_work(works, policy=store_policy, now=now)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        log.info("work %s: %s (%s)", name or works[0].id, result.action, ", ".join(result.ids))
        if result.action != "kept":
            self.waker.notify()
        rows = [self.store.get_work(i) for i in result.ids]
        return [WorkInfo.from_row(r) for r in rows if r is not None]

    @staticmethod
    def _store_policy(
        periodic: bool,
        name: str | None,
        policy: ExistingWorkPolicy | ExistingPeriodicWorkPolicy | str | None,
    ) -> UniquePolicy | None:
        if name is None:
            if policy is not None:
                raise ConfigError("a policy needs a unique work name")
            return None
        raw = str(
            policy.value
            if isinstance(policy, ExistingWorkPolicy | ExistingPeriodicWorkPolicy)
            else policy or "keep"
        ).lower()
        if periodic:
            raw = {"replace": "cancel_and_reenqueue"}.get(raw, raw)
            allowed = [p.value for p in ExistingPeriodicWorkPolicy]
        else:
            raw = {"cancel_and_reenqueue": "replace"}.get(raw, raw)
            allowed = [p.value for p in ExistingWorkPolicy]
        if raw not in allowed:
            kind = "periodic" if periodic else "one-time"
            raise ConfigError(
                f"policy {raw!r} does not apply to {kind} work; use {', '.join(allowed)}"
            )
        return raw  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------

    def get(self, work_id: str) -> WorkInfo | None:
        """The work with that id (or unique id prefix), or None."""
        row = self.store.get_work(work_id)
        if row is None and len(work_id) >= 4:
            found = self.store.find_work(id_prefix=work_id, limit=2)
            row = found[0] if len(found) == 1 else None
        return WorkInfo.from_row(row) if row is not None else None

    def by_name(self, name: str) -> list[WorkInfo]:
        """Every work of that unique name, newest first."""
        return [WorkInfo.from_row(r) for r in self.store.find_work(name=name)]

    def by_tag(self, tag: str) -> list[WorkInfo]:
        return [WorkInfo.from_row(r) for r in self.store.find_work(tag=tag)]

    def list_work(self, states: Sequence[WorkState] | None = None) -> list[WorkInfo]:
        chosen = None if states is None else [s.value for s in states]
        return [WorkInfo.from_row(r) for r in self.store.find_work(states=chosen)]

    def history(
        self, *, name: str | None = None, work_id: str | None = None, limit: int = 50
    ) -> list[RunInfo]:
        """Runs of a work (by id) or of every work of a name, newest first."""
        ids: list[str] = []
        if work_id is not None:
            info = self.get(work_id)
            ids = [info.id] if info else []
        if name is not None:
            ids += [r.id for r in self.store.find_work(name=name)]
        return [RunInfo.from_row(r) for r in self.store.work_runs(ids, limit=limit)]

    # -- changing --------------------------------------------------------------------

    def cancel(
        self,
        *,
        work_id: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        everything: bool = False,
    ) -> list[str]:
        """Cancel by id, unique name, tag, or everything; return the ids cancelled.

        A RUNNING work is told to stop (its runner sees the lost lease at once
        when woken, or at its next lease renewal).
        """
        ids: list[str] = []
        if work_id is not None:
            info = self.get(work_id)
            if info is None:
                raise ConfigError(f"no work with id {work_id!r}")
            ids = [info.id]
        cancelled = self.store.cancel_work(
            ids=ids, name=name, tag=tag, everything=everything, now=self.clock()
        )
        if cancelled:
            log.info("cancelled %d work(s)", len(cancelled))
            self.waker.notify()
        return cancelled

    def run_now(self, *, name: str | None = None, work_id: str | None = None) -> list[str]:
        """Make ENQUEUED work due now, ignoring its constraints once (the debug trigger)."""
        ids = []
        if work_id is not None:
            info = self.get(work_id)
            ids = [info.id] if info else []
        if name is not None:
            ids += [r.id for r in self.store.find_work(name=name, states=["ENQUEUED"])]
        triggered = self.store.run_work_now(ids, now=self.clock())
        if triggered:
            self.waker.notify()
        return triggered

    def prune(self, *, older_than: float = DEFAULT_KEEP_FINISHED) -> int:
        """Forget one-time works that finished more than ``older_than`` seconds ago."""
        return self.store.prune_work(finished_before=self.clock() - older_than)


def lost_lease(store: WorkStore, work_id: str) -> str | None:
    """Why a run no longer holds ``work_id``: None if it was cancelled, else who has it now.

    Asked only on the rare path where a renewal or a finish was refused, so a
    runner can tell the user's cancel (expected, quiet) from a lost lease
    (the runner was frozen or cut off and another runner took over: loud).
    """
    row = store.get_work(work_id)
    if row is None or row.state == "CANCELLED":
        return None
    if row.state == "RUNNING" and row.lease_owner:
        return f"taken over by {row.lease_owner}"
    return f"taken over by another runner (now {row.state})"


def record_finishes(
    store: WorkStore, finishes: Sequence[RunFinish], *, keep_runs: int
) -> list[str]:
    """Record ended runs (:meth:`WorkStore.finish_runs`); warn about each late one.

    A finish the store refused belongs to a run that lost its lease while it
    ran: its result must not overwrite the state of the run that took over.
    The store keeps it in that run's history (outcome ``lost``, with the late
    result appended); here it becomes a warning, so nothing is dropped silently.
    """
    changed = store.finish_runs(finishes, keep_runs=keep_runs)
    done = set(changed)
    for f in finishes:
        if f.work_id in done:
            continue
        why = lost_lease(store, f.work_id)
        if why is None:
            log.info(
                "work %s was cancelled during its run; result %r not applied", f.work_id, f.outcome
            )
        else:
            log.warning(
                "work %s: run %d lost its lease (%s); its late result %r is recorded as lost"
                " and the work keeps the state of the run that took over",
                f.work_id, f.run_id, why, f.outcome,
            )  # fmt: skip
    return changed


def plan_finish(
    claim: ClaimedRun,
    *,
    runner_id: str,
    outcome: Outcome,
    now: float,
    output: Mapping[str, Any] | None = None,
    error: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunFinish:
    """The work's next state after one run ended with ``outcome`` at ``now``.

    - success: one-time → SUCCEEDED; periodic → ENQUEUED for the next period.
    - failure: one-time → FAILED; periodic → ENQUEUED for the next period.
    - retry, timeout, and an exception in periodic work (``error`` with
      ``periodic``): ENQUEUED again after the backoff for this attempt.
    - error (exception) in one-time work → FAILED.
    - released (the runner shut down mid-run): ENQUEUED, due now, and the
      attempt does not count.
    """
    w = claim.work
    env = dict(os.environ if environ is None else environ)
    state, scheduled, next_run, attempt = "ENQUEUED", w.scheduled_at, w.next_run_at, w.run_attempt
    retrying = outcome in ("retry", "timeout") or (outcome == "error" and w.periodic)
    if outcome == "released":
        next_run, attempt = min(now, w.next_run_at), max(0, w.run_attempt - 1)
    elif retrying:
        next_run = retry_due(
            now,
            w.run_attempt,
            BackoffPolicy(w.backoff_policy),
            w.backoff_delay,
            floor=min_backoff(env),
        )
    elif w.periodic:
        assert w.interval is not None
        scheduled = next_period_due(w.scheduled_at, w.interval, now)
        next_run, attempt = scheduled, 0
    else:
        state = "SUCCEEDED" if outcome == "success" else "FAILED"
    return RunFinish(
        work_id=w.id,
        run_id=claim.run_id,
        runner_id=runner_id,
        ended_at=now,
        outcome=outcome,
        output=output,
        error=error,
        state=state,
        scheduled_at=scheduled,
        next_run_at=next_run,
        run_attempt=attempt,
    )
