"""The library's part of the store contract: :class:`LibraryStore`.

Library sync writes one page at a time. Each page is one transaction that
upserts the page's items *and* advances the account's sync cursor, so after a
crash the cursor names exactly the first page not yet committed and the next
run resumes there. Items that a finished sync did not see are marked removed
(``removed_at``), never deleted: a library row is the user's record of owning
something. The store does not decide when a sync restarts or finishes — the
``jobs`` part does; the store keeps plain rows. Times are POSIX seconds.

A PostgreSQL backend implements the same methods with ``INSERT … ON CONFLICT``
and one transaction per call, exactly as SQLite does.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Literal

SyncState = Literal["running", "finished"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewLibraryItem:
    """One item of a fetched page, ready to store.

    ``data`` is the item's JSON text as the source sent it and ``digest`` a
    hash of it; an item is "updated" when its digest changes.
    """

    item_id: str
    title: str | None
    authors: str | None
    data: str
    digest: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LibraryItemRow:
    """One stored library item."""

    account: str
    item_id: str
    title: str | None
    authors: str | None
    data: str
    first_seen_at: float
    updated_at: float
    removed_at: float | None
    download_path: str | None
    download_size: int | None
    downloaded_at: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LibrarySyncRow:
    """An account's sync cursor (``running``) or its last sync's figures (``finished``).

    Counters are cumulative over the sync, resumed runs included.
    """

    account: str
    sync_id: str
    source: str
    state: SyncState
    next_page: int
    cursor: str | None
    total_items: int | None
    total_pages: int | None
    pages: int
    items_seen: int
    added: int
    updated: int
    removed: int
    started_at: float
    updated_at: float
    finished_at: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PageCounts:
    """What storing one page changed."""

    added: int
    updated: int
    unchanged: int


class LibraryStore(abc.ABC):
    """Library items and sync cursors."""

    @abc.abstractmethod
    def get_library_sync(self, account: str) -> LibrarySyncRow | None:
        """The account's sync row (running cursor or last finished sync), or None."""

    @abc.abstractmethod
    def save_library_sync(self, row: LibrarySyncRow) -> None:
        """Insert or replace the account's sync row (starting or restarting a sync)."""

    @abc.abstractmethod
    def store_library_page(
        self,
        account: str,
        sync_id: str,
        items: Sequence[NewLibraryItem],
        cursor: LibrarySyncRow,
        *,
        now: float,
    ) -> PageCounts:
        """Upsert ``items`` as seen by ``sync_id`` and write ``cursor``, in ONE transaction.

        New items are inserted; known items get their data, ``seen_sync`` and,
        when the digest changed or they had been removed, a new ``updated_at``
        and ``removed_at = NULL``. ``cursor`` (the position after this page)
        replaces the sync row, with this page's added and updated counts
        added to its ``added`` and ``updated`` (only the transaction knows
        them). Either all of it is durable when this returns, or none of it.
        """

    @abc.abstractmethod
    def finish_library_sync(self, cursor: LibrarySyncRow, *, now: float) -> int:
        """Mark items not seen by ``cursor.sync_id`` removed and store the finished row.

        One transaction. Returns how many items became removed now (already
        removed ones are not counted again); the stored row's ``removed`` is
        that number and its state ``finished``.
        """

    @abc.abstractmethod
    def list_library(
        self,
        account: str,
        *,
        search: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[LibraryItemRow]:
        """Items ordered by title then id; ``search`` matches title, authors or id.

        The match is a case-insensitive substring match (no wildcards).
        """

    @abc.abstractmethod
    def count_library(self, account: str, *, include_removed: bool = False) -> int:
        """How many items the account's library holds."""

    @abc.abstractmethod
    def get_library_item(self, account: str, item_id: str) -> LibraryItemRow | None:
        """One item (removed or not), or None."""

    @abc.abstractmethod
    def set_library_download(
        self, account: str, item_id: str, *, path: str, size: int, now: float
    ) -> bool:
        """Record where an item was downloaded; False when the item is not in the library."""
