"""Notifications: reminder rules, a rolling window, two refresh layers, one lock, delivery.

The system of ADR-007 (extending ADR-001's rolling window): reminders
(one-time or RFC 5545 RRULE, each in its own time zone) expand into a window
of the next two days of pending notifications, rebuilt as a whole by

- the **foreground layer** :func:`on_app_start` — when the program starts or
  a command runs, if 4 hours passed since the last reschedule;
- the **background layer** — the periodic work ``NOTIFICATION_REFRESH_TASK``
  every 3 hours (``stayfresh.jobs.enable_background``), which always reschedules;

both through one cross-process lock (:func:`with_scheduling_lock`: skip, not
queue). The daemon delivers each notification at its time through the
configured sinks (log, Apprise URLs, desktop), recorded so it is never sent
twice. This package never imports the work engine: the works of both layers
and of delivery live in :mod:`stayfresh.jobs`, which registers itself as the
reschedule hook when imported (applications that embed the layers import it).
"""

from __future__ import annotations

from ._budget import RuleTooExpensive, WindowBudgetExceeded, WorkBudget
from ._config import (
    BACKGROUND_TASK_INTERVAL_HOURS,
    NOTIFICATION_REFRESH_HOURS,
    NOTIFICATION_REFRESH_TASK,
    NOTIFICATION_WINDOW,
    NotifyConfig,
)
from ._deliver import DeliveryReport, deliver_due, retry_time
from ._refresh import (
    Decision,
    LockResult,
    RefreshOutcome,
    on_app_start,
    refresh,
    refresh_decision,
    reschedule,
    with_scheduling_lock,
)
from ._rrule import normalize_rrule
from ._rules import compile_rule, describe, make_rule, occurrences
from ._sinks import AppriseSink, DesktopSink, LogSink, Sink, SinkError, check_target, sink_for
from ._when import parse_when
from ._window import WindowPlan, compute_window

__all__ = [
    "BACKGROUND_TASK_INTERVAL_HOURS",
    "NOTIFICATION_REFRESH_HOURS",
    "NOTIFICATION_REFRESH_TASK",
    "NOTIFICATION_WINDOW",
    "AppriseSink",
    "Decision",
    "DeliveryReport",
    "DesktopSink",
    "LockResult",
    "LogSink",
    "NotifyConfig",
    "RefreshOutcome",
    "RuleTooExpensive",
    "Sink",
    "SinkError",
    "WindowBudgetExceeded",
    "WindowPlan",
    "WorkBudget",
    "check_target",
    "compile_rule",
    "compute_window",
    "deliver_due",
    "describe",
    "make_rule",
    "normalize_rrule",
    "occurrences",
    "on_app_start",
    "parse_when",
    "refresh",
    "refresh_decision",
    "reschedule",
    "retry_time",
    "sink_for",
    "with_scheduling_lock",
]
