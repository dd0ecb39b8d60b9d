"""Runs in progress in this process: the per-run half of :class:`Runner`.

The scheduling loop (:mod:`._runner`) decides *when* to claim; this module
holds what happens to one claim afterwards: building its
:class:`WorkerContext`, running the worker in its own thread (async workers
on the runner's event loop), turning the result or exception into an
outcome, and the bookkeeping the loop does for runs it owns — recording
finished runs, renewing leases, enforcing time limits, and releasing runs on
shutdown. Kept apart so the loop reads as scheduling only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..store import ClaimedRun, RunFinish, Store
from ._engine import Outcome, lost_lease, plan_finish, record_finishes
from ._workers import WorkerContext, call_worker, resolve_worker, to_result

if TYPE_CHECKING:
    import asyncio


def _cancelled() -> tuple[type[BaseException], ...]:
    """A cancelled run's exception types; asyncio's only once something has loaded asyncio."""
    aio = sys.modules.get("asyncio")
    return (concurrent.futures.CancelledError, *((aio.CancelledError,) if aio else ()))


log = logging.getLogger(__name__)

_ERROR_LIMIT = 8000


class _Run:
    """One run in progress in this process."""

    def __init__(self, claim: ClaimedRun, ctx: WorkerContext, deadline: float) -> None:
        self.claim = claim
        self.ctx = ctx
        self.deadline = deadline  # time.monotonic()
        self.started = time.monotonic()
        self.timed_out = False
        self.released = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class _RunKeeping:
    """Starting, executing and recording runs; mixed into :class:`Runner`.

    The attributes below are set by :meth:`Runner.__init__`.
    """

    store: Store
    runner_id: str
    clock: Callable[[], float]
    lease_seconds: float
    grace: float
    keep_runs: int
    _env: dict[str, str]
    _runs: dict[str, _Run]
    _done: queue.Queue[tuple[_Run, Outcome, Mapping[str, Any] | None, str | None]]
    _async_loop: asyncio.AbstractEventLoop | None
    _poked: bool
    _next_renew: float
    #: the same renewal time on the wall clock: monotonic time stands still while
    #: the machine is suspended, and a lease (wall clock) runs out all the same
    _renew_wall: float

    if TYPE_CHECKING:

        def wake(self) -> None: ...

    # -- running one claim ---------------------------------------------------------------

    def _context(self, claim: ClaimedRun) -> WorkerContext:
        w, store = claim.work, self.store

        def report(progress: Mapping[str, Any]) -> None:
            store.set_progress(w.id, claim.run_id, progress)

        return WorkerContext(
            work_id=w.id, name=w.name, input=w.input, run_attempt=w.run_attempt, tags=w.tags,
            scheduled_at=w.scheduled_at, report_progress=report, store=self.store,
            run_id=claim.run_id, clock=self.clock,
        )  # fmt: skip

    def _start(self, claim: ClaimedRun) -> None:
        w = claim.work
        run = _Run(claim, self._context(claim), time.monotonic() + w.timeout)
        if not self._runs:
            self._next_renew = time.monotonic() + self.lease_seconds / 2
            self._renew_wall = self.clock() + self.lease_seconds / 2
        self._runs[w.id] = run
        if log.isEnabledFor(logging.INFO):  # the claim loop's hot path: no dict when quiet
            log.info(
                "work %s started (%s, attempt %d)", w.name or w.id, w.worker, w.run_attempt,
                extra={"work": w.name, "work_id": w.id, "worker": w.worker,
                       "attempt": w.run_attempt},
            )  # fmt: skip
        threading.Thread(
            target=self._execute,
            args=(run,),
            name=f"stayfresh-work-{w.name or w.id[:8]}",
            daemon=True,
        ).start()

    def _execute(self, run: _Run) -> None:
        """Worker thread: call the worker, queue the outcome, wake the loop."""
        self._done.put((run, *self.invoke(run.claim, run.ctx)))
        self.wake()

    def invoke(
        self, claim: ClaimedRun, ctx: WorkerContext
    ) -> tuple[Outcome, Mapping[str, Any] | None, str | None]:
        """Run one claimed work in this thread; exceptions become an outcome."""
        try:
            result = to_result(
                call_worker(resolve_worker(claim.work.worker), ctx, self._async_loop)
            )
            return result.kind, result.output, None
        except _cancelled():
            return "retry", None, "cancelled"
        except Exception as exc:
            log.exception(
                "work %s (%s) raised", claim.work.name or claim.work.id, claim.work.worker
            )
            text = "".join(traceback.format_exception(exc))
            return "error", None, text[-_ERROR_LIMIT:]

    # -- bookkeeping of runs ------------------------------------------------------------

    def _record_finished(self) -> None:
        finishes: list[RunFinish] = []
        while True:
            try:
                run, outcome, output, error = self._done.get_nowait()
            except queue.Empty:
                break
            if self._runs.pop(run.claim.work.id, None) is None:
                continue
            finishes.append(self._plan(run, outcome, output, error))
        if finishes:
            record_finishes(self.store, finishes, keep_runs=self.keep_runs)

    def _plan(
        self, run: _Run, outcome: Outcome, output: Mapping[str, Any] | None, error: str | None
    ) -> RunFinish:
        if run.released:
            outcome, error = "released", "runner shut down during the run"
        elif run.timed_out:
            outcome = "timeout"
            error = f"time limit of {run.claim.work.timeout:g}s exceeded" + (
                f"\n{error}" if error else ""
            )
        w = run.claim.work
        level = logging.INFO if outcome == "success" else logging.WARNING
        if log.isEnabledFor(level):
            took = run.elapsed()
            log.log(
                level, "work %s ended: %s after %.1fs", w.name or w.id, outcome, took,
                extra={"work": w.name, "work_id": w.id, "worker": w.worker, "outcome": outcome,
                       "attempt": w.run_attempt, "seconds": round(took, 3)},
            )  # fmt: skip
        return plan_finish(
            run.claim, runner_id=self.runner_id, outcome=outcome, now=self.clock(),
            output=output, error=error, environ=self._env,
        )  # fmt: skip

    def _check_leases(self, now: float) -> None:
        """Renew leases at half length; also right after a poke (a cancel may have come).

        Renewal is due by the monotonic clock or by the wall clock, whichever
        comes first: after a suspend (or SIGSTOP) the leases may have run out
        and another runner may have taken the work over. A run whose lease is
        gone is told to stop at once; a cancelled work quietly, a lost lease
        with a warning (its late result will be recorded as lost).
        """
        due = time.monotonic() >= self._next_renew or now >= self._renew_wall
        if not self._runs or not (self._poked or due):
            self._poked = False
            return
        self._poked = False
        held = self.store.renew_leases(
            list(self._runs), runner_id=self.runner_id, now=now, lease_seconds=self.lease_seconds
        )
        self._next_renew = time.monotonic() + self.lease_seconds / 2
        self._renew_wall = now + self.lease_seconds / 2
        for work_id, run in self._runs.items():
            if work_id in held or run.ctx.cancelled:
                continue
            why = lost_lease(self.store, work_id)
            if why is None:
                log.info("work %s was cancelled; stopping it", work_id)
                run.ctx.request_cancel()
            else:
                log.warning("work %s lost its lease (%s); stopping its run", work_id, why)
                run.ctx.lease_lost()

    def _check_time_limits(self) -> None:
        mono = time.monotonic()
        for run in self._runs.values():
            if not run.timed_out and mono >= run.deadline:
                run.timed_out = True
                log.warning(
                    "work %s exceeded its time limit of %gs; cancelling it",
                    run.claim.work.name or run.claim.work.id, run.claim.work.timeout,
                )  # fmt: skip
                run.ctx.request_cancel()

    def _shutdown(self) -> None:
        """Let runs end within the grace period, then cancel and release the rest."""
        self._wait_for_runs(self.grace)
        if not self._runs:
            return
        log.warning("releasing %d unfinished run(s) for another runner", len(self._runs))
        for run in self._runs.values():
            run.released = True
            run.ctx.request_cancel()
        self._wait_for_runs(2.0)
        leftovers = [self._plan(r, "retry", None, None) for r in self._runs.values()]
        self._runs.clear()
        record_finishes(self.store, leftovers, keep_runs=self.keep_runs)

    def _wait_for_runs(self, seconds: float) -> None:
        """Record finished runs as they end, for at most ``seconds``; keep leases alive."""
        deadline = time.monotonic() + seconds
        self._record_finished()
        while self._runs and time.monotonic() < deadline:
            self._check_leases(self.clock())
            with contextlib.suppress(queue.Empty):
                item = self._done.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                self._done.put(item)
            self._record_finished()
