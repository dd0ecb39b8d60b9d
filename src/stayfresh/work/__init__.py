"""Layer 2: the durable work engine (WorkManager's semantics, on our store).

Enqueue with :class:`WorkManager`, run with :class:`Runner` (a thread, an
asyncio task, or ``stayfresh daemon``). Workers are named by import path so
any runner process can execute any stored work.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# the real imports for type checkers; at run time each name loads on first use (PEP 562)
if TYPE_CHECKING:
    from ._constraints import Constraints, ConstraintWatcher, unmet_constraints
    from ._control import NullWaker, SocketWaker, WakeListener, Waker, control_dir
    from ._engine import WorkManager, plan_finish
    from ._inline import lease_holder, run_work_inline
    from ._model import (
        ExistingPeriodicWorkPolicy,
        ExistingWorkPolicy,
        Result,
        RunInfo,
        WorkInfo,
        WorkRequest,
        WorkState,
    )
    from ._runner import Runner
    from ._schedule import (
        BackoffPolicy,
        backoff_delay,
        first_due,
        format_duration,
        min_interval,
        next_period_due,
        parse_duration,
    )
    from ._workers import WorkerContext, register_worker, resolve_worker
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        "._constraints": "Constraints ConstraintWatcher unmet_constraints",
        "._control": "NullWaker SocketWaker WakeListener Waker control_dir",
        "._engine": "WorkManager plan_finish",
        "._inline": "lease_holder run_work_inline",
        "._model": "ExistingPeriodicWorkPolicy ExistingWorkPolicy Result RunInfo WorkInfo WorkRequest WorkState",
        "._runner": "Runner",
        "._schedule": "BackoffPolicy backoff_delay first_due format_duration min_interval next_period_due parse_duration",
        "._workers": "WorkerContext register_worker resolve_worker",
    }
    __getattr__, __dir__ = _lazy_exports(
        __name__, {name: module for module, names in _WHERE.items() for name in names.split()}
    )

__all__ = [
    "BackoffPolicy",
    "ConstraintWatcher",
    "Constraints",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "NullWaker",
    "Result",
    "RunInfo",
    "Runner",
    "SocketWaker",
    "WakeListener",
    "Waker",
    "WorkInfo",
    "WorkManager",
    "WorkRequest",
    "WorkState",
    "WorkerContext",
    "backoff_delay",
    "control_dir",
    "first_due",
    "format_duration",
    "lease_holder",
    "min_interval",
    "next_period_due",
    "parse_duration",
    "plan_finish",
    "register_worker",
    "resolve_worker",
    "run_work_inline",
    "unmet_constraints",
]
