"""The embedded default backend: one SQLite file in WAL mode.

Opening, connections and migrations live in :mod:`._sqlite_conn`. Writes run in
short ``BEGIN IMMEDIATE`` transactions, so concurrent writers from several
processes queue on SQLite's own lock (up to the busy timeout, then
:class:`~stayfresh.errors.StoreBusy`) instead of failing. The database, its
WAL files, the lock folder and the lock files are owner-only — but a file is
made owner-only only once it is known to be ours (see :mod:`._guard`).
Opening a database whose schema is current writes nothing, so read-only
commands run while another process holds the write lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ._base import (
    AccountExists,
    AccountRow,
    RefreshIntent,
    RefreshKind,
    RefreshMetrics,
    Store,
    TokenRow,
)
from ._guard import INTENT_LEASE, RESERVE_BYTES, full_error
from ._rows import (
    INTENT_COLUMNS,
    account_from_row,
    intent_from_row,
    intent_values,
    metrics_from,
    new_intent,
)
from ._sqlite_conn import FileRefreshLock as FileRefreshLock  # re-exported
from ._sqlite_conn import SQLiteConnection
from ._sqlite_conn import _split_sql as _split_sql  # re-exported
from ._sqlite_conn import load_migrations as load_migrations  # re-exported
from ._sqlite_library import SQLiteLibraryMixin
from ._sqlite_notify import SQLiteNotifyMixin
from ._sqlite_work import SQLiteWorkMixin

log = logging.getLogger(__name__)

#: how many recent latencies per account feed the average and p95
LATENCY_WINDOW = 200


class SQLiteStore(SQLiteConnection, SQLiteWorkMixin, SQLiteLibraryMixin, SQLiteNotifyMixin, Store):
    """:class:`Store` on a local SQLite file."""

    # -- accounts ----------------------------------------------------------------

    def create_account(
        self, name: str, provider: str, config: Mapping[str, Any], tokens: TokenRow
    ) -> AccountRow:
        now = time.time()
        try:
            with self.write() as tx:
                tx.execute(
                    "INSERT INTO accounts (name, provider, config, access_token, refresh_token,"
                    " token_type, scope, expires_at, obtained_at, version, status,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,1,'ok',?,?)",
                    (
                        name,
                        provider,
                        json.dumps(dict(config), sort_keys=True),
                        tokens.access_token,
                        tokens.refresh_token,
                        tokens.token_type,
                        tokens.scope,
                        tokens.expires_at,
                        tokens.obtained_at,
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise AccountExists(f"account {name!r} already exists") from exc
        account = self.get_account(name)
        assert account is not None
        return account

    def get_account(self, name: str) -> AccountRow | None:
        rows = self.read("SELECT * FROM accounts WHERE name = ?", (name,))
        return account_from_row(rows[0]) if rows else None

    def list_accounts(self) -> list[AccountRow]:
        return [account_from_row(r) for r in self.read("SELECT * FROM accounts ORDER BY name")]

    def delete_account(self, name: str) -> bool:
        with self.write() as tx:
            cur = tx.execute("DELETE FROM accounts WHERE name = ?", (name,))
        return cur.rowcount > 0

    def clear_secrets(
        self, name: str, *, config_keys: Collection[str], message: str | None = None
    ) -> bool:
        conn = self._conn()
        # zero the freed bytes of this write; VACUUM below rebuilds the file so that
        # older values (rotated tokens left in free space by earlier updates) go too
        conn.execute("PRAGMA secure_delete=ON")
        try:
            with self.write() as tx:
                rows = tx.execute("SELECT config FROM accounts WHERE name = ?", (name,)).fetchall()
                if not rows:
                    return False
                config = {k: v for k, v in json.loads(rows[0][0]).items() if k not in config_keys}
                tx.execute(
                    "UPDATE accounts SET config = ?, access_token = NULL, refresh_token = NULL,"
                    " expires_at = NULL, obtained_at = NULL, version = version + 1,"
                    " status = 'needs_login', status_message = ?, updated_at = ? WHERE name = ?",
                    (json.dumps(config, sort_keys=True), message, time.time(), name),
                )
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.warning(
                    "%s: another process is reading the database; old pages stay in the"
                    " write-ahead log until its next checkpoint",
                    self.location,
                )
        finally:
            conn.execute("PRAGMA secure_delete=OFF")
        return True

    def update_config(self, name: str, config: Mapping[str, Any]) -> None:
        with self.write() as tx:
            tx.execute(
                "UPDATE accounts SET config = ?, updated_at = ? WHERE name = ?",
                (json.dumps(dict(config), sort_keys=True), time.time(), name),
            )

    def swap_tokens(
        self, name: str, expected_version: int, tokens: TokenRow, *, mark_ok: bool = True
    ) -> int | None:
        status_sql = ", status = 'ok', status_message = NULL" if mark_ok else ""
        self._release_reserve(name)
        with self.write() as tx:
            tx.execute("DELETE FROM refresh_intents WHERE account = ?", (name,))
            cur = tx.execute(
                "UPDATE accounts SET access_token = ?, refresh_token = ?, token_type = ?,"
                " scope = ?, expires_at = ?, obtained_at = ?, version = version + 1,"
                f" updated_at = ?{status_sql} WHERE name = ? AND version = ?",
                (
                    tokens.access_token,
                    tokens.refresh_token,
                    tokens.token_type,
                    tokens.scope,
                    tokens.expires_at,
                    tokens.obtained_at,
                    time.time(),
                    name,
                    expected_version,
                ),
            )
        return expected_version + 1 if cur.rowcount == 1 else None

    def set_status(self, name: str, status: str, message: str | None = None) -> None:
        with self.write() as tx:
            tx.execute(
                "UPDATE accounts SET status = ?, status_message = ?, updated_at = ? WHERE name = ?",
                (status, message, time.time(), name),
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
        if not ok:
            self._release_reserve(name)
        with self.write() as tx:
            if ok:
                column = "jit_refreshes" if kind == "jit" else "background_refreshes"
                tx.execute(
                    f"UPDATE accounts SET {column} = {column} + 1, last_refresh_at = ?"
                    " WHERE name = ?",
                    (at, name),
                )
                if latency_ms is not None:
                    tx.execute(
                        "INSERT INTO refresh_latencies (account, at, latency_ms) VALUES (?,?,?)",
                        (name, at, latency_ms),
                    )
                    tx.execute(
                        "DELETE FROM refresh_latencies WHERE account = ? AND id <= "
                        "(SELECT id FROM refresh_latencies WHERE account = ?"
                        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (name, name, LATENCY_WINDOW),
                    )
            else:
                tx.execute("DELETE FROM refresh_intents WHERE account = ?", (name,))
                tx.execute(
                    "UPDATE accounts SET failures = failures + 1, last_failure_at = ?,"
                    " last_error = ? WHERE name = ?",
                    (at, error, name),
                )

    def refresh_metrics(self, name: str) -> RefreshMetrics:
        rows = self.read(
            "SELECT jit_refreshes, background_refreshes, failures, last_refresh_at,"
            " last_failure_at, last_error FROM accounts WHERE name = ?",
            (name,),
        )
        latencies = [
            float(r[0])
            for r in self.read(
                "SELECT latency_ms FROM refresh_latencies WHERE account = ?", (name,)
            )
        ]
        return metrics_from(rows[0] if rows else None, latencies)

    # -- refresh intents -----------------------------------------------------------

    def begin_refresh(
        self, name: str, version: int, *, now: float | None = None, lease: float = INTENT_LEASE
    ) -> RefreshIntent | None:
        """Reserve room on disk, then commit the intent row.

        Why a reserve file rather than padding in the row: in WAL mode every
        commit appends the pages it changes to the ``-wal`` file, so rows
        freed inside the database give the final commit no room on the
        filesystem. A file of :data:`RESERVE_BYTES` (allocated with
        ``posix_fallocate``, so the blocks really are taken), deleted just
        before that commit, does: a few pages for the token row, the intent
        and the metrics need far less. If another program fills the freed
        space in between, the commit still fails typed (StoreFull) — the
        reserve narrows the window, it cannot close it.
        """
        at = time.time() if now is None else now
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        reserve = self._account_file(name, ".reserve")
        try:
            _allocate(reserve, RESERVE_BYTES)
        except OSError as exc:
            self._release_reserve(name)
            if exc.errno == errno.ENOSPC:
                raise full_error(self.location) from None
            raise
        intent: RefreshIntent | None = None
        committed = False
        try:
            with self.write() as tx:
                row = tx.execute(
                    "SELECT refresh_token FROM accounts WHERE name = ?", (name,)
                ).fetchone()
                if row is not None:
                    intent = new_intent(name, version, row[0], at=at, lease=lease)
                    tx.execute(
                        f"INSERT OR REPLACE INTO refresh_intents ({', '.join(INTENT_COLUMNS)})"
                        " VALUES (?,?,?,?,?,?)",
                        intent_values(intent),
                    )
            committed = True
        finally:
            if not committed or intent is None:  # nothing to reserve room for
                self._release_reserve(name)
        return intent

    def refresh_intent(self, name: str) -> RefreshIntent | None:
        rows = self.read("SELECT * FROM refresh_intents WHERE account = ?", (name,))
        return intent_from_row(rows[0]) if rows else None

    def _release_reserve(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._account_file(name, ".reserve").unlink()

    # -- settings ----------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str | None) -> None:
        with self.write() as tx:
            if value is None:
                tx.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )


def _allocate(path: Path, size: int) -> None:
    """Make ``path`` hold ``size`` bytes of real disk blocks (ENOSPC when they are not there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        else:  # macOS: written zeros take blocks too
            os.pwrite(fd, bytes(size), 0)
            os.fsync(fd)
    finally:
        os.close(fd)
