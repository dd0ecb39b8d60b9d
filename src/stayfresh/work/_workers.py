"""Workers: how a stored worker name becomes a function, and how it is called.

A work names its worker by import path (``package.module:function``) or by a
name registered with :func:`register_worker`, never by a Python object, so
any runner process can execute any stored work. A worker takes one
:class:`WorkerContext` and returns a :class:`Result`, a mapping (success with
that output) or None (success); it may be ``async def``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import ConfigError
from ..store import Store
from ._model import Result

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

WorkerFunc = Callable[["WorkerContext"], Any]
F = TypeVar("F", bound=WorkerFunc)

_registry: dict[str, WorkerFunc] = {}
#: workers found through the ``stayfresh.workers`` entry points (a cache, filled on first use)
_declared: dict[str, WorkerFunc] = {}
_registry_lock = threading.Lock()


@overload
def register_worker(name: str, func: None = None) -> Callable[[F], F]: ...


@overload
def register_worker(name: str, func: F) -> F: ...


def register_worker(name: str, func: F | None = None) -> F | Callable[[F], F]:
    """Register ``func`` under a short ``name`` (usable as a decorator).

    Registering is explicit (a call, never a side effect of importing a
    module); stayfresh's own workers are found through the ``stayfresh.workers``
    entry points instead. Names must not contain ``:`` (that marks an import path).
    """
    if ":" in name:
        raise ValueError("registered worker names cannot contain ':'")

    def add(f: F) -> F:
        with _registry_lock:
            _registry[name] = f
        return f

    return add(func) if func is not None else add


def registered_workers() -> dict[str, WorkerFunc]:
    """A copy of the registry (for ``--help`` and tests)."""
    with _registry_lock:
        return {**_BUILTIN, **_registry}


def _from_entry_point(name: str) -> WorkerFunc | None:
    """A worker declared under the ``stayfresh.workers`` entry-point group.

    This is how a runner that never imported :mod:`stayfresh.jobs` (or a
    third-party package) still finds the built-in names such as
    ``stayfresh.token-refresh``: the engine does not import the parts above it.
    """
    from importlib.metadata import entry_points  # only when a worker is first looked up

    for ep in entry_points(group="stayfresh.workers"):
        if ep.name != name:
            continue
        loaded = ep.load()  # ``package.module:function``: the worker itself
        if not callable(loaded):
            raise ConfigError(f"entry point {ep.value!r} of worker {name!r} is not a function")
        with _registry_lock:
            _declared[name] = loaded
        return loaded  # type: ignore[no-any-return]
    return None


def resolve_worker(spec: str) -> WorkerFunc:
    """The callable named by ``spec``; raise :class:`ConfigError` if it cannot be found."""
    if ":" not in spec:
        with _registry_lock:
            found = _registry.get(spec) or _BUILTIN.get(spec) or _declared.get(spec)
        if found is None:
            found = _from_entry_point(spec)
        if found is None:
            raise ConfigError(
                f"unknown worker {spec!r}: use package.module:function or one of "
                f"{', '.join(sorted(registered_workers())) or '(none registered)'}"
            )
        return found
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load worker {spec!r}: {exc}") from exc
    if not callable(obj):
        raise ConfigError(f"worker {spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


class WorkerContext:
    """What a worker gets: its input, attempt number, progress and cancellation.

    ``cancelled`` turns true when the work is cancelled, its time limit runs
    out, or the runner shuts down; sync workers that run long should check it
    (or wait with :meth:`wait_cancelled`) and return — a thread cannot be
    killed, and the work is not retried until its worker has returned.
    """

    def __init__(
        self,
        *,
        work_id: str,
        name: str | None,
        input: Mapping[str, Any],
        run_attempt: int,
        tags: tuple[str, ...],
        scheduled_at: float,
        report_progress: Callable[[Mapping[str, Any]], None] | None = None,
        cancel_event: threading.Event | None = None,
        store: Store | None = None,
        run_id: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: the runner's store: workers use it instead of opening the database again
        self.store = store
        #: this run's fencing token: the run id its claim opened. Every write the run
        #: makes through the engine (progress, renewal, result) is conditional on it
        self.run_id = run_id
        self._clock = clock  # the runner's: leases are in its time
        self._lease_lost = threading.Event()
        self.work_id = work_id
        self.name = name
        self.input: Mapping[str, Any] = input
        self.run_attempt = run_attempt
        self.tags = tags
        self.scheduled_at = dt.datetime.fromtimestamp(scheduled_at, dt.UTC)
        self._report = report_progress
        self._cancel = cancel_event or threading.Event()
        self._hooks: list[Callable[[], None]] = []
        self._hooks_lock = threading.Lock()

    def request_cancel(self) -> None:
        """Ask the worker to stop (the runner calls this); async workers get CancelledError."""
        with self._hooks_lock:
            self._cancel.set()
            hooks = list(self._hooks)
        for hook in hooks:
            hook()

    def _on_cancel(self, hook: Callable[[], None]) -> None:
        with self._hooks_lock:
            if not self._cancel.is_set():
                self._hooks.append(hook)
                return
        hook()

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        """Publish progress; ``stayfresh work status`` shows it while the run lasts."""
        if self._report is not None:
            self._report(dict(progress))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def lease_lost(self) -> None:
        """The runner found this run's lease gone (taken over, or expired): it is cancelled."""
        self._lease_lost.set()
        self.request_cancel()

    def lease_valid(self) -> bool:
        """Does this run still hold its work? Check before an external side effect.

        False once the runner found the lease lost; otherwise, with a store,
        the stored work must still name this run (the fencing token) with a
        lease that has not run out. Without a store (a context made by hand),
        only what the runner said.
        """
        if self._lease_lost.is_set():
            return False
        if self.store is None or self.run_id is None:
            return True
        work = self.store.get_work(self.work_id)
        return (
            work is not None
            and work.current_run == self.run_id
            and (work.lease_until or 0.0) > self._clock()
        )

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, returning early (True) when cancelled."""
        return self._cancel.wait(timeout)

    def __repr__(self) -> str:
        return f"WorkerContext(work_id={self.work_id!r}, name={self.name!r}, attempt={self.run_attempt})"


def to_result(value: Any) -> Result:
    """Normalise what a worker returned; anything else is a programming error."""
    if value is None:
        return Result.success()
    if isinstance(value, Result):
        return value
    if isinstance(value, Mapping):
        return Result.success(value)
    raise TypeError(f"a worker must return Result, a mapping or None, not {type(value).__name__}")


def call_worker(
    func: WorkerFunc, ctx: WorkerContext, loop: asyncio.AbstractEventLoop | None = None
) -> Any:
    """Call a worker in the current (worker) thread and return what it returned.

    A coroutine runs on ``loop`` when given (the application's loop, for a
    runner served from asyncio, so async workers share its clients), else on
    a fresh loop in this thread. Cancelling the context cancels the task.
    """
    value = func(ctx)
    if not inspect.isawaitable(value):
        return value
    import asyncio  # only for an async worker: a daemon of plain workers never loads it

    if loop is None:
        return asyncio.run(_cancellable(value, ctx))
    return asyncio.run_coroutine_threadsafe(_cancellable(value, ctx), loop).result()


async def _cancellable(value: Awaitable[Any], ctx: WorkerContext) -> Any:
    import asyncio

    task = asyncio.ensure_future(value)
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    ctx._on_cancel(cancel)
    return await task


# -- built-in workers: small, dependency-free, used by demos, tests and benchmarks


def noop(ctx: WorkerContext) -> Result:
    """Does nothing and succeeds: the cheapest possible work."""
    return Result.success()


def echo(ctx: WorkerContext) -> Result:
    """Succeeds with its input as output (handy for chains)."""
    return Result.success(ctx.input)


def sleep(ctx: WorkerContext) -> Result:
    """Sleeps ``input["seconds"]`` (cancellable), then succeeds; for demos of time limits."""
    seconds = float(ctx.input.get("seconds", 1.0))
    if ctx.wait_cancelled(seconds):
        return Result.retry()
    return Result.success({"slept": seconds})


#: the engine's own workers, known by name without registering anything
_BUILTIN: dict[str, WorkerFunc] = {"noop": noop, "echo": echo, "sleep": sleep}
