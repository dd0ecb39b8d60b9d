"""The notification window as a kind of state kept fresh: both layers, one lock.

ADR-007 on the common core (:mod:`stayfresh.fresh`): the window is a
:class:`WindowKind` — stale when the reminders changed since it was built, or
4 hours (:data:`NOTIFICATION_REFRESH_HOURS`) after the last reschedule; in
*skip* mode (a caller that finds the lock held returns at once, marked
``skipped``: the holder is producing the very window it wanted); not kept in
memory (another process may change the reminders at any time).

- :func:`reschedule` — cancel all pending, compute, schedule fresh, in one
  store transaction.
- :func:`on_app_start` — layer 1, the foreground: reschedule only when the
  window is stale. Cheap when it is not: one read. It runs inside whatever
  command the user typed, so its expansion has a budget
  (:meth:`WorkBudget.foreground`, work and time): past it, it gives up with a
  warning, changes nothing, and leaves the reschedule to the background
  layer, which has no such limit (each rule still has its own, see :mod:`._budget`).
- :func:`refresh` — what the background layer (and ``notify refresh``) calls:
  always reschedules, through the lock.

Every decision is logged; every execution is counted in the store's
telemetry under ``("notify", "window", layer)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..fresh import Call, Flow, Fresh, Kind, Layer, Outcome, Request
from ..store import NotifyFreshness, PendingRow, RescheduleResult, RuleRow, Store
from ._budget import WindowBudgetExceeded, WorkBudget
from ._config import NotifyConfig
from ._decision import NOTIFICATION_REFRESH_HOURS, window_bounds, window_decision
from ._hooks import after_reschedule
from ._window import WindowPlan, compute_window

log = logging.getLogger(__name__)

#: the one notification window's key in the store's lock and telemetry
WINDOW = "window"


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyWindow:
    """The window's state: its freshness, and what the reschedule that made it did."""

    freshness: NotifyFreshness
    result: RescheduleResult | None = None
    left_out: int = 0

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "scheduled": r.scheduled if r else None,
            "cancelled": r.cancelled if r else None,
            "overdue_kept": r.overdue_kept if r else None,
            "rules": r.rules if r else None,
            "left_out": self.left_out,
        }


class WindowKind(Kind[NotifyWindow]):
    """The notification window: what is specific to it (see the module's text)."""

    name = "notify"
    mode = "skip"
    cache = False

    def __init__(
        self,
        *,
        every: dt.timedelta = dt.timedelta(hours=NOTIFICATION_REFRESH_HOURS),
        budget: WorkBudget | None = None,
        config: NotifyConfig | None = None,
    ) -> None:
        self.within = every.total_seconds()
        self.budget = budget
        self.config = config

    def load(self, store: Store, key: str) -> NotifyWindow:
        return NotifyWindow(store.notify_freshness())

    def _bounds(self, state: NotifyWindow, within: float) -> tuple[float, float]:
        f = state.freshness
        return window_bounds(
            f.last_reschedule_at, f.rules_version, f.window_rules_version, f.has_rules, within
        )

    def stale_from(self, state: NotifyWindow, within: float) -> float:
        return self._bounds(state, within)[1]

    def fresh_from(self, state: NotifyWindow) -> float:
        return self._bounds(state, self.within)[0]

    def version(self, state: NotifyWindow) -> tuple[float | None, int]:
        return state.freshness.last_reschedule_at, state.freshness.window_rules_version

    def reason(self, state: NotifyWindow, within: float, now: float) -> str:
        return window_decision(state.freshness, now, within)[1]

    def refresh(
        self, store: Store, key: str, state: NotifyWindow, request: Request
    ) -> Flow[NotifyWindow]:
        now = dt.datetime.fromtimestamp(request.clock(), dt.UTC)
        budget = self.budget if request.layer == "use" else None
        label = "foreground" if request.layer == "use" else request.layer  # ADR-007's names
        try:
            result, window = yield Call(
                reschedule,
                (store,),
                {"now": now, "layer": label, "config": self.config, "budget": budget},
            )
        except WindowBudgetExceeded as exc:  # expected of bad rules: no traceback
            log.warning(
                "%s layer gave up, nothing changed; the background layer will reschedule: %s",
                label, exc,
            )  # fmt: skip
            raise
        except Exception:
            log.exception("%s layer: reschedule failed", label)
            raise
        fresh = yield Call(store.notify_freshness)
        return NotifyWindow(fresh, result, len(window.left_out))


def _clock(now: dt.datetime | float | None) -> Callable[[], float]:
    if now is None:
        return time.time
    if isinstance(now, int | float):
        at = float(now)
    elif now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    else:
        at = now.timestamp()
    return lambda: at


def reschedule(
    store: Store,
    *,
    now: dt.datetime,
    layer: str,
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
    result = store.reschedule_notifications(plan, now=now.timestamp())
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


def refresh(
    store: Store, layer: Layer = "manual", *, now: dt.datetime | float | None = None
) -> Outcome[NotifyWindow]:
    """Reschedule now through the lock, always (the background layer and ``notify refresh``)."""
    log.info("%s layer: refresh requested; always reschedules", layer)
    fresh = Fresh(WindowKind(), store, clock=_clock(now))
    return fresh.ensure(WINDOW, force=True, layer=layer)


def on_app_start(
    store: Store,
    *,
    now: dt.datetime | float | None = None,
    every: dt.timedelta = dt.timedelta(hours=NOTIFICATION_REFRESH_HOURS),
    budget: WorkBudget | None = None,
) -> Outcome[NotifyWindow]:
    """Layer 1: call when the application starts or comes to the foreground.

    Reschedules (through the lock) when the window is stale — ``every`` (4 h)
    passed since the last reschedule, or the reminders changed; otherwise
    returns ``fresh`` after one read, writing nothing. The expansion runs
    under ``budget`` (default :meth:`WorkBudget.foreground`); when it runs out
    the outcome is ``failed``, logged as a warning, and nothing has changed.
    """
    kind = WindowKind(every=every, budget=budget or WorkBudget.foreground())
    return Fresh(kind, store, clock=_clock(now)).ensure(WINDOW, layer="use")
