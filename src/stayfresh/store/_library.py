"""The library sync store methods, written once for every backend, and their rules.

The decisions (is a fetched item new, changed or unchanged; what the sync row
says after a page; what a finished sync stores; how a search becomes a LIKE
pattern) are pure functions at the top. :class:`LibrarySQL` applies them with
the statements of ``queries/library.sql``. A page is one transaction: read
the digests of the page's known items (``FOR UPDATE`` on PostgreSQL, so two
syncs of one account could not both count an item as added), insert the new
items, update the changed ones, touch the unchanged ones in one statement and
write the cursor — one fsync per page on SQLite, which is what makes "resume
from the last committed page" exact.

Only the listing differs per backend (``library.sqlite.sql`` /
``library.postgres.sql``): its order names a collation (SQLite's ``NOCASE``,
PostgreSQL's ``"C"`` over ``lower()``), its search is ``LIKE`` (already
case-insensitive on SQLite) or ``ILIKE``, and "no limit" is ``-1`` or ``NULL``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from ._contracts import LibraryStore
from ._rows import (
    LibraryItemRow,
    LibrarySyncRow,
    NewLibraryItem,
    PageCounts,
    RowLike,
    from_row,
)
from ._sql import SQLBase, Tx

#: the columns of ``library_syncs`` (named parameters of ``put_library_sync``)
SYNC_COLUMNS = (
    "account", "sync_id", "source", "state", "next_page", "cursor", "total_items",
    "total_pages", "pages", "items_seen", "added", "updated", "removed", "started_at",
    "updated_at", "finished_at",
)  # fmt: skip

#: what storing an item does to the library
Change = Literal["added", "updated", "unchanged"]


# -- rules (pure) -------------------------------------------------------------------------------


class Known(NamedTuple):
    """What the store knows of an item already in the library (a tuple: one per row read)."""

    digest: str
    removed_at: float | None


def unique_items(items: Iterable[NewLibraryItem]) -> list[NewLibraryItem]:
    """A page without repeated ids: the last copy wins, at the first copy's place.

    Sources are not perfect; a page may list an item twice.
    """
    return list({item.item_id: item for item in items}.values())


def item_change(before: Known | None, item: NewLibraryItem) -> Change:
    """Whether storing ``item`` adds it, updates it or only marks it seen.

    An item is updated when its digest changed, or when it comes back after a
    sync had marked it removed (``updated_at`` then moves and ``removed_at``
    is cleared).
    """
    if before is None:
        return "added"
    if before.digest != item.digest or before.removed_at is not None:
        return "updated"
    return "unchanged"


@dataclasses.dataclass(frozen=True, slots=True)
class PagePlan:
    """The writes one page makes, by kind."""

    added: tuple[NewLibraryItem, ...]
    updated: tuple[NewLibraryItem, ...]
    unchanged: tuple[str, ...]  #: ids, only marked seen

    @property
    def counts(self) -> PageCounts:
        return PageCounts(
            added=len(self.added), updated=len(self.updated), unchanged=len(self.unchanged)
        )


def plan_page(items: Sequence[NewLibraryItem], known: Mapping[str, Known]) -> PagePlan:
    """Sort a (repeat-free) page into new, changed and unchanged items (:func:`item_change`)."""
    added: list[NewLibraryItem] = []
    updated: list[NewLibraryItem] = []
    unchanged: list[str] = []
    for item in items:
        change = item_change(known.get(item.item_id), item)
        if change == "added":
            added.append(item)
        elif change == "updated":
            updated.append(item)
        else:
            unchanged.append(item.item_id)
    return PagePlan(added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged))


def cursor_after_page(cursor: LibrarySyncRow, counts: PageCounts) -> LibrarySyncRow:
    """The sync row to store with a page: ``cursor`` plus the page's added and updated."""
    return dataclasses.replace(
        cursor, added=cursor.added + counts.added, updated=cursor.updated + counts.updated
    )


def finished_sync(cursor: LibrarySyncRow, removed: int, now: float) -> LibrarySyncRow:
    """The sync row a finished sync leaves: its figures, no cursor, ``finished`` at ``now``."""
    return dataclasses.replace(
        cursor, state="finished", removed=removed, updated_at=now, finished_at=now, cursor=None
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (``\\`` escapes)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_pattern(search: str | None) -> str | None:
    """The listing's LIKE pattern; None (match everything) for no or an empty search."""
    return like_pattern(search) if search else None


# -- rows and parameters ------------------------------------------------------------------------


def sync_from_row(row: RowLike) -> LibrarySyncRow:
    return from_row(LibrarySyncRow, row)


def sync_params(row: LibrarySyncRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SYNC_COLUMNS}


def item_from_row(row: RowLike) -> LibraryItemRow:
    return from_row(LibraryItemRow, row)


def known_from_rows(rows: Iterable[RowLike]) -> dict[str, Known]:
    return {r["item_id"]: Known(digest=r["digest"], removed_at=r["removed_at"]) for r in rows}


def item_params(account: str, sync_id: str, item: NewLibraryItem, now: float) -> dict[str, Any]:
    return {
        "account": account,
        "item_id": item.item_id,
        "title": item.title,
        "authors": item.authors,
        "data": item.data,
        "digest": item.digest,
        "sync_id": sync_id,
        "now": now,
    }


# -- the store methods --------------------------------------------------------------------------


class LibrarySQL(SQLBase, LibraryStore):
    """The :class:`LibraryStore` methods, for both backends."""

    def get_library_sync(self, account: str) -> LibrarySyncRow | None:
        row = self.select_one("get_library_sync", account=account)
        return None if row is None else sync_from_row(row)

    def save_library_sync(self, row: LibrarySyncRow) -> None:
        self.transact(lambda tx: tx.run("put_library_sync", **sync_params(row)))

    def store_library_page(
        self,
        account: str,
        sync_id: str,
        items: Sequence[NewLibraryItem],
        cursor: LibrarySyncRow,
        *,
        now: float,
    ) -> PageCounts:
        page = unique_items(items)
        ids = [item.item_id for item in page]

        def body(tx: Tx) -> PageCounts:
            rows = tx.all("library_known_items", account=account, ids=ids) if ids else []
            plan = plan_page(page, known_from_rows(rows))
            tx.many("add_library_item", (item_params(account, sync_id, i, now) for i in plan.added))
            tx.many(
                "change_library_item",
                (item_params(account, sync_id, i, now) for i in plan.updated),
            )
            if plan.unchanged:  # one statement for all of them
                tx.run(
                    "touch_library_items",
                    account=account,
                    sync_id=sync_id,
                    ids=list(plan.unchanged),
                )
            counts = plan.counts
            tx.run("put_library_sync", **sync_params(cursor_after_page(cursor, counts)))
            return counts

        return self.transact(body)

    def finish_library_sync(self, cursor: LibrarySyncRow, *, now: float) -> int:
        def body(tx: Tx) -> int:
            removed = tx.run(
                "remove_unseen_library_items",
                account=cursor.account,
                sync_id=cursor.sync_id,
                now=now,
            )
            tx.run("put_library_sync", **sync_params(finished_sync(cursor, removed, now)))
            return removed

        return self.transact(body)

    def list_library(
        self,
        account: str,
        *,
        search: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[LibraryItemRow]:
        rows = self.select(
            "list_library",
            account=account,
            include_removed=include_removed,
            pattern=search_pattern(search),
            limit=limit,
            offset=offset,
        )
        return [item_from_row(r) for r in rows]

    def count_library(self, account: str, *, include_removed: bool = False) -> int:
        row = self.select_one(
            "count_library_all" if include_removed else "count_library", account=account
        )
        return 0 if row is None else int(row["n"])

    def get_library_item(self, account: str, item_id: str) -> LibraryItemRow | None:
        row = self.select_one("get_library_item", account=account, item_id=item_id)
        return None if row is None else item_from_row(row)

    def set_library_download(
        self, account: str, item_id: str, *, path: str, size: int, now: float
    ) -> bool:
        changed = self.transact(
            lambda tx: tx.run(
                "set_library_download",
                account=account,
                item_id=item_id,
                path=path,
                size=size,
                now=now,
            )
        )
        return changed > 0
