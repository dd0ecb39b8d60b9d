"""Run one enqueued work now, in this thread: ``stayfresh download`` in the terminal.

The work stays an ordinary durable work: it is claimed with a lease like any
runner claims it (so a daemon cannot run it at the same time), its lease is
renewed while it runs, its progress is stored, and its end is recorded with
the engine's own :func:`~stayfresh.work.plan_finish` (a retry is rescheduled
by its backoff, and the daemon picks it up from there). If a daemon claimed
it first, the caller gets None and can follow its progress instead
(:func:`lease_holder` says whom it waits for, and when it may take over).
A work left RUNNING by a process of this machine that is gone (a download
SIGKILLed a minute ago) is taken over at once, not after its lease.

It lives in the engine because it is the engine's claim, lease and finish,
run by a caller instead of a :class:`~stayfresh.work.Runner`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..store import ClaimedRun, Store, WorkRow
from ._engine import WorkManager, lost_lease, plan_finish, record_finishes
from ._model import Result, WorkInfo
from ._owner import dead_owners, local_owner_id, owner_is_dead
from ._workers import WorkerContext, resolve_worker

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
    runner_id = local_owner_id(f"inline-{uuid.uuid4().hex[:6]}")
    claim = _claim(store, work_id, runner_id, clock(), lease_seconds)
    if claim is None:
        return None
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
                why = lost_lease(store, work.id)
                if why is None:
                    log.info("work %s was cancelled; stopping it", work.name or work.id)
                else:
                    log.warning(
                        "work %s lost its lease (%s); stopping it", work.name or work.id, why
                    )
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


def _claim(
    store: Store, work_id: str, runner_id: str, now: float, lease_seconds: float
) -> ClaimedRun | None:
    """Claim ``work_id`` like a runner does, taking it over at once from a dead owner."""
    row = store.get_work(work_id)
    owner = row.lease_owner if row is not None and row.state == "RUNNING" else None
    dead = dead_owners([owner], me=runner_id)
    claims = store.claim_work(
        [work_id], runner_id=runner_id, now=now, lease_seconds=lease_seconds, dead_owners=dead
    )
    return claims[0] if claims else None


def lease_holder(row: WorkRow, now: float) -> str | None:
    """Who ``row``'s lease belongs to while it must be waited for; None if claimable now.

    None when the work is not RUNNING, its lease ran out, or its owner is a
    provably dead process of this machine (see ``stayfresh.work._owner``).
    """
    if row.state != "RUNNING" or not row.lease_owner or (row.lease_until or 0.0) <= now:
        return None
    return None if owner_is_dead(row.lease_owner) else row.lease_owner


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
    record_finishes(store, [finish], keep_runs=KEEP_RUNS)
    WorkManager(store).waker.notify()  # dependents of this work, a daemon's next due time
