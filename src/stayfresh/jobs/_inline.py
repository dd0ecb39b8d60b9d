"""Run one enqueued work now, in this thread: ``stayfresh download`` in the terminal.

The work stays an ordinary durable work: it is claimed with a lease like any
runner claims it (so a daemon cannot run it at the same time), its lease is
renewed while it runs, its progress is stored, and its end is recorded with
the engine's own :func:`~stayfresh.work.plan_finish` (a retry is rescheduled
by its backoff, and the daemon picks it up from there). If a daemon claimed
it first, the caller gets None and can follow its progress instead.

This belongs in the engine (``Runner.run_one``); it lives here until then.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..store import ClaimedRun, Store
from ..work import Result, WorkerContext, WorkInfo, WorkManager, plan_finish, resolve_worker

log = logging.getLogger(__name__)

KEEP_RUNS = 50
Outcome = Literal["success", "failure", "retry", "error", "released"]


def run_work_inline(
    store: Store,
    work_id: str,
    *,
    on_progress: Callable[[Mapping[str, Any]], None] | None = None,
    lease_seconds: float = 60.0,
    clock: Callable[[], float] = time.time,
    cancel: threading.Event | None = None,
) -> WorkInfo | None:
    """Claim ``work_id`` and run it here; its info afterwards, or None if not claimable."""
    runner_id = f"{socket.gethostname()}:{os.getpid()}:inline-{uuid.uuid4().hex[:6]}"
    claims = store.claim_work(
        [work_id], runner_id=runner_id, now=clock(), lease_seconds=lease_seconds
    )
    if not claims:
        return None
    claim = claims[0]
    work = claim.work

    def report(progress: Mapping[str, Any]) -> None:
        store.set_progress(work.id, claim.run_id, progress)
        if on_progress is not None:
            on_progress(progress)

    ctx = WorkerContext(
        work_id=work.id, name=work.name, input=work.input, run_attempt=work.run_attempt,
        tags=work.tags, scheduled_at=work.scheduled_at, report_progress=report,
        cancel_event=cancel, store=store,
    )  # fmt: skip
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease_seconds / 2):
            held = store.renew_leases(
                [work.id], runner_id=runner_id, now=clock(), lease_seconds=lease_seconds
            )
            if work.id not in held:
                log.info("work %s was cancelled; stopping it", work.name or work.id)
                ctx.request_cancel()
                return

    renewer = threading.Thread(target=renew, name="stayfresh-inline-lease", daemon=True)
    renewer.start()
    error: str | None = None
    try:
        value = resolve_worker(work.worker)(ctx)
        result = value if isinstance(value, Result) else Result.success(value)
        outcome: Outcome = result.kind
        output = result.output
    except BaseException as exc:  # recorded like the runner records it, then re-raised
        outcome, output = "error", None
        error = "".join(traceback.format_exception(exc))[-8000:]
        if not isinstance(exc, Exception):
            outcome, error = "released", "interrupted in the terminal"
        _finish(store, claim, runner_id, outcome, output, error, clock)
        raise
    finally:
        done.set()
        renewer.join()
    _finish(store, claim, runner_id, outcome, output, error, clock)
    row = store.get_work(work.id)
    return WorkInfo.from_row(row) if row is not None else None


def _finish(
    store: Store,
    claim: ClaimedRun,
    runner_id: str,
    outcome: Outcome,
    output: Mapping[str, Any] | None,
    error: str | None,
    clock: Callable[[], float],
) -> None:
    finish = plan_finish(
        claim, runner_id=runner_id, outcome=outcome, now=clock(), output=output, error=error
    )
    store.finish_runs([finish], keep_runs=KEEP_RUNS)
    WorkManager(store).waker.notify()  # dependents of this work, a daemon's next due time
