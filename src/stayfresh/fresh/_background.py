"""Layer 2, background: a periodic work that keeps a state fresh while nobody uses it.

It calls the very same :meth:`Fresh.ensure` as layer 1, with the kind's
background margin and ``layer="background"``, so there is no second refresh
path: the lock, the re-read and the telemetry are shared. The work is an
ordinary periodic work of the engine (durable, leased, one catch-up run after
downtime), named ``fresh:<kind>:<key>`` and run by the ``stayfresh.fresh``
worker, which finds the kind by its import path (``package.module:NAME``).

Its result: success when the state is fresh (or another caller is refreshing
it); *retry* with the engine's backoff after a transient failure or an
unexpected one; *failure* when it needs a person (a new login, a fixed
configuration) — retrying would not help.

One :class:`Fresh` per (kind, database) per process is shared by the works
that run there (:func:`fresh_for`); an application that runs the engine
in-process registers its own with :func:`use_fresh` (its clock, HTTP client…).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ..store import Store, open_store

if TYPE_CHECKING:  # the core loads when a work runs: store_input alone is on every command's path
    from ..work import Result, WorkerContext, WorkInfo
    from ._kind import Kind, Outcome
    from ._on_use import Fresh

log = logging.getLogger("stayfresh.fresh")

#: the registered worker name of layer 2 (an entry point of the package)
FRESH_WORKER = "stayfresh.fresh"
Verdict = Literal["success", "retry", "failure"]

_instances: dict[tuple[str, str], Fresh[Any]] = {}  # (kind, database) → the process's Fresh
_by_store: dict[tuple[str, int], Fresh[Any]] = {}  # (kind, id(store)) → the same
_stores: dict[tuple[int, str], Store] = {}  # (pid, db) → a store opened for works
_guard = threading.Lock()


def _db(store: Store) -> str:
    path = getattr(store, "path", None)
    return str(path) if isinstance(path, Path) else store.location


def store_input(store: Store) -> dict[str, str]:
    """The ``db`` input that tells a worker which database its work came from.

    The engine hands workers their runner's store; the input is the fallback
    for contexts made without one. Only a file path is carried: a PostgreSQL
    label has no password, so those works rely on the runner's store.
    """
    path = getattr(store, "path", None)
    return {"db": str(path)} if isinstance(path, Path) else {}


def use_fresh(fresh: Fresh[Any]) -> None:
    """Make background works of ``fresh.kind`` on ``fresh.store``'s database use ``fresh``."""
    with _guard:
        _instances[(fresh.kind.name, _db(fresh.store))] = fresh
        _by_store[(fresh.kind.name, id(fresh.store))] = fresh


def drop_fresh(fresh: Fresh[Any]) -> None:
    """Stop using ``fresh`` for background works (the next work makes its own)."""
    with _guard:
        for table in (_instances, _by_store):
            for k in [k for k, v in table.items() if v is fresh]:
                del table[k]  # type: ignore[arg-type]


def registered(kind: Kind[Any]) -> list[Fresh[Any]]:
    """This process's instances for ``kind`` (e.g. to forget an account after a logout)."""
    with _guard:
        found = {id(f): f for (name, _), f in [*_instances.items(), *_by_store.items()]
                 if name == kind.name}  # fmt: skip
    return list(found.values())


def fresh_for(
    store: Store, kind: Kind[Any], factory: Callable[[Store], Fresh[Any]] | None = None
) -> Fresh[Any]:
    """The process's :class:`Fresh` for ``kind`` on ``store``'s database (one per database).

    The one registered with :func:`use_fresh`, else one made by ``factory``
    (default ``Fresh(kind, store)``) and kept for the next works. Two on one
    database never refresh twice at once: the store's lock and re-read make sure.
    """
    db = _db(store)
    with _guard:
        found = _by_store.get((kind.name, id(store)))
        if found is not None and found.store is store:
            return found
        found = _instances.get((kind.name, db))
        if found is None:
            from ._on_use import Fresh

            found = factory(store) if factory is not None else Fresh(kind, store)
            _instances[(kind.name, db)] = found
        _by_store[(kind.name, id(store))] = found
        return found


def store_of(ctx: WorkerContext) -> Store:
    """A running work's store: the runner's, else the database in its input (opened once)."""
    if ctx.store is not None:
        return ctx.store
    db = str(ctx.input.get("db") or "")
    if db and not Path(db).expanduser().is_file():
        raise ConfigError(f"the database {db} of this work no longer exists")
    key = (os.getpid(), db)
    with _guard:
        found = _stores.get(key)
        if found is None:
            found = _stores[key] = open_store(db or None)
        return found


def background_check(fresh: Fresh[Any], key: str) -> Outcome[Any]:
    """One run of layer 2 on ``key``: the same ``ensure`` as on use, with the background margin."""
    kind = fresh.kind
    within = kind.within if kind.background_within is None else kind.background_within
    return fresh.ensure(key, within, layer="background")


def verdict(kind: Kind[Any], outcome: Outcome[Any]) -> Verdict:
    """What the engine does after a background run: done, retry with backoff, or give up."""
    if outcome.status != "failed":
        return "success"
    assert outcome.error is not None
    return "failure" if kind.failure(outcome.error) == "person" else "retry"


def load_kind(path: str) -> Kind[Any]:
    """The kind at ``package.module:NAME`` (an instance, or a class made without arguments)."""
    from ._kind import Kind

    module, _, attr = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot load the kind {path!r}: {exc}") from exc
    if isinstance(found, type) and issubclass(found, Kind):
        found = found()
    if not isinstance(found, Kind):
        raise ConfigError(f"{path!r} is not a stayfresh.fresh.Kind")
    return found


def fresh_worker(ctx: WorkerContext) -> Result:
    """The registered worker of layer 2: input ``{"kind": "package.module:NAME", "key": KEY}``."""
    from ..work import Result

    path, key = ctx.input.get("kind"), ctx.input.get("key")
    if not isinstance(path, str) or not isinstance(key, str) or not key:
        return Result.failure({"message": 'a fresh work needs input {"kind": PATH, "key": KEY}'})
    try:
        kind = load_kind(path)
        fresh = fresh_for(store_of(ctx), kind)
    except ConfigError as exc:
        return Result.failure({"kind": path, "key": key, "message": str(exc)})
    outcome = background_check(fresh, key)
    output = {"kind": kind.name, **outcome.to_json()}
    decided = verdict(kind, outcome)
    if decided == "retry":
        log.warning(
            "%s %s: background refresh failed, will retry: %s", kind.name, key, outcome.error
        )
        return Result.retry()
    return Result.success(output) if decided == "success" else Result.failure(output)


def work_name(kind: Kind[Any], key: str) -> str:
    return f"fresh:{kind.name}:{key}"


def keep_fresh(
    store: Store, kind: str, key: str, *, every: dt.timedelta | float = dt.timedelta(hours=1)
) -> WorkInfo:
    """Start layer 2 for ``key``: a periodic work refreshing it ``every`` (idempotent).

    ``kind`` is the import path of the kind (``package.module:NAME``), so any
    daemon on the database can load it. Calling again with another interval
    updates the work.
    """
    from ..work import ExistingPeriodicWorkPolicy, WorkManager, WorkRequest

    loaded = load_kind(kind)  # fail now, not in the daemon
    period = every.total_seconds() if isinstance(every, dt.timedelta) else float(every)
    info = WorkManager(store).enqueue(
        WorkRequest(worker=FRESH_WORKER, input={"kind": kind, "key": key, **store_input(store)},
                    every=period),
        name=work_name(loaded, key),
        policy=ExistingPeriodicWorkPolicy.UPDATE,
    )  # fmt: skip
    log.info("%s %s: kept fresh in the background every %.0f s", loaded.name, key, period)
    return info


def stop_keeping_fresh(store: Store, kind: str, key: str) -> list[str]:
    """Cancel layer 2 for ``key``; returns the cancelled work ids."""
    from ..work import WorkManager

    return WorkManager(store).cancel(name=work_name(load_kind(kind), key))
