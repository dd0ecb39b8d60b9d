"""One database for everything: SQLite by default, chosen by a path or URL."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING as _TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports
from ..errors import ConfigError as _ConfigError
from ..errors import (
    DatabaseRefused,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from ._contracts import (
    AccountExists,
    LibraryStore,
    NotifyStore,
    RefreshLock,
    Store,
    WorkStore,
)
from ._rows import (
    DEFAULT_SINK_ID,
    AccountRow,
    ClaimedRun,
    ClaimOutcome,
    DeliveryRow,
    EnqueueResult,
    LayerTelemetryRow,
    LibraryItemRow,
    LibrarySyncRow,
    NewLibraryItem,
    NewRule,
    NewWork,
    NotifyFreshness,
    PageCounts,
    PendingRow,
    RefreshIntent,
    RefreshKind,
    RefreshMetrics,
    RescheduleResult,
    RuleRow,
    RunFinish,
    RunRow,
    SinkRow,
    TokenRow,
    UniquePolicy,
    WorkRow,
)
from ._work import constraints_key

if _TYPE_CHECKING:
    from ._postgres import PostgresStore
    from ._sqlite import SQLiteStore

# the backends load on first use: psycopg only when PostgreSQL is asked for
__getattr__, __dir__ = _lazy_exports(
    __name__, {"SQLiteStore": "._sqlite", "PostgresStore": "._postgres"}
)

__all__ = [
    "DEFAULT_SINK_ID",
    "AccountExists",
    "AccountRow",
    "ClaimOutcome",
    "ClaimedRun",
    "DatabaseRefused",
    "DeliveryRow",
    "EnqueueResult",
    "LayerTelemetryRow",
    "LibraryItemRow",
    "LibraryStore",
    "LibrarySyncRow",
    "NewLibraryItem",
    "NewRule",
    "NewWork",
    "NotifyFreshness",
    "NotifyStore",
    "PageCounts",
    "PendingRow",
    "PostgresStore",
    "RefreshIntent",
    "RefreshKind",
    "RefreshLock",
    "RefreshMetrics",
    "RescheduleResult",
    "RuleRow",
    "RunFinish",
    "RunRow",
    "SQLiteStore",
    "SchemaTooNew",
    "SinkRow",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "TokenRow",
    "UniquePolicy",
    "WorkRow",
    "WorkStore",
    "constraints_key",
    "default_db_path",
    "open_store",
]


def default_db_path() -> Path:
    """``STAYFRESH_DB`` if set, else ``stayfresh.db`` in the user data directory."""
    env = os.environ.get("STAYFRESH_DB")
    if env:
        return Path(env)
    import platformdirs  # only when no --db or STAYFRESH_DB says where

    return Path(platformdirs.user_data_dir("stayfresh")) / "stayfresh.db"


def open_store(location: str | os.PathLike[str] | None = None) -> Store:
    """Open (and migrate) the store at ``location``: a file path, ``sqlite:///path``
    or ``postgresql://user@host/db`` (needs ``pip install 'stayfresh[postgres]'``).

    ``None`` means ``STAYFRESH_DB`` or the platform default. A file or database
    that is not stayfresh's (or is newer than this version) raises
    :class:`DatabaseRefused` and is left untouched; a lock held past the busy
    timeout (``STAYFRESH_BUSY_TIMEOUT``) raises :class:`StoreBusy`, a full disk
    :class:`StoreFull`.
    """
    target = str(location) if location is not None else str(default_db_path())
    if target.startswith(("postgresql://", "postgres://")):
        try:  # imported only here: psycopg is an optional extra
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL needs psycopg: pip install 'stayfresh[postgres]'"
                f" ({exc.name or exc} is missing)"
            ) from exc
        return PostgresStore(target)
    if target.startswith("sqlite:///"):
        target = (
            target[len("sqlite:///") - 1 :] if target.startswith("sqlite:////") else target[10:]
        )
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", target):  # mysql://, sqlite://host/…
        scheme = target.split("://", 1)[0]
        raise _ConfigError(
            f"unsupported database URL scheme {scheme!r}: use a file path, "
            "sqlite:///path or postgresql://…"
        )
    from ._sqlite import SQLiteStore

    return SQLiteStore(target)
