"""The store contract, one suite run against every backend (SQLite and PostgreSQL).

Each test states one documented guarantee of :class:`stayfresh.store.Store`
(``store/_contracts.py``) and checks it through the public methods only. ``any_store`` is parametrised
over the backends; ``reopen`` opens a second, independent store on the same
database (its own connections), which is how "another process" looks to the
store. The PostgreSQL parameter uses the real server of ``pg_server``: it is
skipped locally without PostgreSQL and fails in CI (``CI`` set).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stayfresh.store import (
    AccountExists,
    LibrarySyncRow,
    NewLibraryItem,
    NewRule,
    NewWork,
    PendingRow,
    RunFinish,
    SQLiteStore,
    Store,
    TokenRow,
)
from store_backends import Opener
from test_store_schema import describe_postgres, describe_sqlite

T0 = 1_800_000_000.0


def tokens(access: str = "A", refresh: str = "R", expires_at: float | None = T0) -> TokenRow:
    return TokenRow(access_token=access, refresh_token=refresh, expires_at=expires_at)


def new_work(work_id: str, *, name: str | None = None, **kw: Any) -> NewWork:
    fields: dict[str, Any] = dict(
        id=work_id, name=name, worker="mod:func", input={}, periodic=False, interval=None,
        flex=None, constraints={}, backoff_policy="exponential", backoff_delay=30.0,
        timeout=60.0, tags=(), scheduled_at=T0,
    )  # fmt: skip
    fields.update(kw)
    return NewWork(**fields)


def finish(claim_work_id: str, run_id: int, *, state: str = "SUCCEEDED", **kw: Any) -> RunFinish:
    fields: dict[str, Any] = dict(
        work_id=claim_work_id, run_id=run_id, runner_id="r1", ended_at=T0 + 2,
        outcome="success", output=None, error=None, state=state, scheduled_at=T0,
        next_run_at=T0, run_attempt=1,
    )  # fmt: skip
    fields.update(kw)
    return RunFinish(**fields)


# -- lifecycle and migrations -------------------------------------------------------------


def test_every_abstract_method_is_implemented() -> None:
    assert not SQLiteStore.__abstractmethods__
    from stayfresh.store import PostgresStore  # psycopg is in the dev extra: no skip

    assert not PostgresStore.__abstractmethods__


def test_schema_version_is_the_last_migration(any_store: Store) -> None:
    from stayfresh.store._queries import load_migrations

    assert any_store.schema_version() == load_migrations("sqlite")[-1][0]
    assert [v for v, _, _ in load_migrations("sqlite")] == [
        v for v, _, _ in load_migrations("postgres")
    ]


def test_opening_again_migrates_nothing_and_keeps_data(any_store: Store, reopen: Opener) -> None:
    any_store.set_setting("k", "v")
    again = reopen()
    assert again.schema_version() == any_store.schema_version()
    assert again.get_setting("k") == "v"


def _raw(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Rows read past the store, on a connection of its own (either backend)."""
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(store.url) as pg:  # type: ignore[attr-defined]
        return pg.execute(sql).fetchall()


_COUNT_MIGRATIONS = "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations"


def test_concurrent_openers_migrate_once(backend: Opener) -> None:
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: backend(), range(6)))
    versions = {s.schema_version() for s in stores}
    assert len(versions) == 1
    ((n, d),) = _raw(stores[0], _COUNT_MIGRATIONS)
    assert n == d == versions.pop()


def _schema(store: Store) -> object:
    """A comparable description of every table, column, index and constraint."""
    if isinstance(store, SQLiteStore):
        return describe_sqlite(store.path)
    return describe_postgres(store.url)  # type: ignore[attr-defined]


def test_a_migrated_schema_equals_a_fresh_one(backend: Opener, tmp_path: Path) -> None:
    """Apply migration 1, write data, then the rest: same schema as all at once."""
    fresh = backend()
    if isinstance(fresh, SQLiteStore):
        from stayfresh.store._queries import load_migrations, split_statements

        old_path = tmp_path / "old.db"
        conn = sqlite3.connect(old_path)
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at REAL NOT NULL)"
        )
        version, name, sql = load_migrations("sqlite")[0]
        for statement in split_statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
        conn.execute("INSERT INTO settings VALUES ('kept', 'yes')")
        conn.commit()
        conn.close()
        migrated: Store = SQLiteStore(old_path)
    else:
        from stayfresh.store import PostgresStore

        assert isinstance(fresh, PostgresStore)
        pg_server = fresh.url.rsplit("/", 1)[0]
        import psycopg

        with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn2:
            conn2.execute("CREATE DATABASE migrated_schema")
        migrated = PostgresStore(pg_server + "/migrated_schema", migrate=False)
        migrated.migrate(up_to=1)
        assert migrated.schema_version() == 1
        migrated.set_setting("kept", "yes")
        migrated.migrate()
    try:
        assert migrated.schema_version() == fresh.schema_version()
        assert migrated.get_setting("kept") == "yes"
        assert _schema(migrated) == _schema(fresh)
    finally:
        migrated.close()


# -- accounts and tokens --------------------------------------------------------------------


def test_create_get_list_delete_account(any_store: Store) -> None:
    row = any_store.create_account("b", "oauth2", {"client_id": "c"}, tokens())
    assert (row.version, row.status, row.config) == (1, "ok", {"client_id": "c"})
    any_store.create_account("a", "oauth2", {}, tokens())
    with pytest.raises(AccountExists):
        any_store.create_account("a", "oauth2", {}, tokens())
    assert [a.name for a in any_store.list_accounts()] == ["a", "b"]
    got = any_store.get_account("b")
    assert got is not None and got.tokens.access_token == "A" and got.tokens.expires_at == T0
    assert any_store.delete_account("b") is True
    assert any_store.delete_account("b") is False
    assert any_store.get_account("b") is None


def test_swap_tokens_is_compare_and_swap(any_store: Store, reopen: Opener) -> None:
    any_store.create_account("a", "oauth2", {}, tokens())
    other = reopen()
    assert other.swap_tokens("a", 1, tokens("B", "R2")) == 2
    # the first writer's view is stale now: its write must not land
    assert any_store.swap_tokens("a", 1, tokens("C", "R3")) is None
    row = any_store.get_account("a")
    assert row is not None and row.version == 2
    assert (row.tokens.access_token, row.tokens.refresh_token) == ("B", "R2")


def test_swap_tokens_race_has_one_winner(any_store: Store, reopen: Opener) -> None:
    any_store.create_account("a", "oauth2", {}, tokens())
    stores = [reopen() for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def swap(i: int) -> int | None:
        barrier.wait()
        return stores[i].swap_tokens("a", 1, tokens(f"T{i}"))

    with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(swap, range(len(stores))))
    assert sorted(results, key=lambda r: r or 0) == [None, None, None, 2]


def test_status_config_and_mark_ok(any_store: Store) -> None:
    any_store.create_account("a", "oauth2", {"x": 1}, tokens())
    any_store.set_status("a", "needs_login", "invalid_grant")
    any_store.update_config("a", {"x": 2})
    row = any_store.get_account("a")
    assert row is not None
    assert (row.status, row.status_message, row.config, row.version) == (
        "needs_login", "invalid_grant", {"x": 2}, 1,
    )  # fmt: skip
    assert any_store.swap_tokens("a", 1, tokens("B"), mark_ok=False) == 2
    assert (row := any_store.get_account("a")) is not None and row.status == "needs_login"
    assert any_store.swap_tokens("a", 2, tokens("C")) == 3
    assert (row := any_store.get_account("a")) is not None
    assert (row.status, row.status_message) == ("ok", None)


def test_clear_secrets(any_store: Store) -> None:
    any_store.create_account("a", "oauth2", {"client_secret": "s", "client_id": "c"}, tokens())
    assert any_store.clear_secrets("a", config_keys={"client_secret"}, message="logged out")
    row = any_store.get_account("a")
    assert row is not None
    assert (row.tokens.access_token, row.tokens.refresh_token) == (None, None)
    assert row.config == {"client_id": "c"} and row.version == 2
    assert (row.status, row.status_message) == ("needs_login", "logged out")
    # an in-flight refresh that read version 1 cannot write old tokens back
    assert any_store.swap_tokens("a", 1, tokens()) is None
    assert any_store.clear_secrets("missing", config_keys=()) is False


def test_refresh_intent_is_durable_names_the_token_by_fingerprint_and_ends_with_the_result(
    any_store: Store, reopen: Opener
) -> None:
    import hashlib
    import os
    import socket

    any_store.create_account("a", "oauth2", {}, tokens(refresh="R-secret"))
    intent = any_store.begin_refresh("a", 1, now=T0, lease=60)
    other = reopen()  # committed: another process sees it
    assert other.refresh_intent("a") == intent
    assert intent is not None
    assert intent.owner == f"{socket.gethostname()}:{os.getpid()}"
    assert intent.fingerprint == hashlib.sha256(b"R-secret").hexdigest()[:16]
    assert (intent.version, intent.started_at, intent.expires_at) == (1, T0, T0 + 60)
    assert "R-secret" not in repr(_raw(other, "SELECT * FROM refresh_intents"))
    any_store.begin_refresh("a", 1, now=T0 + 5)  # a new attempt replaces the old intent
    assert other.refresh_intent("a").started_at == T0 + 5  # type: ignore[union-attr]
    assert any_store.swap_tokens("a", 7, tokens("A2", "R2")) is None  # even a lost swap ends it
    assert other.refresh_intent("a") is None
    any_store.begin_refresh("a", 1)
    any_store.record_fresh("token", "a", "use", "success", at=T0, latency_ms=1.0)
    assert other.refresh_intent("a") is not None  # telemetry is not the end of a refresh
    any_store.end_refresh("a")  # a failed refresh ends it, tokens unchanged
    assert other.refresh_intent("a") is None and other.get_account("a").status == "ok"  # type: ignore[union-attr]
    any_store.begin_refresh("a", 1)
    any_store.end_refresh("a", needs_login="rejected", rejected="R-other")  # not the stored one
    assert other.get_account("a").status == "ok"  # type: ignore[union-attr]
    any_store.begin_refresh("a", 1)
    any_store.end_refresh("a", needs_login="refresh token rejected", rejected="R-secret")
    row = other.get_account("a")
    assert row is not None and (row.status, row.status_message) == (
        "needs_login", "refresh token rejected",
    )  # fmt: skip
    assert other.refresh_intent("a") is None
    any_store.begin_refresh("a", 1)
    assert any_store.swap_tokens("a", 1, tokens("A3", "R3")) == 2
    assert other.refresh_intent("a") is None
    assert any_store.begin_refresh("missing", 1) is None
    any_store.begin_refresh("a", 2)
    assert any_store.delete_account("a")
    assert other.refresh_intent("a") is None


def test_settings(any_store: Store) -> None:
    assert any_store.get_setting("k") is None
    any_store.set_setting("k", "1")
    any_store.set_setting("k", "2")
    assert any_store.get_setting("k") == "2"
    any_store.set_setting("k", None)
    assert any_store.get_setting("k") is None


def test_refresh_lock_is_exclusive_across_stores(any_store: Store, reopen: Opener) -> None:
    other = reopen()
    lock = any_store.lock("token", "a")
    assert lock.acquire(0)
    assert not other.lock("token", "a").acquire(0)
    started = time.monotonic()
    assert not other.lock("token", "a").acquire(0.3)
    assert time.monotonic() - started >= 0.25
    assert other.lock("token", "b").acquire(0)  # another name is another lock
    other.lock("token", "b").release()
    # released from another thread than the one that took it
    threading.Thread(target=lock.release).start()
    assert other.lock("token", "a").acquire(5)
    other.lock("token", "a").release()


def test_refresh_lock_is_exclusive_between_threads(any_store: Store) -> None:
    held = threading.Event()
    lock = any_store.lock("token", "a")
    lock.acquire()
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(any_store.lock("token", "a").acquire(0)))
    t.start()
    t.join()
    assert results == [False]
    waiter = threading.Thread(
        target=lambda: (results.append(any_store.lock("token", "a").acquire(10)), held.set())
    )
    waiter.start()
    time.sleep(0.1)
    assert not held.is_set()
    lock.release()
    assert held.wait(10) and results == [False, True]
    waiter.join()
    any_store.lock("token", "a").release()


def test_notify_scheduling_lock_is_exclusive(any_store: Store, reopen: Opener) -> None:
    lock = any_store.lock("notify", "window")
    assert lock.acquire(0)
    assert not reopen().lock("notify", "window").acquire(0)
    lock.release()


# -- work -------------------------------------------------------------------------------------


def test_enqueue_get_and_find(any_store: Store) -> None:
    any_store.enqueue_work([new_work("w1", name="n", tags=("x", "y"))], policy=None, now=T0)
    any_store.enqueue_work([new_work("w2", tags=("y",))], policy=None, now=T0 + 1)
    w = any_store.get_work("w1")
    assert w is not None and (w.state, w.tags, w.next_run_at) == ("ENQUEUED", ("x", "y"), T0)
    assert any_store.get_work("nope") is None
    assert [w.id for w in any_store.find_work(tag="y")] == ["w2", "w1"]  # newest first
    assert [w.id for w in any_store.find_work(name="n")] == ["w1"]
    assert [w.id for w in any_store.find_work(id_prefix="w")] == ["w2", "w1"]
    assert [w.id for w in any_store.find_work(states=["ENQUEUED"], limit=1)] == ["w2"]
    assert any_store.find_work(states=["RUNNING"]) == []


def test_unique_policies(any_store: Store) -> None:
    first = any_store.enqueue_work([new_work("a", name="u")], policy="keep", now=T0)
    assert (first.action, first.ids) == ("enqueued", ("a",))
    kept = any_store.enqueue_work([new_work("b", name="u")], policy="keep", now=T0)
    assert (kept.action, kept.ids) == ("kept", ("a",)) and any_store.get_work("b") is None
    appended = any_store.enqueue_work([new_work("c", name="u")], policy="append", now=T0)
    c = any_store.get_work("c")
    assert appended.action == "appended" and c is not None
    assert (c.state, c.prerequisites) == ("BLOCKED", ("a",))
    updated = any_store.enqueue_work(
        [new_work("d", name="u", worker="m:g", timeout=5.0)], policy="update", now=T0
    )
    assert updated.action == "updated" and updated.ids == ("c",)  # the newest one
    c = any_store.get_work("c")
    assert c is not None and (c.worker, c.timeout, c.state) == ("m:g", 5.0, "BLOCKED")
    replaced = any_store.enqueue_work([new_work("e", name="u")], policy="replace", now=T0)
    assert replaced.action == "replaced"
    states = {w.id: w.state for w in any_store.find_work(name="u")}
    assert states == {"a": "CANCELLED", "c": "CANCELLED", "e": "ENQUEUED"}


def test_keep_is_atomic_between_stores(any_store: Store, reopen: Opener) -> None:
    stores = [reopen() for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def enqueue(i: int) -> str:
        barrier.wait()
        return (
            stores[i].enqueue_work([new_work(f"k{i}", name="once")], policy="keep", now=T0).action
        )

    with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
        actions = list(pool.map(enqueue, range(len(stores))))
    assert sorted(actions) == ["enqueued"] + ["kept"] * 5
    assert len(any_store.find_work(name="once")) == 1


def test_chain_unblocks_with_merged_output_and_failure_cascades(any_store: Store) -> None:
    any_store.enqueue_work(
        [new_work("a"), new_work("b", after=("a",), input={"x": 1}), new_work("c", after=("b",))],
        policy=None,
        now=T0,
    )
    assert [any_store.get_work(i).state for i in "abc"] == ["ENQUEUED", "BLOCKED", "BLOCKED"]  # type: ignore[union-attr]
    (claim,) = any_store.claim_work(["a"], runner_id="r1", now=T0, lease_seconds=30)
    changed = any_store.finish_runs([finish("a", claim.run_id, output={"y": 2})], keep_runs=10)
    assert changed == ["a", "b"]
    b = any_store.get_work("b")
    assert b is not None and b.state == "ENQUEUED" and b.input == {"x": 1, "y": 2}
    (claim_b,) = any_store.claim_work(["b"], runner_id="r1", now=T0 + 3, lease_seconds=30)
    any_store.finish_runs([finish("b", claim_b.run_id, state="FAILED")], keep_runs=10)
    assert any_store.get_work("c").state == "FAILED"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        any_store.enqueue_work([new_work("z", after=("missing",))], policy=None, now=T0)


def test_due_work_and_constraints(any_store: Store) -> None:
    wifi = {"unmetered": True}
    any_store.enqueue_work([new_work("now")], policy=None, now=T0)
    any_store.enqueue_work([new_work("later", scheduled_at=T0 + 100)], policy=None, now=T0)
    any_store.enqueue_work([new_work("wifi", constraints=wifi)], policy=None, now=T0)
    assert {w.id for w in any_store.due_work(T0, limit=10)} == {"now", "wifi"}
    key = '{"unmetered":true}'
    assert [w.id for w in any_store.due_work(T0, limit=10, skip_constraints=[key])] == ["now"]
    assert any_store.run_work_now(["wifi", "missing"], now=T0 + 1) == ["wifi"]
    due = any_store.due_work(T0 + 1, limit=10, skip_constraints=[key])
    assert {w.id for w in due} == {"now", "wifi"} and any_store.get_work("wifi").run_now  # type: ignore[union-attr]
    assert any_store.next_wake_time(T0 + 1, runner_id="r1") == T0 + 100
    assert [w.id for w in any_store.due_work(T0 + 200, limit=1)] == ["now"]  # earliest first


def test_claims_are_exclusive_between_stores(any_store: Store, reopen: Opener) -> None:
    ids = [f"w{i:03d}" for i in range(60)]
    any_store.enqueue_work([new_work(i) for i in ids], policy=None, now=T0)
    stores = [reopen() for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def claim_all(i: int) -> list[str]:
        barrier.wait()
        got: list[str] = []
        for _ in range(30):
            got += [
                c.work.id
                for c in stores[i].claim_work(
                    ids[(i * 7) % 60 :] + ids, runner_id=f"r{i}", now=T0, lease_seconds=30
                )
            ]
        return got

    with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
        claimed = [w for ws in pool.map(claim_all, range(len(stores))) for w in ws]
    assert sorted(claimed) == ids
    runs = any_store.work_runs(ids, limit=1000)
    assert len(runs) == 60 and all(r.attempt == 1 for r in runs)


def test_leases_renewal_takeover_and_finish(any_store: Store) -> None:
    any_store.enqueue_work([new_work("w")], policy=None, now=T0)
    (c1,) = any_store.claim_work(["w"], runner_id="r1", now=T0, lease_seconds=10)
    assert c1.work.state == "RUNNING" and c1.work.run_attempt == 1 and c1.work.lease_owner == "r1"
    assert any_store.claim_work(["w"], runner_id="r2", now=T0 + 5, lease_seconds=10) == []
    assert any_store.renew_leases(["w"], runner_id="r1", now=T0 + 5, lease_seconds=10) == {"w"}
    assert any_store.renew_leases(["w"], runner_id="r2", now=T0 + 5, lease_seconds=10) == set()
    assert any_store.next_wake_time(T0 + 5, runner_id="r2") == T0 + 15
    assert any_store.due_work(T0 + 14, limit=5) == []
    (c2,) = any_store.claim_work(["w"], runner_id="r2", now=T0 + 15, lease_seconds=10)
    assert c2.work.run_attempt == 2 and c2.run_id != c1.run_id
    # the dead runner's late finish changes nothing but closes nothing twice
    assert any_store.finish_runs([finish("w", c1.run_id)], keep_runs=10) == []
    assert any_store.set_progress("w", c1.run_id, {"p": 1}) is False
    assert any_store.set_progress("w", c2.run_id, {"p": 2}) is True
    assert any_store.get_work("w").progress == {"p": 2}  # type: ignore[union-attr]
    assert any_store.finish_runs([finish("w", c2.run_id, runner_id="r2")], keep_runs=10) == ["w"]
    runs = {r.id: r for r in any_store.work_runs(["w"])}
    assert runs[c1.run_id].outcome == "lost" and runs[c2.run_id].outcome == "success"
    assert [r.id for r in any_store.work_runs(["w"])] == sorted(runs, reverse=True)
    assert any_store.run_counts() == {"w": {"lost": 1, "success": 1}}  # however a run ended


def test_history_is_bounded_per_work(any_store: Store) -> None:
    any_store.enqueue_work(
        [new_work("p", periodic=True, interval=60.0, flex=60.0)], policy=None, now=T0
    )
    for i in range(6):
        t = T0 + 60 * i
        (c,) = any_store.claim_work(["p"], runner_id="r1", now=t, lease_seconds=10)
        any_store.finish_runs(
            [finish("p", c.run_id, state="ENQUEUED", ended_at=t + 1, scheduled_at=t + 60,
                    next_run_at=t + 60, run_attempt=0)],
            keep_runs=3,
        )  # fmt: skip
    runs = any_store.work_runs(["p"], limit=100)
    assert len(runs) == 3 and runs[0].scheduled_at == T0 + 300
    assert any_store.work_runs(["p"], limit=2)[1].id == runs[1].id
    assert any_store.run_counts() == {"p": {"success": 6}}  # counted, not trimmed


def test_cancel_by_name_tag_all(any_store: Store) -> None:
    any_store.enqueue_work(
        [new_work("a", name="n"), new_work("b", name="n", after=("a",))], policy=None, now=T0
    )
    any_store.enqueue_work([new_work("t", tags=("x",))], policy=None, now=T0)
    any_store.enqueue_work([new_work("o")], policy=None, now=T0)
    (c,) = any_store.claim_work(["a"], runner_id="r1", now=T0, lease_seconds=30)
    assert sorted(any_store.cancel_work(name="n", now=T0 + 1)) == ["a", "b"]
    assert any_store.renew_leases(["a"], runner_id="r1", now=T0 + 1, lease_seconds=30) == set()
    assert any_store.work_runs(["a"])[0].outcome == "cancelled"
    assert any_store.cancel_work(tag="x", now=T0 + 1) == ["t"]
    assert any_store.cancel_work(now=T0 + 1) == []  # nothing chosen: nothing cancelled
    assert any_store.cancel_work(everything=True, now=T0 + 1) == ["o"]
    assert any_store.cancel_work(ids=["a"], now=T0 + 2) == []  # already cancelled
    assert any_store.finish_runs([finish("a", c.run_id)], keep_runs=10) == []


def test_prune_work(any_store: Store) -> None:
    any_store.enqueue_work([new_work("old"), new_work("dep", after=("old",))], policy=None, now=T0)
    any_store.enqueue_work([new_work("done")], policy=None, now=T0)
    for wid in ("old", "done"):
        (c,) = any_store.claim_work([wid], runner_id="r1", now=T0, lease_seconds=30)
        any_store.finish_runs([finish(wid, c.run_id, ended_at=T0 + 1)], keep_runs=10)
    any_store.cancel_work(ids=["dep"], now=T0 + 1)
    assert any_store.prune_work(finished_before=T0) == 0
    assert any_store.prune_work(finished_before=T0 + 10) == 3
    assert any_store.find_work() == []


# -- library and notifications ------------------------------------------------------------------


def _cursor(sync_id: str, **kw: Any) -> LibrarySyncRow:
    fields: dict[str, Any] = dict(
        account="acc", sync_id=sync_id, source="src", state="running", next_page=2,
        cursor=None, total_items=None, total_pages=None, pages=1, items_seen=2, added=0,
        updated=0, removed=0, started_at=T0, updated_at=T0, finished_at=None,
    )  # fmt: skip
    fields.update(kw)
    return LibrarySyncRow(**fields)


def _item(item_id: str, title: str | None, digest: str = "d") -> NewLibraryItem:
    return NewLibraryItem(item_id=item_id, title=title, authors="Ann", data="{}", digest=digest)


def test_library_page_counts_and_removal(any_store: Store) -> None:
    items = [_item("1", "beta"), _item("2", "Alpha"), _item("3", None)]
    counts = any_store.store_library_page("acc", "s1", items, _cursor("s1"), now=T0)
    assert (counts.added, counts.updated, counts.unchanged) == (3, 0, 0)
    sync = any_store.get_library_sync("acc")
    assert sync is not None and sync.added == 3 and sync.next_page == 2
    assert [i.item_id for i in any_store.list_library("acc")] == ["3", "2", "1"]
    assert [i.item_id for i in any_store.list_library("acc", search="ALP")] == ["2"]
    assert [i.item_id for i in any_store.list_library("acc", search="%")] == []
    again = any_store.store_library_page(
        "acc", "s2", [_item("1", "beta", "new"), _item("2", "Alpha")], _cursor("s2"), now=T0 + 1
    )
    assert (again.added, again.updated, again.unchanged) == (0, 1, 1)
    assert any_store.finish_library_sync(_cursor("s2"), now=T0 + 2) == 1
    assert any_store.count_library("acc") == 2
    assert any_store.count_library("acc", include_removed=True) == 3
    sync = any_store.get_library_sync("acc")
    assert sync is not None and (sync.state, sync.removed) == ("finished", 1)
    assert any_store.set_library_download("acc", "1", path="/x", size=5, now=T0)
    assert not any_store.set_library_download("acc", "9", path="/x", size=5, now=T0)
    item = any_store.get_library_item("acc", "1")
    assert item is not None and (item.download_path, item.download_size) == ("/x", 5)


def test_notifications_window_and_single_claim(any_store: Store, reopen: Opener) -> None:
    rule = any_store.add_notify_rule(
        NewRule(title="t", body="b", at=T0 + 10, rrule=None, dtstart=None, tz="UTC"), now=T0
    )
    fresh = any_store.notify_freshness()
    assert fresh.has_rules and fresh.rules_version == 1 and fresh.window_rules_version == 0
    result = any_store.reschedule_notifications(
        lambda rules: [PendingRow(rule_id=r.id, due_at=T0 + 10, title=r.title, body=r.body)
                       for r in rules],
        now=T0,
    )  # fmt: skip
    assert (result.rules, result.scheduled, result.rules_version) == (1, 1, 1)
    assert [p.rule_id for p in any_store.list_pending_notifications()] == [rule.id]
    sink = any_store.add_notify_sink("log", None, at_least_once=False, now=T0)
    other = reopen()
    first = any_store.claim_notifications(now=T0 + 11, grace=60, lease=30, sinks={sink.id: False})
    second = other.claim_notifications(now=T0 + 11, grace=60, lease=30, sinks={sink.id: False})
    assert len(first.claims) == 1 and second.claims == []
    assert any_store.finish_notification(first.claims[0], ok=True, at=T0 + 12)
    assert not other.finish_notification(first.claims[0], ok=True, at=T0 + 12)
    assert any_store.list_notification_deliveries()[0].state == "sent"
    assert any_store.next_notification_time() is None
    assert any_store.delete_notify_rule(rule.id) and not any_store.delete_notify_rule(rule.id)
    assert any_store.delete_notify_sink(sink.id) and any_store.list_notify_sinks() == []


def test_begin_refresh_never_lets_two_processes_spend_one_token(any_store: Store) -> None:
    """Decided on the locked account row: a version that moved gives None; another live
    process's intent on the same refresh token is returned instead of replaced."""
    import subprocess
    import sys

    from stayfresh.store import PostgresStore, SQLiteStore

    any_store.create_account("a", "oauth2", {}, tokens(refresh="R1"))
    assert any_store.begin_refresh("a", 2) is None  # not the stored version: spend nothing
    location = str(any_store.path) if isinstance(any_store, SQLiteStore) else None
    if isinstance(any_store, PostgresStore):
        location = any_store.url
    code = (
        "import sys\nfrom stayfresh.store import open_store\n"
        "store = open_store(sys.argv[1])\nprint(store.begin_refresh('a', 1).owner, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(location)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    ) as other:  # fmt: skip
        assert other.stdout is not None and other.stdin is not None
        owner = other.stdout.readline().strip()
        found = any_store.begin_refresh("a", 1)
        assert found is not None and found.owner == owner  # theirs, not replaced
        assert any_store.refresh_intent("a").owner == owner  # type: ignore[union-attr]
        other.stdin.close()
        other.wait(30)
    mine = any_store.begin_refresh("a", 1)  # its owner is gone: ours now
    assert mine is not None and mine.owner != owner and not mine.held_elsewhere(time.time())
