"""The shared backend: PostgreSQL, for many daemons on many machines.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool` (connections, retries and
migrations in :mod:`._postgres_conn`). Connections are in
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
too, so several daemons starting at once migrate exactly once. Every
connection has a ``lock_timeout`` (the busy timeout, 30 s by default): a lock
wait longer than that is :class:`~stayfresh.errors.StoreBusy`, a full disk on
the server :class:`~stayfresh.errors.StoreFull`, never a psycopg traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

import psycopg
from psycopg.rows import DictRow

from ..errors import StoreError
from ._base import (
    AccountExists,
    AccountRow,
    RefreshIntent,
    RefreshKind,
    RefreshMetrics,
    Store,
    TokenRow,
)
from ._guard import INTENT_LEASE
from ._postgres_conn import DEFAULT_RETRY_FOR as DEFAULT_RETRY_FOR  # re-exported
from ._postgres_conn import Conn, PostgresConnection
from ._postgres_library import PostgresLibraryMixin
from ._postgres_notify import PostgresNotifyMixin
from ._postgres_work import WAKE_CHANNEL, PostgresWorkMixin
from ._rows import (
    INTENT_COLUMNS,
    account_from_row,
    intent_from_row,
    intent_values,
    metrics_from,
    new_intent,
)
from ._sqlite import LATENCY_WINDOW

log = logging.getLogger(__name__)


class PostgresStore(
    PostgresConnection, PostgresWorkMixin, PostgresLibraryMixin, PostgresNotifyMixin, Store
):
    """:class:`Store` on a PostgreSQL database shared by many processes and machines."""

    #: runners LISTEN here; ``stayfresh.work`` picks its PostgreSQL waker by this attribute
    wake_channel = WAKE_CHANNEL

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
            tx.execute("DELETE FROM refresh_intents WHERE account = %s", (name,))
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
                tx.execute("DELETE FROM refresh_intents WHERE account = %s", (name,))
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

    def begin_refresh(
        self, name: str, version: int, *, now: float | None = None, lease: float = INTENT_LEASE
    ) -> RefreshIntent | None:
        """Commit the intent row; the server's own disk is what it proves writable."""
        at = time.time() if now is None else now

        def body(tx: Conn) -> RefreshIntent | None:
            row = tx.execute(
                "SELECT refresh_token FROM accounts WHERE name = %s", (name,)
            ).fetchone()
            if row is None:
                return None
            intent = new_intent(name, version, row["refresh_token"], at=at, lease=lease)
            updates = ", ".join(f"{c} = excluded.{c}" for c in INTENT_COLUMNS[1:])
            tx.execute(
                f"INSERT INTO refresh_intents ({', '.join(INTENT_COLUMNS)})"
                f" VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (account) DO UPDATE SET {updates}",
                intent_values(intent),
            )
            return intent

        return self.write_tx(body)

    def refresh_intent(self, name: str) -> RefreshIntent | None:
        rows = self.read("SELECT * FROM refresh_intents WHERE account = %s", (name,))
        return intent_from_row(rows[0]) if rows else None

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
