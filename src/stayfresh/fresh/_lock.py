"""The lock: one refresh of a state at a time, across processes (and machines).

:func:`locked_refresh` is what the leader of a refresh runs. It takes the
store's lock for ``(kind, key)`` in the kind's mode — ``skip``: try once and
return ``skipped``; ``share``: try once, then either use the current state
(still good for longer than the kind's wait window) or wait for the holder —
re-reads the state under the lock (another process may have refreshed it),
decides again, calls the kind's refresh, and counts the execution in the
store's telemetry. The row is the truth; the lock only saves wasted work.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import TransientError
from ._effects import Call, Flow
from ._kind import Kind, Layer, Outcome, Request

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("stayfresh.fresh")

S = TypeVar("S")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """One call's options, as the core hands them to the lock."""

    within: float
    force: bool
    layer: Layer
    lock_timeout: float
    #: what a server rejected (see :meth:`Kind.replaced`): a forced refresh is moot once replaced
    rejected: Any = None


def _count(store: Store, kind: str, key: str, layer: str, outcome: Any, **fields: Any) -> None:
    """Count one execution; telemetry that cannot be written never fails the refresh."""
    try:
        store.record_fresh(kind, key, layer, outcome, **fields)
    except Exception as exc:
        log.warning("%s %s: could not record the %s in telemetry: %s", kind, key, outcome, exc)


def locked_refresh(
    kind: Kind[S], store: Store, key: str, seen: S, opts: Options, clock: Callable[[], float]
) -> Flow[Outcome[S]]:
    """Refresh ``seen`` (the state as this caller loaded it) under the store's lock."""
    lock = store.lock(kind.name, key)
    if not (yield Call(lock.acquire, (0,), blocking=False)):
        now = clock()
        left = kind.usable_until(seen) - now
        if kind.mode == "skip" or (not opts.force and left > kind.wait_window):
            reason = "another caller holds the lock" + (
                "" if kind.mode == "skip" else f"; the current state is good for {left:.0f} s"
            )
            log.info("%s %s: %s: skipped", kind.name, key, reason)
            yield Call(_count, (store, kind.name, key, opts.layer, "skip"), {"at": now})
            return Outcome("skipped", seen, key, opts.layer, now, reason)
        log.info("%s %s: another process is refreshing; waiting for its result", kind.name, key)
        if not (yield Call(lock.acquire, (opts.lock_timeout,))):
            error = TransientError(
                f"{kind.name} {key}: timed out waiting for another process's refresh"
            )
            return Outcome(
                "failed", seen, key, opts.layer, clock(), "lock wait timed out", error,
                clock() < kind.usable_until(seen),
            )  # fmt: skip
    try:
        return (yield from _refresh_locked(kind, store, key, seen, opts, clock))
    finally:
        yield Call(lock.release)


def _refresh_locked(
    kind: Kind[S], store: Store, key: str, seen: S, opts: Options, clock: Callable[[], float]
) -> Flow[Outcome[S]]:
    current: S = yield Call(kind.load, (store, key))
    now = clock()
    force = opts.force and not kind.replaced(current, opts.rejected)
    stale = not kind.is_fresh(current, opts.within, now)
    if kind.version(current) != kind.version(seen) and (force or not stale):
        log.info("%s %s: refreshed by another caller meanwhile; using its result", kind.name, key)
        return Outcome("joined", current, key, opts.layer, now, "refreshed by another caller")
    if not force and not stale:
        reason = kind.reason(current, opts.within, now)
        return Outcome("fresh", current, key, opts.layer, now, reason)
    blocked = kind.blocked(current) if not force else None
    if blocked is not None:  # a person must act first: not an attempt, not counted
        usable = now < kind.usable_until(current)
        return Outcome("failed", current, key, opts.layer, now, str(blocked), blocked, usable)
    reason = "refresh forced" if force else kind.reason(current, opts.within, now)
    request = Request(
        layer=opts.layer, force=force, within=opts.within, clock=clock, patience=opts.lock_timeout
    )
    started = time.perf_counter()
    try:
        fresh: S = yield from kind.refresh(store, key, current, request)
    except kind.failures as exc:
        at = clock()
        message = f"{type(exc).__name__}: {exc}"
        yield Call(
            _count,
            (store, kind.name, key, opts.layer, "failure"),
            {"at": at, "error": message, "failure": kind.failure(exc)},
        )
        usable = at < kind.usable_until(current)
        return Outcome("failed", current, key, opts.layer, at, reason, exc, usable)
    latency_ms = (time.perf_counter() - started) * 1000
    at = clock()
    yield Call(
        _count, (store, kind.name, key, opts.layer, "success"), {"at": at, "latency_ms": latency_ms}
    )
    log.info("%s %s: refreshed (%s; %.0f ms)", kind.name, key, reason, latency_ms)
    return Outcome("refreshed", fresh, key, opts.layer, at, reason)
