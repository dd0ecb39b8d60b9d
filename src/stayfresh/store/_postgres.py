"""The shared backend: PostgreSQL, for many daemons on many machines.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool`. Connections are in
autocommit mode: a read is one statement, a write is one explicit
transaction (:meth:`PostgresStore.write_tx`). Both survive a lost connection:
the pool drops the broken connection and the call is retried on a fresh one
with exponential backoff for up to ``retry_for`` seconds. A write whose
COMMIT was cut off is never guessed at: its transaction id was read before
committing, and ``pg_xact_status`` on a new connection says whether it
committed (then its result is returned) or not (then it is run again). So a
daemon rides out a restart of the server or a network cut without losing or
doubling a claim, a finish or an enqueue.

Cross-machine locks are session-level advisory locks held on a dedicated
pooled connection (:class:`AdvisoryLock`); schema migrations run under one
too, so several daemons starting at once migrate exactly once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import DictRow, dict_row

from ._base import (
    AccountExists,
    AccountRow,
    RefreshKind,
    RefreshLock,
    RefreshMetrics,
    Store,
    StoreError,
    TokenRow,
)
from ._postgres_conn import AdvisoryLock, _CommitUnknown, advisory_key, is_transient, redact_url
from ._postgres_library import PostgresLibraryMixin
from ._postgres_notify import PostgresNotifyMixin
from ._postgres_work import WAKE_CHANNEL, PostgresWorkMixin
from ._rows import account_from_row, metrics_from
from ._sqlite import LATENCY_WINDOW, load_migrations

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]

#: default seconds a call keeps retrying while the database is unreachable
DEFAULT_RETRY_FOR = 120.0
_MIGRATION_LOCK = "stayfresh:migrations"


class PostgresStore(PostgresWorkMixin, PostgresLibraryMixin, PostgresNotifyMixin, Store):
    """:class:`Store` on a PostgreSQL database shared by many processes and machines."""

    #: runners LISTEN here; ``stayfresh.work`` picks its PostgreSQL waker by this attribute
    wake_channel = WAKE_CHANNEL

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        pool_size: int = 8,
        lock_pool_size: int = 16,
        retry_for: float = DEFAULT_RETRY_FOR,
    ) -> None:
        self.url = url
        self.location = redact_url(url)
        self.retry_for = retry_for
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        self._pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), kwargs=kwargs, open=False,
            name="stayfresh", timeout=10.0, reconnect_timeout=retry_for,
        )  # fmt: skip
        self._lock_pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url, min_size=0, max_size=max(1, lock_pool_size), kwargs=kwargs, open=False,
            name="stayfresh-locks", timeout=10.0, max_idle=60.0,
        )  # fmt: skip
        self._locks: dict[str, AdvisoryLock] = {}
        self._locks_guard = threading.Lock()
        try:
            # fail fast on a wrong URL or a server that is down at start
            self._pool.open(wait=True, timeout=10.0)
            self._lock_pool.open()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            self._lock_pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self.location}: {exc}") from exc
        if migrate:
            self.migrate()

    # -- connections and retries ------------------------------------------------------

    def _retrying(self, attempt: Callable[[Conn], T]) -> T:
        """Run ``attempt`` on a pooled connection, retrying transient failures with backoff."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        unknown: _CommitUnknown | None = None
        while True:
            try:
                with self._pool.connection() as conn:
                    if unknown is not None:
                        status = _xact_status(conn, unknown.xid)
                        if status == "committed":
                            return unknown.result  # type: ignore[return-value]
                        if status == "in progress":
                            raise psycopg.OperationalError("previous commit still in progress")
                        unknown = None  # aborted: run it again
                    return attempt(conn)
            except _CommitUnknown as exc:
                unknown = exc
                cause: BaseException = exc.__cause__ or exc
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if not is_transient(exc):
                    raise
                cause = exc
            if time.monotonic() + delay > deadline:
                raise StoreError(
                    f"PostgreSQL at {self.location} unreachable for {self.retry_for:g}s: {cause}"
                ) from cause
            log.warning("database call failed (%s); retrying in %.2fs", cause, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def read(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[DictRow]:
        """One autocommit query (retried when the connection is lost)."""
        return self._retrying(lambda conn: conn.execute(sql, params).fetchall())

    def write_tx(self, body: Callable[[Conn], T]) -> T:
        """Run ``body`` in one transaction and return its result once committed.

        ``body`` may run more than once (after a lost connection) and must
        therefore only touch the database; it never runs twice successfully.
        """

        def attempt(conn: Conn) -> T:
            committing = False
            xid = ""
            try:
                with conn.transaction():
                    row = conn.execute("SELECT pg_current_xact_id()::text AS xid").fetchone()
                    xid = str(row["xid"]) if row else ""
                    result = body(conn)
                    committing = True
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if committing and is_transient(exc):
                    raise _CommitUnknown(xid, result) from exc
                raise
            return result

        return self._retrying(attempt)

    def close(self) -> None:
        self._lock_pool.close()
        self._pool.close()

    # -- migrations ------------------------------------------------------------------

    def migrate(self, *, up_to: int | None = None) -> int:
        """Apply missing migrations (each in its own transaction) under an advisory lock.

        The first daemon to start migrates; the others wait on the lock, then
        find nothing left to do.
        """

        def run(conn: Conn) -> int:
            key = advisory_key(_MIGRATION_LOCK)
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                for version, name, sql in load_migrations("postgres"):
                    if up_to is not None and version > up_to:
                        break
                    with conn.transaction():
                        done = conn.execute(
                            "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                        ).fetchone()
                        if done:
                            continue
                        log.info("applying migration %s to %s", name, self.location)
                        conn.execute(sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at)"
                            " VALUES (%s, %s, %s)",
                            (version, name, time.time()),
                        )
            finally:
                if not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return 0

        self._retrying(run)
        return self.schema_version()

    def schema_version(self) -> int:
        rows = self.read("SELECT MAX(version) AS v FROM schema_migrations")
        return int(rows[0]["v"] or 0)

    # -- accounts ----------------------------------------------------------------------

    def create_account(
        self, name: str, provider: str, config: Mapping[str, Any], tokens: TokenRow
    ) -> AccountRow:
        now = time.time()

        def body(tx: Conn) -> DictRow | None:
            return tx.execute(
                "INSERT INTO accounts (name, provider, config, access_token, refresh_token,"
                " token_type, scope, expires_at, obtained_at, version, status, created_at,"
                " updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,1,'ok',%s,%s)"
                " ON CONFLICT (name) DO NOTHING RETURNING *",
                (name, provider, json.dumps(dict(config), sort_keys=True), tokens.access_token,
                 tokens.refresh_token, tokens.token_type, tokens.scope, tokens.expires_at,
                 tokens.obtained_at, now, now),
            ).fetchone()  # fmt: skip

        row = self.write_tx(body)
        if row is None:
            raise AccountExists(f"account {name!r} already exists")
        return account_from_row(row)

    def get_account(self, name: str) -> AccountRow | None:
        rows = self.read("SELECT * FROM accounts WHERE name = %s", (name,))
        return account_from_row(rows[0]) if rows else None

    def list_accounts(self) -> list[AccountRow]:
        return [account_from_row(r) for r in self.read("SELECT * FROM accounts ORDER BY name")]

    def delete_account(self, name: str) -> bool:
        return self.write_tx(
            lambda tx: tx.execute("DELETE FROM accounts WHERE name = %s", (name,)).rowcount > 0
        )

    def clear_secrets(
        self, name: str, *, config_keys: Collection[str], message: str | None = None
    ) -> bool:
        def body(tx: Conn) -> bool:
            row = tx.execute(
                "SELECT config FROM accounts WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            if row is None:
                return False
            config = {k: v for k, v in json.loads(row["config"]).items() if k not in config_keys}
            tx.execute(
                "UPDATE accounts SET config = %s, access_token = NULL, refresh_token = NULL,"
                " expires_at = NULL, obtained_at = NULL, version = version + 1,"
                " status = 'needs_login', status_message = %s, updated_at = %s WHERE name = %s",
                (json.dumps(config, sort_keys=True), message, time.time(), name),
            )
            return True

        if not self.write_tx(body):
            return False
        # UPDATE leaves the old row version in the table file: VACUUM FULL rewrites
        # the table without it. The server's WAL keeps it until recycled (see README).
        try:
            self._retrying(lambda conn: conn.execute("VACUUM (FULL) accounts"))
        except (psycopg.Error, StoreError) as exc:
            log.warning("%s: could not rewrite the accounts table: %s", self.location, exc)
        return True

    def update_config(self, name: str, config: Mapping[str, Any]) -> None:
        self.write_tx(
            lambda tx: tx.execute(
                "UPDATE accounts SET config = %s, updated_at = %s WHERE name = %s",
                (json.dumps(dict(config), sort_keys=True), time.time(), name),
            )
        )

    def swap_tokens(
        self, name: str, expected_version: int, tokens: TokenRow, *, mark_ok: bool = True
    ) -> int | None:
        status_sql = ", status = 'ok', status_message = NULL" if mark_ok else ""

        def body(tx: Conn) -> int:
            return tx.execute(
                "UPDATE accounts SET access_token = %s, refresh_token = %s, token_type = %s,"
                " scope = %s, expires_at = %s, obtained_at = %s, version = version + 1,"
                f" updated_at = %s{status_sql} WHERE name = %s AND version = %s",
                (tokens.access_token, tokens.refresh_token, tokens.token_type, tokens.scope,
                 tokens.expires_at, tokens.obtained_at, time.time(), name, expected_version),
            ).rowcount  # fmt: skip

        return expected_version + 1 if self.write_tx(body) == 1 else None

    def set_status(self, name: str, status: str, message: str | None = None) -> None:
        self.write_tx(
            lambda tx: tx.execute(
                "UPDATE accounts SET status = %s, status_message = %s, updated_at = %s"
                " WHERE name = %s",
                (status, message, time.time(), name),
            )
        )

    def record_refresh(
        self,
        name: str,
        *,
        kind: RefreshKind,
        ok: bool,
        at: float,
        latency_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        def body(tx: Conn) -> None:
            if not ok:
                tx.execute(
                    "UPDATE accounts SET failures = failures + 1, last_failure_at = %s,"
                    " last_error = %s WHERE name = %s",
                    (at, error, name),
                )
                return
            column = "jit_refreshes" if kind == "jit" else "background_refreshes"
            tx.execute(
                f"UPDATE accounts SET {column} = {column} + 1, last_refresh_at = %s"
                " WHERE name = %s",
                (at, name),
            )
            if latency_ms is not None:
                tx.execute(
                    "INSERT INTO refresh_latencies (account, at, latency_ms)"
                    " SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM accounts WHERE name = %s)",
                    (name, at, latency_ms, name),
                )
                tx.execute(
                    "DELETE FROM refresh_latencies WHERE account = %s AND id <= (SELECT id FROM"
                    " refresh_latencies WHERE account = %s ORDER BY id DESC LIMIT 1 OFFSET %s)",
                    (name, name, LATENCY_WINDOW),
                )

        self.write_tx(body)

    def refresh_metrics(self, name: str) -> RefreshMetrics:
        rows = self.read(
            "SELECT jit_refreshes, background_refreshes, failures, last_refresh_at,"
            " last_failure_at, last_error FROM accounts WHERE name = %s",
            (name,),
        )
        latencies = [
            float(r["latency_ms"])
            for r in self.read(
                "SELECT latency_ms FROM refresh_latencies WHERE account = %s", (name,)
            )
        ]
        return metrics_from(rows[0] if rows else None, latencies)

    def advisory_lock(self, name: str) -> AdvisoryLock:
        """The process's one :class:`AdvisoryLock` object for ``name``."""
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = AdvisoryLock(self._lock_pool, name)
            return lock

    def refresh_lock(self, name: str) -> RefreshLock:
        return self.advisory_lock(f"stayfresh:refresh:{name}")

    # -- settings ------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM settings WHERE key = %s", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self.write_tx(lambda tx: tx.execute("DELETE FROM settings WHERE key = %s", (key,)))
            return
        self.write_tx(
            lambda tx: tx.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )


def _xact_status(conn: Conn, xid: str) -> str | None:
    row = conn.execute("SELECT pg_xact_status(%s::xid8) AS s", (xid,)).fetchone()
    return None if row is None else row["s"]
