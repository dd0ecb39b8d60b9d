"""Library sync (the seed's LibrarySyncWorker): page by page into the store.

Each page is fetched with a token the keeper has just checked (5-minute
threshold, the seed's background value) and committed together with the
account's cursor in one transaction, so a killed sync resumes from the first
page it had not committed. A page that fails with a network error, a 5xx or
a 429 is retried here with exponential backoff; a 401 forces one token
refresh and retries the page. Items a finished sync did not see are marked
removed. Only one sync per account runs at a time (a second one skips).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from .._retry import parse_retry_after
from ..errors import (
    AccountNotFound,
    ConfigError,
    ProviderError,
    ReauthRequired,
    StayfreshError,
    TransientError,
)
from ..store import LibrarySyncRow, NewLibraryItem
from ..tokens import BACKGROUND_THRESHOLD, Account, Keeper, default_keeper
from ..work import Result, WorkerContext
from ._api import ApiJob
from ._sources import LibraryError, LibrarySource, Page, Position, source_for
from ._token_refresh import work_keeper

log = logging.getLogger(__name__)

#: page retries inside one run before the run gives up (the engine retries the run)
PAGE_ATTEMPTS = 5
PAGE_BACKOFF = 1.0
PAGE_BACKOFF_CAP = 60.0


class SyncBusy(StayfreshError):
    """Another process is syncing this account right now."""


class SyncInterrupted(StayfreshError):
    """The sync was asked to stop; its committed pages are kept for the next run."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SyncProgress:
    """Reported after every committed page."""

    page: int
    total_pages: int | None
    items: int
    total_items: int | None

    @property
    def message(self) -> str:
        of = f" of {self.total_pages}" if self.total_pages is not None else ""
        return f"page {self.page}{of}, {self.items} items so far"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "message": self.message}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SyncStats:
    """A finished sync. Counters cover the whole sync, resumed runs included;
    ``pages_fetched``, ``retries``, ``forced_refreshes`` and ``duration`` cover this run."""

    account: str
    pages: int
    items_seen: int
    added: int
    updated: int
    removed: int
    total_items: int | None
    duration: float
    pages_fetched: int
    resumed_from_page: int | None
    retries: int
    forced_refreshes: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def context_keeper(ctx: WorkerContext) -> Keeper:
    """The keeper for a worker: the one for the runner's store (``ctx.store``)."""
    return work_keeper(ctx)


#: one encoder for every item (``json.dumps`` with options builds one per call);
#: sorted keys, so that a source reordering fields does not look like an update
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def item_row(source: LibrarySource, item: Mapping[str, Any]) -> NewLibraryItem:
    """What the store keeps of one item: its JSON text and a digest of it."""
    item_id, title, authors = source.describe_item(item)
    data = _encode(item)
    digest = hashlib.blake2b(data.encode(), digest_size=12).hexdigest()
    return NewLibraryItem(item_id=item_id, title=title, authors=authors, data=data, digest=digest)


class LibrarySync(ApiJob[SyncProgress]):
    """Syncs accounts' libraries into ``keeper.store``.

    ``sleep`` waits between page retries and may return True to mean "stop"
    (a worker passes ``ctx.wait_cancelled``); tests pass a recorder.
    """

    def __init__(
        self,
        keeper: Keeper,
        *,
        client: httpx2.Client | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
        attempts: int = PAGE_ATTEMPTS,
        backoff: float = PAGE_BACKOFF,
        backoff_cap: float = PAGE_BACKOFF_CAP,
        threshold: dt.timedelta | float = BACKGROUND_THRESHOLD,
        on_progress: Callable[[SyncProgress], None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        source_factory: Callable[[Account], LibrarySource] = source_for,
    ) -> None:
        super().__init__(
            keeper, client=client, timeout=timeout, sleep=sleep, clock=clock,
            attempts=attempts, backoff=backoff, backoff_cap=backoff_cap, threshold=threshold,
            on_progress=on_progress, cancelled=cancelled,
        )  # fmt: skip
        self.source_factory = source_factory

    def run(self, account: str) -> SyncStats:
        """Sync ``account`` now; raise :class:`SyncBusy` if it is already being synced."""
        lock = self.store.lock("library-sync", account)
        if not lock.acquire(timeout=0):
            raise SyncBusy(f"a library sync of {account!r} is already running")
        try:
            return self._run(account)
        finally:
            lock.release()

    # -- the loop ------------------------------------------------------------------

    def _run(self, name: str) -> SyncStats:
        started = time.monotonic()
        self.keeper.ensure_valid_token(name, self.threshold)
        row = self.store.get_account(name)
        if row is None:
            raise AccountNotFound(f"no account named {name!r}")
        account = Account.from_row(row)
        source = self.source_factory(account)
        cursor, resumed = self._start(name, source)
        position = Position(page=cursor.next_page, cursor=cursor.cursor)
        fetched = retries = forced = 0
        ahead: concurrent.futures.Future[tuple[Page, int, int]] | None = None
        # one page is fetched ahead while the current one is committed: the
        # network and SQLite overlap, and memory still holds two pages at most
        with concurrent.futures.ThreadPoolExecutor(1, "stayfresh-sync") as pool:
            try:
                while True:
                    if self.cancelled():
                        raise SyncInterrupted(
                            f"sync of {name!r} stopped before page {position.page}"
                        )
                    if ahead is None:
                        page, tries, refreshed = self._fetch(account, source, position)
                    else:
                        page, tries, refreshed = ahead.result()
                        ahead = None
                    fetched, retries, forced = fetched + 1, retries + tries, forced + refreshed
                    if resumed is not None and fetched == 1 and _total_changed(cursor, page):
                        log.info("%s: library size changed since the sync began; restarting", name)
                        # a new sync id: only items seen from page 1 on count as present
                        position, resumed = source.first(), None
                        cursor = dataclasses.replace(
                            cursor, sync_id=uuid.uuid4().hex, next_page=position.page,
                            cursor=position.cursor, pages=0, items_seen=0, total_items=None,
                            total_pages=None,
                        )  # fmt: skip
                        continue
                    if page.next is not None:
                        ahead = pool.submit(self._fetch, account, source, page.next)
                    cursor = self._commit(source, cursor, position, page)
                    if self.on_progress is not None:
                        self.on_progress(
                            SyncProgress(
                                page=position.page, total_pages=page.total_pages,
                                items=cursor.items_seen, total_items=page.total_items,
                            )
                        )  # fmt: skip
                    if page.next is None:
                        break
                    position = page.next
            finally:
                if ahead is not None:
                    ahead.cancel()
        removed = self.store.finish_library_sync(cursor, now=self.clock())
        stats = SyncStats(
            account=name, pages=cursor.pages, items_seen=cursor.items_seen, added=cursor.added,
            updated=cursor.updated, removed=removed, total_items=cursor.total_items,
            duration=time.monotonic() - started, pages_fetched=fetched,
            resumed_from_page=resumed, retries=retries, forced_refreshes=forced,
        )  # fmt: skip
        log.info("%s: library synced: %s", name, stats)
        return stats

    def _start(self, name: str, source: LibrarySource) -> tuple[LibrarySyncRow, int | None]:
        """The cursor to continue from (and its page), or a fresh sync."""
        row = self.store.get_library_sync(name)
        if row is not None and row.state == "running" and row.source == source.identity:
            log.info("%s: resuming the library sync at page %d", name, row.next_page)
            return row, row.next_page
        now = self.clock()
        first = source.first()
        row = LibrarySyncRow(
            account=name, sync_id=uuid.uuid4().hex, source=source.identity, state="running",
            next_page=first.page, cursor=first.cursor, total_items=None, total_pages=None,
            pages=0, items_seen=0, added=0, updated=0, removed=0, started_at=now,
            updated_at=now, finished_at=None,
        )  # fmt: skip
        self.store.save_library_sync(row)
        return row, None

    def _commit(
        self, source: LibrarySource, cursor: LibrarySyncRow, position: Position, page: Page
    ) -> LibrarySyncRow:
        items = [item_row(source, item) for item in page.items]
        after = page.next or Position(page=position.page + 1)
        now = self.clock()
        # pages and items_seen include this page; the store adds its
        # added/updated counts in the same transaction
        pending = dataclasses.replace(
            cursor, next_page=after.page, cursor=after.cursor, total_items=page.total_items,
            total_pages=page.total_pages, pages=cursor.pages + 1,
            items_seen=cursor.items_seen + len(items), updated_at=now,
        )  # fmt: skip
        counts = self.store.store_library_page(
            pending.account, pending.sync_id, items, pending, now=now
        )
        return dataclasses.replace(
            pending, added=cursor.added + counts.added, updated=cursor.updated + counts.updated
        )

    def _fetch(
        self, account: Account, source: LibrarySource, position: Position
    ) -> tuple[Page, int, int]:
        """One page: (page, retries used, forced refreshes). Raises after the last attempt."""
        forced = False
        failures = 0
        while True:
            auth = self.auth_headers(account)
            request = source.page_request(position, auth)
            wait: float | None = None
            try:
                # merged by hand: httpx2 replaces a URL's own query with ``params``
                url = httpx2.URL(request.url).copy_merge_params(request.params)
                response = self.call(request.method, url, headers=request.headers, credentials=auth)
                body = response.content
            except TransientError as exc:  # network trouble or the deadline
                problem = str(exc)
            else:
                status = response.status_code
                if status == 401 and not forced:
                    log.info(
                        "%s: page %d answered 401; forcing a refresh", account.name, position.page
                    )
                    self.rejected(account)
                    forced = True
                    continue
                if status == 401:
                    raise LibraryError(
                        f"the library API refused a freshly refreshed token (401) on page {position.page}"
                    )
                if status == 429 or status >= 500:
                    problem = f"page {position.page} answered {status}"
                    wait = parse_retry_after(
                        response.headers.get("retry-after"),
                        dt.datetime.fromtimestamp(self.clock(), dt.UTC),
                    )
                elif status >= 400:
                    raise LibraryError(
                        f"the library API answered {status} on page {position.page}: {body[:200]!r}"
                    )
                else:
                    try:
                        page = source.parse_page(position, response.lower_headers(), body)
                        return page, failures, int(forced)
                    except ValueError as exc:
                        problem = f"page {position.page}: {exc}"
            failures += 1
            if failures >= self.attempts:
                raise TransientError(f"{problem} ({failures} attempts)", retry_after=wait)
            delay = self._delay(failures, wait)
            log.warning("%s: %s; retrying in %.1f s", account.name, problem, delay)
            if self._stopped_after(delay):
                raise SyncInterrupted(f"sync of {account.name!r} stopped while retrying")


def _total_changed(cursor: LibrarySyncRow, page: Page) -> bool:
    """Did the library's size change while a sync was interrupted? Pages would shift."""
    return (
        cursor.total_items is not None
        and page.total_items is not None
        and cursor.total_items != page.total_items
    )


def sync_library(account: str, *, keeper: Keeper | None = None, **options: Any) -> SyncStats:
    """Sync ``account``'s library now (the library API of ``stayfresh sync``)."""
    syncer = LibrarySync(keeper or default_keeper(), **options)
    try:
        return syncer.run(account)
    finally:
        syncer.close()


def library_sync_worker(ctx: WorkerContext) -> Result:
    """The engine's entry: input ``{"account": NAME}``; output the sync's stats."""
    account = str(ctx.input.get("account") or "")
    if not account:
        return Result.failure({"error": "input needs an account"})
    syncer = LibrarySync(
        context_keeper(ctx),
        sleep=ctx.wait_cancelled,
        on_progress=lambda p: ctx.set_progress(p.to_json()),
        cancelled=lambda: ctx.cancelled,
    )
    try:
        return Result.success(syncer.run(account).to_json())
    except SyncBusy as exc:
        return Result.success({"skipped": str(exc)})
    except (TransientError, SyncInterrupted) as exc:
        log.warning("%s: library sync will be retried: %s", account, exc)
        return Result.retry()
    except ReauthRequired as exc:
        return Result.failure({"error": str(exc), "action": f"stayfresh login {account}"})
    except (LibraryError, ProviderError, ConfigError, AccountNotFound) as exc:
        return Result.failure({"error": str(exc)})
    finally:
        syncer.close()
