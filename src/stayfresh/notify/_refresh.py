"""The two refresh layers, the scheduling lock, and the full reschedule.

ADR-007 in Python:

- :func:`with_scheduling_lock` — one lock shared by every caller in every
  process; a caller that finds it held returns at once, marked skipped
  (skip, not queue: the holder is producing the very window the second
  caller wanted).
- :func:`reschedule` — cancel all pending, compute, schedule fresh, in one
  store transaction.
- :func:`on_app_start` — the foreground layer: reschedule when 4 hours
  (:data:`NOTIFICATION_REFRESH_HOURS`) have passed since the last successful
  reschedule, or when the reminders changed since. Cheap when nothing is due:
  one read. It runs inside whatever command the user typed, so its
  expansion has a budget (:meth:`WorkBudget.foreground`, work and time):
  past it, it gives up with a warning, changes nothing, and leaves the
  reschedule to the background layer, which has no such limit (each rule
  still has its own, see :mod:`._budget`).
- :func:`refresh` — what the background layer (and ``notify refresh``) calls:
  always reschedules, through the lock.

Every decision is logged, and each layer's executions, successes, failures
and skips are counted in the store (telemetry, ADR-007's monitoring list).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Generic, Literal, TypeVar

from ..store import NotifyFreshness, PendingRow, RescheduleResult, RuleRow, Store
from ._budget import WindowBudgetExceeded, WorkBudget
from ._config import NotifyConfig
from ._decision import NOTIFICATION_REFRESH_HOURS, window_decision
from ._hooks import after_reschedule
from ._window import WindowPlan, compute_window

log = logging.getLogger(__name__)

T = TypeVar("T")
Layer = Literal["foreground", "background", "manual"]
Status = Literal["ran", "skipped", "not_needed", "failed"]


@dataclasses.dataclass(frozen=True, slots=True)
class LockResult(Generic[T]):
    """What :func:`with_scheduling_lock` returns: whether ``fn`` ran, and its value."""

    ran: bool
    value: T | None = None


def with_scheduling_lock(store: Store, fn: Callable[[], T]) -> LockResult[T]:
    """Run ``fn`` holding the scheduling lock, or return at once (``ran=False``) if it is held."""
    lock = store.notify_scheduling_lock()
    if not lock.acquire(0):
        log.info("scheduling lock held by another caller: skipping (skip, not queue)")
        return LockResult(False)
    try:
        return LockResult(True, fn())
    finally:
        lock.release()


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """Whether the foreground layer should reschedule, and why (for the log)."""

    needed: bool
    reason: str


def refresh_decision(
    fresh: NotifyFreshness,
    now: float,
    *,
    every: dt.timedelta = dt.timedelta(hours=NOTIFICATION_REFRESH_HOURS),
) -> Decision:
    """The foreground layer's test (ADR-007's ``shouldRescheduleNotifications``), pure."""
    return Decision(*window_decision(fresh, now, every.total_seconds()))


@dataclasses.dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What one call of a layer did."""

    layer: Layer
    status: Status
    reason: str
    at: dt.datetime
    result: RescheduleResult | None = None
    left_out: int = 0
    error: str | None = None

    @property
    def ran(self) -> bool:
        return self.status == "ran"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def to_json(self) -> dict[str, object]:
        r = self.result
        return {
            "layer": self.layer,
            "status": self.status,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "scheduled": r.scheduled if r else None,
            "cancelled": r.cancelled if r else None,
            "overdue_kept": r.overdue_kept if r else None,
            "rules": r.rules if r else None,
            "left_out": self.left_out,
            "error": self.error,
        }


def _now(now: dt.datetime | float | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(now, int | float):
        return dt.datetime.fromtimestamp(now, dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(dt.UTC)


def reschedule(
    store: Store,
    *,
    now: dt.datetime,
    layer: Layer,
    config: NotifyConfig | None = None,
    budget: WorkBudget | None = None,
) -> tuple[RescheduleResult, WindowPlan]:
    """Full reschedule in one transaction (the caller holds the scheduling lock).

    Running out of ``budget`` raises :class:`WindowBudgetExceeded` from
    inside the transaction, which then changes nothing.
    """
    cfg = config or NotifyConfig.load(store)
    plans: list[WindowPlan] = []

    def plan(rules: Sequence[RuleRow]) -> Sequence[PendingRow]:
        window = compute_window(
            rules, now, horizon=cfg.window, capacity=cfg.capacity, budget=budget
        )
        plans.append(window)
        return window.rows

    started = time.perf_counter()
    result = store.reschedule_notifications(plan, now=now.timestamp(), layer=layer)
    window = plans[-1]
    log.info(
        "%s reschedule: %d rule(s) → %d pending in the next %s, %d cancelled, %d overdue kept (%.1f ms)",
        layer, result.rules, result.scheduled, cfg.window, result.cancelled,
        result.overdue_kept, (time.perf_counter() - started) * 1000,
    )  # fmt: skip
    if window.left_out:
        first = window.left_out[0]
        log.warning(
            "capacity %d reached: %d occurrence(s) left out of this window, the first "
            "rule %d at %s; they return in a later window",
            cfg.capacity, len(window.left_out), first.rule_id,
            dt.datetime.fromtimestamp(first.due_at, dt.UTC).isoformat(),
        )  # fmt: skip
    if window.broken:  # one line per reschedule, however many rules and candidates
        log.error(
            "%d reminder(s) could not be expanded and were left out (the others are scheduled): %s",
            len(window.broken),
            "; ".join(f"{rule_id}: {message[:240]}" for rule_id, message in window.broken[:5])
            + ("; …" if len(window.broken) > 5 else ""),
        )
    for hook in after_reschedule:
        try:
            hook(store, now.timestamp())
        except Exception:
            log.exception("after-reschedule hook %r failed (the window itself is saved)", hook)
    return result, window


def _locked_refresh(
    store: Store,
    layer: Layer,
    now: dt.datetime,
    reason: str,
    recheck: dt.timedelta | None,
    budget: WorkBudget | None = None,
) -> RefreshOutcome:
    def work() -> RefreshOutcome:
        if recheck is not None:  # another process may have rescheduled meanwhile
            decision = refresh_decision(store.notify_freshness(), now.timestamp(), every=recheck)
            if not decision.needed:
                log.info(
                    "%s layer: no longer needed after taking the lock: %s", layer, decision.reason
                )
                return RefreshOutcome(layer, "not_needed", decision.reason, now)
        result, window = reschedule(store, now=now, layer=layer, budget=budget)
        return RefreshOutcome(layer, "ran", reason, now, result, len(window.left_out))

    try:
        locked = with_scheduling_lock(store, work)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:500]
        if isinstance(exc, WindowBudgetExceeded):  # expected of bad rules: no traceback
            log.warning(
                "%s layer gave up, nothing changed; the background layer will reschedule: %s",
                layer, exc,
            )  # fmt: skip
        else:
            log.exception("%s layer: reschedule failed", layer)
        try:
            store.record_notify_layer(layer, "failure", at=now.timestamp(), error=message)
        except Exception:
            log.exception("%s layer: could not record the failure", layer)
        return RefreshOutcome(layer, "failed", reason, now, error=message)
    if not locked.ran:
        store.record_notify_layer(layer, "skip", at=now.timestamp())
        log.info("%s layer: skipped, another caller holds the scheduling lock", layer)
        return RefreshOutcome(layer, "skipped", "another caller holds the scheduling lock", now)
    assert locked.value is not None
    return locked.value


def refresh(
    store: Store, layer: Layer = "manual", *, now: dt.datetime | float | None = None
) -> RefreshOutcome:
    """Reschedule now through the lock, always (the background layer and ``notify refresh``)."""
    when = _now(now)
    log.info("%s layer: refresh requested; always reschedules", layer)
    return _locked_refresh(store, layer, when, f"{layer} refresh always reschedules", recheck=None)


def on_app_start(
    store: Store,
    *,
    now: dt.datetime | float | None = None,
    every: dt.timedelta = dt.timedelta(hours=NOTIFICATION_REFRESH_HOURS),
    budget: WorkBudget | None = None,
) -> RefreshOutcome:
    """The foreground layer: call when the application starts or comes to the foreground.

    Reschedules (through the lock) when ``every`` (4 h) has passed since the
    last successful reschedule or the reminders changed; otherwise returns
    ``not_needed`` after one read, writing nothing. The expansion runs under
    ``budget`` (default :meth:`WorkBudget.foreground`); when it runs out the
    outcome is ``failed``, logged as a warning, and nothing has changed.
    """
    when = _now(now)
    decision = refresh_decision(store.notify_freshness(), when.timestamp(), every=every)
    if not decision.needed:
        log.debug("foreground layer: not needed: %s", decision.reason)
        return RefreshOutcome("foreground", "not_needed", decision.reason, when)
    log.info("foreground layer: reschedule needed: %s", decision.reason)
    return _locked_refresh(
        store, "foreground", when, decision.reason, every, budget or WorkBudget.foreground()
    )
