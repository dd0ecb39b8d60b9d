"""SQL of the library on SQLite, mixed into :class:`SQLiteStore`.

A page is one ``BEGIN IMMEDIATE`` transaction: read the digests of the page's
known items (to count added / updated), upsert the items, write the cursor.
With WAL and ``synchronous=FULL`` that is one fsync per page, which is what
makes "resume from the last committed page" exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._library_base import (
    LibraryItemRow,
    LibraryStore,
    LibrarySyncRow,
    NewLibraryItem,
    PageCounts,
)
from ._rows import SYNC_COLUMNS, finished_sync, like_pattern

_ITEM_COLUMNS = (
    "account, item_id, title, authors, data, first_seen_at, updated_at, removed_at,"
    " download_path, download_size, downloaded_at"
)
#: bound parameters per IN (...) list: far below every SQLite build's limit
_CHUNK = 500


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _sync_from_row(row: sqlite3.Row) -> LibrarySyncRow:
    return LibrarySyncRow(**{name: row[name] for name in SYNC_COLUMNS})


def _item_from_row(row: sqlite3.Row) -> LibraryItemRow:
    return LibraryItemRow(
        account=row["account"],
        item_id=row["item_id"],
        title=row["title"],
        authors=row["authors"],
        data=row["data"],
        first_seen_at=float(row["first_seen_at"]),
        updated_at=float(row["updated_at"]),
        removed_at=row["removed_at"],
        download_path=row["download_path"],
        download_size=row["download_size"],
        downloaded_at=row["downloaded_at"],
    )


def _write_sync(conn: sqlite3.Connection, row: LibrarySyncRow) -> None:
    values = tuple(getattr(row, name) for name in SYNC_COLUMNS)
    conn.execute(
        f"INSERT OR REPLACE INTO library_syncs ({', '.join(SYNC_COLUMNS)})"
        f" VALUES ({','.join('?' * len(SYNC_COLUMNS))})",
        values,
    )


class SQLiteLibraryMixin(LibraryStore):
    """The :class:`LibraryStore` methods of :class:`SQLiteStore`."""

    if TYPE_CHECKING:

        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

    def get_library_sync(self, account: str) -> LibrarySyncRow | None:
        rows = self.read("SELECT * FROM library_syncs WHERE account = ?", (account,))
        return _sync_from_row(rows[0]) if rows else None

    def save_library_sync(self, row: LibrarySyncRow) -> None:
        with self.write() as tx:
            _write_sync(tx, row)

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
        added = updated = 0
        with self.write() as tx:
            known: dict[str, tuple[str, float | None]] = {}
            for chunk in _chunks([i.item_id for i in unique], _CHUNK):
                marks = ",".join("?" * len(chunk))
                for row in tx.execute(
                    "SELECT item_id, digest, removed_at FROM library_items"
                    f" WHERE account = ? AND item_id IN ({marks})",
                    (account, *chunk),
                ):
                    known[row[0]] = (row[1], row[2])
            inserts: list[tuple[Any, ...]] = []
            changes: list[tuple[Any, ...]] = []
            touches: list[str] = []
            for item in unique:
                before = known.get(item.item_id)
                if before is None:
                    added += 1
                    inserts.append(
                        (account, item.item_id, item.title, item.authors, item.data,
                         item.digest, sync_id, now, now)
                    )  # fmt: skip
                elif before[0] != item.digest or before[1] is not None:
                    updated += 1
                    changes.append(
                        (item.title, item.authors, item.data, item.digest, sync_id, now,
                         account, item.item_id)
                    )  # fmt: skip
                else:
                    touches.append(item.item_id)
            if inserts:
                tx.executemany(
                    "INSERT INTO library_items (account, item_id, title, authors, data, digest,"
                    " seen_sync, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    inserts,
                )
            if changes:
                tx.executemany(
                    "UPDATE library_items SET title = ?, authors = ?, data = ?, digest = ?,"
                    " seen_sync = ?, updated_at = ?, removed_at = NULL"
                    " WHERE account = ? AND item_id = ?",
                    changes,
                )
            for chunk in _chunks(touches, _CHUNK):  # unchanged: one statement per chunk
                tx.execute(
                    "UPDATE library_items SET seen_sync = ?"
                    f" WHERE account = ? AND item_id IN ({','.join('?' * len(chunk))})",
                    (sync_id, account, *chunk),
                )
            _write_sync(
                tx,
                dataclasses.replace(
                    cursor, added=cursor.added + added, updated=cursor.updated + updated
                ),
            )
        return PageCounts(added=added, updated=updated, unchanged=len(unique) - added - updated)

    def finish_library_sync(self, cursor: LibrarySyncRow, *, now: float) -> int:
        with self.write() as tx:
            removed = tx.execute(
                "UPDATE library_items SET removed_at = ? WHERE account = ?"
                " AND removed_at IS NULL AND (seen_sync IS NULL OR seen_sync != ?)",
                (now, cursor.account, cursor.sync_id),
            ).rowcount
            _write_sync(tx, finished_sync(cursor, removed, now))
        return int(removed)

    def list_library(
        self,
        account: str,
        *,
        search: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[LibraryItemRow]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM library_items WHERE account = ?"
        params: list[Any] = [account]
        if not include_removed:
            sql += " AND removed_at IS NULL"
        if search:
            pattern = like_pattern(search)
            sql += (
                " AND (title LIKE ? ESCAPE '\\' OR authors LIKE ? ESCAPE '\\'"
                " OR item_id LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        sql += " ORDER BY title COLLATE NOCASE, item_id LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        return [_item_from_row(r) for r in self.read(sql, tuple(params))]

    def count_library(self, account: str, *, include_removed: bool = False) -> int:
        where = "" if include_removed else " AND removed_at IS NULL"
        rows = self.read(f"SELECT COUNT(*) FROM library_items WHERE account = ?{where}", (account,))
        return int(rows[0][0])

    def get_library_item(self, account: str, item_id: str) -> LibraryItemRow | None:
        rows = self.read(
            f"SELECT {_ITEM_COLUMNS} FROM library_items WHERE account = ? AND item_id = ?",
            (account, item_id),
        )
        return _item_from_row(rows[0]) if rows else None

    def set_library_download(
        self, account: str, item_id: str, *, path: str, size: int, now: float
    ) -> bool:
        with self.write() as tx:
            cur = tx.execute(
                "UPDATE library_items SET download_path = ?, download_size = ?, downloaded_at = ?"
                " WHERE account = ? AND item_id = ?",
                (path, size, now, account, item_id),
            )
        return cur.rowcount > 0
