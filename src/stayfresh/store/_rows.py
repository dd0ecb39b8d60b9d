"""Row mapping shared by every backend: database rows to the store's value objects.

Both the SQLite and the PostgreSQL backends read rows by column name
(``RowLike`` and psycopg's dict rows alike), so one mapping serves both.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

from ._base import AccountRow, RefreshIntent, RefreshMetrics, TokenRow
from ._guard import fingerprint, intent_owner
from ._library_base import LibrarySyncRow
from ._work_base import WorkRow


class RowLike(Protocol):
    """A database row read by column name (``sqlite3.Row``, psycopg's dict rows)."""

    def __getitem__(self, key: str) -> Any: ...


def loads_json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def work_from_row(r: RowLike, tags: tuple[str, ...], deps: tuple[str, ...]) -> WorkRow:
    return WorkRow(
        id=r["id"],
        name=r["name"],
        worker=r["worker"],
        input=loads_json(r["input"]) or {},
        periodic=bool(r["periodic"]),
        interval=r["interval"],
        flex=r["flex"],
        constraints=loads_json(r["constraints"]) or {},
        backoff_policy=r["backoff_policy"],
        backoff_delay=float(r["backoff_delay"]),
        timeout=float(r["timeout"]),
        tags=tags,
        state=r["state"],
        run_attempt=int(r["run_attempt"]),
        scheduled_at=float(r["scheduled_at"]),
        next_run_at=float(r["next_run_at"]),
        run_now=bool(r["run_now"]),
        lease_owner=r["lease_owner"],
        lease_until=r["lease_until"],
        current_run=r["current_run"],
        output=loads_json(r["output"]),
        progress=loads_json(r["progress"]),
        last_outcome=r["last_outcome"],
        last_error=r["last_error"],
        last_run_at=r["last_run_at"],
        created_at=float(r["created_at"]),
        updated_at=float(r["updated_at"]),
        finished_at=r["finished_at"],
        prerequisites=deps,
    )


#: the columns of ``library_syncs``, in the order both backends write them
SYNC_COLUMNS = (
    "account", "sync_id", "source", "state", "next_page", "cursor", "total_items",
    "total_pages", "pages", "items_seen", "added", "updated", "removed", "started_at",
    "updated_at", "finished_at",
)  # fmt: skip


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (``\\`` escapes)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def finished_sync(cursor: LibrarySyncRow, removed: int, now: float) -> LibrarySyncRow:
    return dataclasses.replace(
        cursor, state="finished", removed=removed, updated_at=now, finished_at=now, cursor=None
    )


def account_from_row(row: RowLike) -> AccountRow:
    return AccountRow(
        name=row["name"],
        provider=row["provider"],
        config=json.loads(row["config"]),
        tokens=TokenRow(
            access_token=row["access_token"],
            refresh_token=row["refresh_token"],
            token_type=row["token_type"],
            scope=row["scope"],
            expires_at=row["expires_at"],
            obtained_at=row["obtained_at"],
        ),
        version=int(row["version"]),
        status=row["status"],
        status_message=row["status_message"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def metrics_from(row: RowLike | None, latencies: list[float]) -> RefreshMetrics:
    """Build :class:`RefreshMetrics` from a counters row and recent latencies."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else None
    return RefreshMetrics(
        jit_refreshes=int(row["jit_refreshes"]) if row else 0,
        background_refreshes=int(row["background_refreshes"]) if row else 0,
        failures=int(row["failures"]) if row else 0,
        avg_latency_ms=sum(ordered) / len(ordered) if ordered else None,
        p95_latency_ms=p95,
        last_refresh_at=row["last_refresh_at"] if row else None,
        last_failure_at=row["last_failure_at"] if row else None,
        last_error=row["last_error"] if row else None,
    )


#: the columns of ``refresh_intents``, in the order both backends write them
INTENT_COLUMNS = ("account", "owner", "fingerprint", "version", "started_at", "expires_at")


def new_intent(
    account: str, version: int, refresh_token: str | None, *, at: float, lease: float
) -> RefreshIntent:
    """This process's intent to spend ``refresh_token`` (only its fingerprint is kept)."""
    return RefreshIntent(
        account=account,
        owner=intent_owner(),
        fingerprint=fingerprint(refresh_token),
        version=version,
        started_at=at,
        expires_at=at + lease,
    )


def intent_values(intent: RefreshIntent) -> tuple[Any, ...]:
    return tuple(getattr(intent, name) for name in INTENT_COLUMNS)


def intent_from_row(row: RowLike) -> RefreshIntent:
    return RefreshIntent(
        account=row["account"],
        owner=row["owner"],
        fingerprint=row["fingerprint"],
        version=int(row["version"]),
        started_at=float(row["started_at"]),
        expires_at=float(row["expires_at"]),
    )
