"""SQL of the library on PostgreSQL, mixed into :class:`PostgresStore`.

A page is one transaction, as on SQLite. The page's known items are read
``FOR UPDATE`` so that two syncs of one account (which the jobs part already
prevents with a lock) could not both count an item as added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import DictRow

from ._library_base import (
    LibraryItemRow,
    LibraryStore,
    LibrarySyncRow,
    NewLibraryItem,
    PageCounts,
)
from ._rows import SYNC_COLUMNS, finished_sync, like_pattern

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]

_ITEM_COLUMNS = (
    "account, item_id, title, authors, data, first_seen_at, updated_at, removed_at,"
    " download_path, download_size, downloaded_at"
)


def _item(row: DictRow) -> LibraryItemRow:
    return LibraryItemRow(**{k: row[k] for k in _ITEM_COLUMNS.replace(" ", "").split(",")})


def _sync(row: DictRow) -> LibrarySyncRow:
    return LibrarySyncRow(**{name: row[name] for name in SYNC_COLUMNS})


def _write_sync(tx: Conn, row: LibrarySyncRow) -> None:
    columns = ", ".join(SYNC_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in SYNC_COLUMNS if c != "account")
    tx.execute(
        f"INSERT INTO library_syncs ({columns}) VALUES ({', '.join(['%s'] * len(SYNC_COLUMNS))})"
        f" ON CONFLICT (account) DO UPDATE SET {updates}",
        tuple(getattr(row, name) for name in SYNC_COLUMNS),
    )


class PostgresLibraryMixin(LibraryStore):
    """The :class:`LibraryStore` methods of :class:`PostgresStore`."""

    if TYPE_CHECKING:

        def write_tx(self, body: Callable[[Conn], T]) -> T: ...

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[DictRow]: ...

    def get_library_sync(self, account: str) -> LibrarySyncRow | None:
        rows = self.read("SELECT * FROM library_syncs WHERE account = %s", (account,))
        return _sync(rows[0]) if rows else None

    def save_library_sync(self, row: LibrarySyncRow) -> None:
        self.write_tx(lambda tx: _write_sync(tx, row))

    def store_library_page(
        self,
        account: str,
        sync_id: str,
        items: Sequence[NewLibraryItem],
        cursor: LibrarySyncRow,
        *,
        now: float,
    ) -> PageCounts:
        # a page may repeat an id (sources are not perfect): the last copy wins
        unique = list({item.item_id: item for item in items}.values())

        def body(tx: Conn) -> PageCounts:
            known = {
                r["item_id"]: (r["digest"], r["removed_at"])
                for r in tx.execute(
                    "SELECT item_id, digest, removed_at FROM library_items"
                    " WHERE account = %s AND item_id = ANY(%s) ORDER BY item_id FOR UPDATE",
                    (account, [i.item_id for i in unique]),
                )
            }
            inserts: list[tuple[Any, ...]] = []
            changes: list[tuple[Any, ...]] = []
            touches: list[tuple[Any, ...]] = []
            for item in unique:
                before = known.get(item.item_id)
                if before is None:
                    inserts.append(
                        (account, item.item_id, item.title, item.authors, item.data,
                         item.digest, sync_id, now, now)
                    )  # fmt: skip
                elif before[0] != item.digest or before[1] is not None:
                    changes.append(
                        (item.title, item.authors, item.data, item.digest, sync_id, now,
                         account, item.item_id)
                    )  # fmt: skip
                else:
                    touches.append((sync_id, account, item.item_id))
            with tx.cursor() as cur:
                cur.executemany(
                    "INSERT INTO library_items (account, item_id, title, authors, data, digest,"
                    " seen_sync, first_seen_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    inserts,
                )
                cur.executemany(
                    "UPDATE library_items SET title = %s, authors = %s, data = %s, digest = %s,"
                    " seen_sync = %s, updated_at = %s, removed_at = NULL"
                    " WHERE account = %s AND item_id = %s",
                    changes,
                )
                cur.executemany(
                    "UPDATE library_items SET seen_sync = %s WHERE account = %s AND item_id = %s",
                    touches,
                )
            added, updated = len(inserts), len(changes)
            _write_sync(
                tx,
                dataclasses.replace(
                    cursor, added=cursor.added + added, updated=cursor.updated + updated
                ),
            )
            return PageCounts(added=added, updated=updated, unchanged=len(touches))

        return self.write_tx(body)

    def finish_library_sync(self, cursor: LibrarySyncRow, *, now: float) -> int:
        def body(tx: Conn) -> int:
            removed = tx.execute(
                "UPDATE library_items SET removed_at = %s WHERE account = %s"
                " AND removed_at IS NULL AND (seen_sync IS NULL OR seen_sync <> %s)",
                (now, cursor.account, cursor.sync_id),
            ).rowcount
            _write_sync(tx, finished_sync(cursor, removed, now))
            return int(removed)

        return self.write_tx(body)

    def list_library(
        self,
        account: str,
        *,
        search: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[LibraryItemRow]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM library_items WHERE account = %s"
        params: list[Any] = [account]
        if not include_removed:
            sql += " AND removed_at IS NULL"
        if search:
            pattern = like_pattern(search)
            sql += (
                " AND (title ILIKE %s ESCAPE '\\' OR authors ILIKE %s ESCAPE '\\'"
                " OR item_id ILIKE %s ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        # lower() stands for SQLite's NOCASE (ASCII case folding) in the order
        sql += ' ORDER BY lower(title) COLLATE "C" NULLS FIRST, item_id COLLATE "C"'
        sql += " LIMIT %s OFFSET %s"
        params += [limit, offset]
        return [_item(r) for r in self.read(sql, tuple(params))]

    def count_library(self, account: str, *, include_removed: bool = False) -> int:
        where = "" if include_removed else " AND removed_at IS NULL"
        rows = self.read(
            f"SELECT COUNT(*) AS n FROM library_items WHERE account = %s{where}", (account,)
        )
        return int(rows[0]["n"])

    def get_library_item(self, account: str, item_id: str) -> LibraryItemRow | None:
        rows = self.read(
            f"SELECT {_ITEM_COLUMNS} FROM library_items WHERE account = %s AND item_id = %s",
            (account, item_id),
        )
        return _item(rows[0]) if rows else None

    def set_library_download(
        self, account: str, item_id: str, *, path: str, size: int, now: float
    ) -> bool:
        return self.write_tx(
            lambda tx: (
                tx.execute(
                    "UPDATE library_items SET download_path = %s, download_size = %s,"
                    " downloaded_at = %s WHERE account = %s AND item_id = %s",
                    (path, size, now, account, item_id),
                ).rowcount
                > 0
            )
        )
