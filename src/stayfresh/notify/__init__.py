"""Notifications: reminder rules, a rolling window, two refresh layers, one lock, delivery.

The system of ADR-007 (extending ADR-001's rolling window): reminders
(one-time or RFC 5545 RRULE, each in its own time zone) expand into a window
of the next two days of pending notifications, rebuilt as a whole by

- the **foreground layer** :func:`on_app_start` — when the program starts or
  a command runs, if 4 hours passed since the last reschedule;
- the **background layer** — the periodic work ``NOTIFICATION_REFRESH_TASK``
  every 3 hours (``stayfresh.jobs.enable_background``), which always reschedules;

both through one cross-process lock (skip, not queue): the window is a kind
of state kept fresh by :mod:`stayfresh.fresh` (:class:`WindowKind`). The daemon delivers each notification at its time through the
configured sinks (log, Apprise URLs, desktop), recorded so it is never sent
twice. This package never imports the work engine: the works of both layers
and of delivery live in :mod:`stayfresh.jobs`; :func:`stayfresh.jobs.install`
(called by the CLI; applications that embed the layers call it once) makes
every reschedule also schedule delivery, through :func:`add_reschedule_hook`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms

# the real imports for type checkers; at run time each name loads on first use (PEP 562)
if TYPE_CHECKING:
    from ._budget import RuleTooExpensive, WindowBudgetExceeded, WorkBudget
    from ._config import (
        BACKGROUND_TASK_INTERVAL_HOURS,
        NOTIFICATION_REFRESH_TASK,
        NOTIFICATION_WINDOW,
        NotifyConfig,
    )
    from ._decision import (
        NOTIFICATION_REFRESH_HOURS,
        reschedule_needed,
        window_bounds,
        window_decision,
    )
    from ._deliver import DeliveryReport, deliver_due, retry_time
    from ._hooks import add_reschedule_hook
    from ._refresh import NotifyWindow, WindowKind, on_app_start, refresh, reschedule
    from ._rrule import normalize_rrule
    from ._rules import compile_rule, describe, make_rule, occurrences
    from ._sinks import AppriseSink, DesktopSink, LogSink, Sink, SinkError, check_target, sink_for
    from ._when import parse_when
    from ._window import WindowPlan, compute_window
else:
    from .._lazy import lazy_exports as _lazy_exports

    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "RuleTooExpensive": "._budget",
            "WindowBudgetExceeded": "._budget",
            "WorkBudget": "._budget",
            "BACKGROUND_TASK_INTERVAL_HOURS": "._config",
            "NOTIFICATION_REFRESH_HOURS": "._decision",
            "reschedule_needed": "._decision",
            "window_bounds": "._decision",
            "window_decision": "._decision",
            "NOTIFICATION_REFRESH_TASK": "._config",
            "NOTIFICATION_WINDOW": "._config",
            "NotifyConfig": "._config",
            "DeliveryReport": "._deliver",
            "deliver_due": "._deliver",
            "retry_time": "._deliver",
            "add_reschedule_hook": "._hooks",
            "NotifyWindow": "._refresh",
            "WindowKind": "._refresh",
            "on_app_start": "._refresh",
            "refresh": "._refresh",
            "reschedule": "._refresh",
            "normalize_rrule": "._rrule",
            "compile_rule": "._rules",
            "describe": "._rules",
            "make_rule": "._rules",
            "occurrences": "._rules",
            "AppriseSink": "._sinks",
            "DesktopSink": "._sinks",
            "LogSink": "._sinks",
            "Sink": "._sinks",
            "SinkError": "._sinks",
            "check_target": "._sinks",
            "sink_for": "._sinks",
            "parse_when": "._when",
            "WindowPlan": "._window",
            "compute_window": "._window",
        },
    )

__all__ = [
    "BACKGROUND_TASK_INTERVAL_HOURS",
    "NOTIFICATION_REFRESH_HOURS",
    "NOTIFICATION_REFRESH_TASK",
    "NOTIFICATION_WINDOW",
    "AppriseSink",
    "DeliveryReport",
    "DesktopSink",
    "LogSink",
    "NotifyConfig",
    "NotifyWindow",
    "RuleTooExpensive",
    "Sink",
    "SinkError",
    "WindowBudgetExceeded",
    "WindowKind",
    "WindowPlan",
    "WorkBudget",
    "add_reschedule_hook",
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
    "reschedule",
    "reschedule_needed",
    "retry_time",
    "sink_for",
    "window_bounds",
    "window_decision",
]
