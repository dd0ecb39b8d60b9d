"""Where notifications meet the work engine: the background layer and the deliverer.

:mod:`stayfresh.notify` never imports the work engine (DESIGN.md: ``jobs`` is
where the parts meet). Both layers' works live here and are ordinary works of
the engine, so the daemon stays the one runner and they get durability, leases
and at-least-once runs for free. Importing this module changes nothing:
:func:`stayfresh.jobs.install` (the CLI calls it) makes :func:`schedule_delivery`
notify's reschedule hook, so that a foreground or manual reschedule also
schedules delivery; the background worker schedules it itself.

- **Background layer**: a unique periodic work named
  ``NOTIFICATION_REFRESH_TASK``, every 3 hours, that always reschedules.
  Enabling enqueues it (KEEP, or UPDATE to change the interval); disabling
  cancels it (ADR-007's rollback plan) — the foreground layer keeps working.
- **Deliverer**: one-time works named ``notify-deliver@<due time>``, due at
  the next moment something is to be sent. After every reschedule and every
  delivery pass the earliest such moment is enqueued (KEEP: asking twice for
  the same moment is one work). A work that finds nothing due — its
  reminder was removed — just schedules the next.

Workers use the runner's store (``ctx.store``); the database location in
their input is the fallback for contexts made without one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from ..fresh import store_of
from ..notify import BACKGROUND_TASK_INTERVAL_HOURS, NOTIFICATION_REFRESH_TASK, deliver_due, refresh
from ..store import Store
from ..work import (
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    Result,
    WorkerContext,
    WorkInfo,
    WorkManager,
    WorkRequest,
    WorkState,
)

log = logging.getLogger(__name__)

REFRESH_WORKER = "stayfresh.notify-refresh"
DELIVER_WORKER = "stayfresh.notify-deliver"
DELIVERY_PREFIX = "notify-deliver@"
DELIVERY_TAG = "notify-delivery"


def schedule_delivery(store: Store, now: float) -> WorkInfo | None:
    """Make sure a delivery work waits for the next moment something is to be sent."""
    due = store.next_notification_time()
    if due is None:
        log.debug("nothing to deliver: no delivery work needed")
        return None
    at = max(due, now)
    name = f"{DELIVERY_PREFIX}{dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec='milliseconds')}"
    manager = WorkManager(store, clock=lambda: now)
    info = manager.enqueue(
        WorkRequest(
            worker=DELIVER_WORKER,
            input={"db": store.location},
            delay=at - now,
            tags=(DELIVERY_TAG,),
        ),
        name=name,
        policy=ExistingWorkPolicy.KEEP,
    )
    log.info("delivery work %s due %s", name, info.next_run_at)
    return info


def deliver_worker(ctx: WorkerContext) -> Result:
    """Deliver what is due, then schedule the delivery work for the next due moment."""
    store = store_of(ctx)
    report = deliver_due(store)
    log.info("delivery pass: %s", report)
    for _ in range(3):  # something became due while we were sending: go on before re-enqueueing
        if report.next_at is None or report.next_at > time.time():
            break
        report = deliver_due(store)
    schedule_delivery(store, time.time())
    return Result.success(report.to_json())


def refresh_worker(ctx: WorkerContext) -> Result:
    """ADR-007's background task: always reschedule; a failure is retried with backoff."""
    store = store_of(ctx)
    log.info("BACKGROUND_TASK: %s run (attempt %d)", ctx.name, ctx.run_attempt)
    outcome = refresh(store, "background")  # layer 2 of stayfresh.fresh, forced
    if outcome.status == "failed":
        log.error("BACKGROUND_TASK: failed to refresh notifications: %s", outcome.error)
        return Result.retry()
    if outcome.status == "refreshed":  # explicit: a runner without the reschedule hook delivers
        schedule_delivery(store, time.time())
    return Result.success(outcome.to_json())


def enable_background(
    store: Store, *, every: dt.timedelta = dt.timedelta(hours=BACKGROUND_TASK_INTERVAL_HOURS)
) -> WorkInfo:
    """Register the background layer (idempotent; a changed interval updates the work)."""
    manager = WorkManager(store)
    info = manager.enqueue(
        WorkRequest(
            worker=REFRESH_WORKER, input={"db": store.location}, every=every.total_seconds()
        ),
        name=NOTIFICATION_REFRESH_TASK,
        policy=ExistingPeriodicWorkPolicy.UPDATE,
    )
    log.info(
        "background layer enabled: %s every %s (next run %s)", info.name, every, info.next_run_at
    )
    return info


def disable_background(store: Store) -> list[str]:
    """Unregister the background layer (ADR-007's rollback plan); returns the cancelled ids."""
    cancelled = WorkManager(store).cancel(name=NOTIFICATION_REFRESH_TASK)
    log.info("background layer disabled (%d work(s) cancelled)", len(cancelled))
    return cancelled


def background_work(store: Store) -> WorkInfo | None:
    """The background layer's live work, or None when disabled."""
    for info in WorkManager(store).by_name(NOTIFICATION_REFRESH_TASK):
        if info.state != WorkState.CANCELLED:
            return info
    return None


def pending_delivery_works(store: Store) -> list[dict[str, Any]]:
    """Delivery works still waiting (for ``notify status``)."""
    return [
        {"name": i.name, "state": i.state.value, "next_run_at": i.next_run_at}
        for i in WorkManager(store).by_tag(DELIVERY_TAG)
        if i.state in (WorkState.ENQUEUED, WorkState.RUNNING)
    ]
