"""One database for everything: SQLite by default, chosen by a path or URL."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# the real imports for type checkers; at run time each name loads on first use (PEP 562),
# so the valid-token path reads its database without loading the store's classes
if TYPE_CHECKING:
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
        FreshStore,
        LibraryStore,
        NotifyStore,
        RefreshLock,
        Store,
        WorkStore,
    )
    from ._location import default_db_path, open_store
    from ._peek import peek
    from ._postgres import PostgresStore
    from ._rows import (
        DEFAULT_SINK_ID,
        LATENCY_BUCKETS_MS,
        AccountRow,
        ClaimedRun,
        ClaimOutcome,
        DaemonRow,
        DeliveryRow,
        EnqueueResult,
        FreshStateRow,
        LibraryItemRow,
        LibrarySyncRow,
        NewLibraryItem,
        NewRule,
        NewWork,
        NotifyFreshness,
        PageCounts,
        PendingRow,
        RefreshIntent,
        RescheduleResult,
        RuleRow,
        RunFinish,
        RunRow,
        SinkRow,
        TelemetryRow,
        TokenRow,
        UniquePolicy,
        WorkRow,
    )
    from ._sqlite import SQLiteStore
    from ._work import constraints_key
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        "..errors": "DatabaseRefused SchemaTooNew StoreBusy StoreError StoreFull StoreUnavailable",
        "._contracts": "AccountExists FreshStore LibraryStore NotifyStore RefreshLock Store WorkStore",
        "._location": "default_db_path open_store",
        "._peek": "peek",
        "._postgres": "PostgresStore",  # psycopg only when PostgreSQL is asked for
        "._rows": "DEFAULT_SINK_ID LATENCY_BUCKETS_MS AccountRow ClaimedRun ClaimOutcome"
        " DaemonRow DeliveryRow"
        " EnqueueResult FreshStateRow LibraryItemRow LibrarySyncRow NewLibraryItem"
        " NewRule NewWork NotifyFreshness PageCounts PendingRow RefreshIntent"
        " RescheduleResult RuleRow RunFinish RunRow SinkRow TelemetryRow TokenRow"
        " UniquePolicy WorkRow",
        "._sqlite": "SQLiteStore",
        "._work": "constraints_key",
    }
    __getattr__, __dir__ = _lazy_exports(
        __name__, {name: module for module, names in _WHERE.items() for name in names.split()}
    )

__all__ = [
    "DEFAULT_SINK_ID",
    "LATENCY_BUCKETS_MS",
    "AccountExists",
    "AccountRow",
    "ClaimOutcome",
    "ClaimedRun",
    "DaemonRow",
    "DatabaseRefused",
    "DeliveryRow",
    "EnqueueResult",
    "FreshStateRow",
    "FreshStore",
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
    "RefreshLock",
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
    "TelemetryRow",
    "TokenRow",
    "UniquePolicy",
    "WorkRow",
    "WorkStore",
    "constraints_key",
    "default_db_path",
    "open_store",
    "peek",
]
