"""Library sync against the fake Audible: the engine, the CLI, tokens, faults, removals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import invoke_cli
from fake_audible import FakeAudible
from library_helpers import REFRESH, add_audible_account
from stayfresh.errors import TransientError
from stayfresh.jobs import LibrarySync, SyncBusy, SyncProgress
from stayfresh.jobs.internal import library_sync_worker
from stayfresh.store import Store
from stayfresh.testing import FakeClock, wait_for
from stayfresh.tokens import Keeper
from stayfresh.work import Runner, WorkerContext, WorkManager, WorkRequest, WorkState
from work_helpers import env_for


@pytest.fixture
def syncer() -> Iterator[Callable[..., LibrarySync]]:
    """Make LibrarySync objects that record their sleeps; all closed at the end."""
    made: list[LibrarySync] = []

    def make(keeper: Keeper, **options: Any) -> LibrarySync:
        sleeps: list[float] = []
        options.setdefault("sleep", sleeps.append)
        s = LibrarySync(keeper, **options)
        s.sleeps = sleeps  # type: ignore[attr-defined]
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_full_sync_through_the_engine(
    store: Store, audible: FakeAudible, account: str, default_keeper_on: Keeper
) -> None:
    manager = WorkManager(store)
    info = manager.enqueue(
        WorkRequest(worker="stayfresh.library-sync", input={"account": account}),
        name=f"library-sync:{account}",
    )
    assert Runner(store, listen=False).run_pending() == 1
    done = manager.get(info.id)
    assert done is not None and done.state == WorkState.SUCCEEDED, done
    out = dict(done.output or {})
    assert (out["pages"], out["items_seen"], out["added"], out["updated"], out["removed"]) == (
        10, 10_000, 10_000, 0, 0,
    )  # fmt: skip
    assert store.count_library(account) == 10_000
    assert audible.pages_served() == list(range(1, 11))
    row = store.get_library_sync(account)
    assert row is not None and row.state == "finished" and row.total_items == 10_000


def test_progress_is_reported_per_page(
    store: Store, account: str, keeper: Keeper, syncer: Callable[..., LibrarySync]
) -> None:
    seen: list[SyncProgress] = []
    stats = syncer(keeper, on_progress=seen.append).run(account)
    assert [p.page for p in seen] == list(range(1, 11))
    assert seen[3].message == "page 4 of 10, 4000 items so far"
    assert seen[-1].items == stats.items_seen == 10_000


def test_stayfresh_sync_cli_and_library_list(db_path: Path, audible: FakeAudible) -> None:
    done = invoke_cli(
        "account", "add", "me", "--provider", "amazon", "--token-url", audible.token_url,
        "--api-url", audible.url, "--refresh-token-env", "RT", db=db_path, env={"RT": REFRESH},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = invoke_cli("sync", "me", "--json", db=db_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert (stats["items_seen"], stats["added"], stats["pages"]) == (10_000, 10_000, 10)
    done = invoke_cli("sync", "me", db=db_path)
    assert "10000 items in 10 pages (0 added, 0 updated, 0 removed)" in done.stdout
    listed = invoke_cli("library", "list", "me", "--search", "book 999", "--json", db=db_path)
    rows = json.loads(listed.stdout)
    # "Book 999", "Book 9990" … "Book 9999": eleven titles contain it
    assert sorted(r["item_id"] for r in rows) == ["B000000999"] + [
        f"B00000{n}" for n in range(9990, 10_000)
    ]
    assert rows[0]["data"]["asin"] == rows[0]["item_id"]
    text = invoke_cli("library", "list", "me", "--search", "Book 9999", db=db_path).stdout
    assert "B000009999" in text and "1 item(s)" in text
    assert "no items" in invoke_cli("library", "list", "me", "--search", "nope", db=db_path).stdout
    assert invoke_cli("library", "list", "ghost", db=db_path).returncode == 1


def test_token_expiring_mid_sync_is_refreshed_just_in_time(
    store: Store, clock: FakeClock, syncer: Callable[..., LibrarySync]
) -> None:
    fake = FakeAudible(items=10_000, ttl=600, clock=clock).start()
    try:
        add_audible_account(store, fake)
        keeper = Keeper(store, clock=clock)
        # each page "takes" 200 s: the 10-minute token enters the 5-minute window every ~2 pages
        stats = syncer(keeper, clock=clock, on_progress=lambda p: clock.advance(200)).run("me")
        assert stats.items_seen == 10_000 and stats.forced_refreshes == 0
        assert [e for e in fake.log if e[0] == "library" and e[2] != 200] == []
        assert fake.count("token") >= 4  # refreshed before use, never after a failure
    finally:
        fake.stop()


def test_401_forces_one_refresh_and_retries_the_page(
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    s = syncer(keeper)
    s.run(account)
    tokens_before = audible.count("token")
    audible.fail_page(3, "401")
    stats = s.run(account)
    assert stats.forced_refreshes == 1 and stats.retries == 0 and s.sleeps == []  # type: ignore[attr-defined]
    assert audible.count("token") == tokens_before + 1
    assert stats.items_seen == 10_000 and stats.removed == 0


def test_a_failing_page_is_retried_with_backoff(
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    audible.fail_page(4, "500", "drop", "503")
    s = syncer(keeper)
    stats = s.run(account)
    assert s.sleeps == [1.0, 2.0, 4.0]  # type: ignore[attr-defined]
    assert stats.retries == 3 and stats.items_seen == 10_000
    assert audible.pages_served() == list(range(1, 11))


def test_a_page_failing_too_often_leaves_the_cursor_and_resumes(
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    audible.fail_page(6, *["500"] * 5)
    with pytest.raises(TransientError):
        syncer(keeper).run(account)
    cursor = store.get_library_sync(account)
    assert cursor is not None and cursor.state == "running" and cursor.next_page == 6
    assert store.count_library(account) == 5000
    stats = syncer(keeper).run(account)
    assert stats.resumed_from_page == 6 and stats.pages_fetched == 5
    assert (stats.pages, stats.items_seen, stats.added) == (10, 10_000, 10_000)


def test_the_worker_retries_transient_trouble_and_skips_when_busy(
    store: Store, audible: FakeAudible, account: str, default_keeper_on: Keeper
) -> None:
    ctx = WorkerContext(
        work_id="w", name="library-sync:me", input={"account": account}, run_attempt=1,
        tags=(), scheduled_at=0.0,
    )  # fmt: skip
    ctx.wait_cancelled = lambda timeout=None: False  # type: ignore[method-assign]
    audible.fail_page(1, *["500"] * 5)
    assert library_sync_worker(ctx).kind == "retry"
    lock = store.lock("library-sync", "me")
    assert lock.acquire(timeout=0)
    try:
        with pytest.raises(SyncBusy):
            LibrarySync(default_keeper_on).run(account)
        result = library_sync_worker(ctx)
        assert result.kind == "success" and "already running" in str(result.output)
    finally:
        lock.release()
    assert library_sync_worker(ctx).kind == "success"
    assert store.count_library(account) == 10_000


def test_reauth_fails_the_work_with_what_to_do(
    store: Store, audible: FakeAudible, account: str, default_keeper_on: Keeper
) -> None:
    audible.refresh_tokens.clear()
    ctx = WorkerContext(
        work_id="w", name=None, input={"account": account}, run_attempt=1, tags=(),
        scheduled_at=0.0,
    )  # fmt: skip
    result = library_sync_worker(ctx)
    assert result.kind == "failure"
    assert result.output is not None and result.output["action"] == "stayfresh login me"
    row = store.get_account(account)
    assert row is not None and row.status == "needs_login"


def test_items_gone_from_the_source_are_marked_removed_not_deleted(
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    syncer(keeper).run(account)
    audible.remove(3, 4_500, 9_999)
    audible.change(7)
    stats = syncer(keeper).run(account)
    assert (stats.items_seen, stats.added, stats.updated, stats.removed) == (9_997, 0, 1, 3)
    assert store.count_library(account) == 9_997
    assert store.count_library(account, include_removed=True) == 10_000
    gone = store.get_library_item(account, "B000000003")
    assert gone is not None and gone.removed_at is not None
    changed = store.get_library_item(account, "B000000007")
    assert changed is not None and changed.title == "Book 7 (edition 1)"
    listed = store.list_library(account, search="B00000000", include_removed=True)
    assert [r.item_id for r in listed if r.removed_at] == ["B000000003"]
    # back in the library: no longer removed, counted as updated, not removed again
    audible.removed.discard(3)
    stats = syncer(keeper).run(account)
    assert (stats.updated, stats.removed) == (1, 0)
    back = store.get_library_item(account, "B000000003")
    assert back is not None and back.removed_at is None


def test_a_resumed_sync_restarts_when_the_library_size_changed(
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    audible.fail_page(5, *["500"] * 5)
    with pytest.raises(TransientError):
        syncer(keeper).run(account)
    audible.remove(1)  # everything after item 1 shifts by one position
    stats = syncer(keeper).run(account)
    assert stats.resumed_from_page is None and stats.pages == 10
    assert stats.items_seen == 9_999 and stats.removed == 1
    assert store.count_library(account) == 9_999


def test_a_killed_sync_resumes_from_its_last_committed_page(
    db_path: Path,
    store: Store,
    audible: FakeAudible,
    account: str,
    keeper: Keeper,
    syncer: Callable[..., LibrarySync],
) -> None:
    audible.hold_page = 5
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "sync", account],
        env=env_for(db_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(audible.held.is_set, what="the sync to ask for page 5")
        # page 5 is fetched ahead while page 4 commits: wait for that commit
        wait_for(
            lambda: getattr(store.get_library_sync(account), "next_page", 0) == 5,
            what="page 4 to be committed",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    audible.hold_page = None
    audible.release.set()
    cursor = store.get_library_sync(account)
    assert cursor is not None and cursor.state == "running" and cursor.next_page == 5
    assert store.count_library(account) == 4_000
    served_before = len(audible.pages_served())
    stats = syncer(keeper).run(account)
    assert stats.resumed_from_page == 5 and stats.pages_fetched == 6
    assert audible.pages_served()[served_before:] == list(range(5, 11))
    assert (stats.pages, stats.items_seen, stats.added, stats.removed) == (10, 10_000, 10_000, 0)
    assert store.count_library(account) == 10_000
