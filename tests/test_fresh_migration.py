"""Migration 0007 carries the old per-feature telemetry into the one telemetry table.

A database at migration 6 holds the old figures (per-account counters and
recent latencies, ``notify_telemetry``); opening it with this version must
keep every figure, under the common shape's names (``jit`` and ``foreground``
become layer ``use``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pg_server import PGServer
from stayfresh.store import Store, TelemetryRow, open_store
from stayfresh.store._queries import load_migrations, split_statements

T0 = 1_700_000_000.0

OLD_DATA = [
    "INSERT INTO accounts (name, provider, config, access_token, refresh_token, version,"
    " jit_refreshes, background_refreshes, failures, last_refresh_at, last_failure_at,"
    f" last_error, created_at, updated_at) VALUES ('alice', 'oauth2', '{{}}', 'A', 'R', 4, 3, 2,"
    f" 1, {T0 + 30}, {T0 + 20}, 'boom', {T0}, {T0})",
    "INSERT INTO accounts (name, provider, config, access_token, refresh_token, version,"
    f" created_at, updated_at) VALUES ('idle', 'oauth2', '{{}}', 'A', 'R', 1, {T0}, {T0})",
    f"INSERT INTO refresh_latencies (account, at, latency_ms) VALUES ('alice', {T0}, 8)",
    f"INSERT INTO refresh_latencies (account, at, latency_ms) VALUES ('alice', {T0}, 40)",
    f"INSERT INTO refresh_latencies (account, at, latency_ms) VALUES ('alice', {T0}, 700)",
    "INSERT INTO notify_telemetry (layer, executions, successes, failures, skips,"
    f" last_success_at, last_failure_at, last_skip_at, last_error) VALUES ('foreground', 5, 3,"
    f" 1, 1, {T0 + 1}, {T0 + 2}, {T0 + 3}, 'disk full')",
    "INSERT INTO notify_telemetry (layer, executions, successes) VALUES ('background', 2, 2)",
]


def check_carried_over(store: Store) -> None:
    rows = {(r.kind, r.key, r.layer): r for r in store.fresh_telemetry()}
    assert set(rows) == {
        ("token", "alice", "use"), ("token", "alice", "background"),
        ("notify", "window", "use"), ("notify", "window", "background"),
    }  # fmt: skip
    use = rows[("token", "alice", "use")]
    assert (use.executions, use.successes, use.failures) == (4, 3, 1)
    assert (use.last_success_at, use.last_failure_at, use.last_error) == (T0 + 30, T0 + 20, "boom")
    assert (use.latency_count, use.latency_sum_ms) == (3, 748.0)
    assert use.buckets == (1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
    background = rows[("token", "alice", "background")]
    assert (background.executions, background.successes, background.failures) == (2, 2, 0)
    window = rows[("notify", "window", "use")]
    assert (window.executions, window.successes, window.failures, window.skips) == (5, 3, 1, 1)
    assert (window.last_skip_at, window.last_error) == (T0 + 3, "disk full")
    total = TelemetryRow.total(store.fresh_telemetry("token", "alice"), kind="token", key="alice")
    assert total.successes == 5
    row = store.get_account("alice")
    assert row is not None and row.version == 4 and row.tokens.access_token == "A"


def _at_version_6(run: Callable[[str], Any], backend: str) -> None:
    for version, _name, sql in load_migrations(backend):
        if version <= 6:
            for statement in split_statements(sql) if backend == "sqlite" else [sql]:
                run(statement)
    for statement in OLD_DATA:
        run(statement)


def test_sqlite_carries_the_old_figures_over(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    _at_version_6(conn.execute, "sqlite")
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at REAL NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO schema_migrations VALUES (?, ?, 0)",
        [(v, n) for v, n, _ in load_migrations("sqlite") if v <= 6],
    )
    conn.commit()
    conn.close()
    store = open_store(path)
    try:
        assert store.schema_version() >= 7
        check_carried_over(store)
    finally:
        store.close()


def test_postgres_carries_the_old_figures_over(pg_server: PGServer) -> None:
    import psycopg
    from psycopg.rows import dict_row

    from stayfresh.store._postgres import migrate_database

    url = pg_server.create_database()
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        migrate_database(conn, load_migrations("postgres"), url, up_to=6)
        for statement in OLD_DATA:
            conn.execute(statement.encode())
    store = open_store(url)
    try:
        assert store.schema_version() >= 7
        check_carried_over(store)
    finally:
        store.close()
