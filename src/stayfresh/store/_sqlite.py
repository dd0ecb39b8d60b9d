"""The embedded default backend: one SQLite file in WAL mode.

Each thread gets its own connection (re-opened after ``fork``). Writes run in
short ``BEGIN IMMEDIATE`` transactions, so concurrent writers from several
processes queue on SQLite's own lock instead of failing. The database, its
WAL files, the lock folder and the lock files are owner-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import filelock

from ._base import (
    AccountExists,
    AccountRow,
    RefreshKind,
    RefreshLock,
    RefreshMetrics,
    Store,
    TokenRow,
)
from ._rows import account_from_row, metrics_from
from ._sqlite_library import SQLiteLibraryMixin
from ._sqlite_notify import SQLiteNotifyMixin
from ._sqlite_work import SQLiteWorkMixin

log = logging.getLogger(__name__)

#: how many recent latencies per account feed the average and p95
LATENCY_WINDOW = 200


def _ensure_private_file(path: Path) -> None:
    """Create the database file (and its folder) owner-only before SQLite opens it.

    An existing file is never opened here: closing any descriptor of a file
    drops every POSIX lock this process holds on it, so a second store opened
    on the same database (a worker opening its own) would silently break the
    locks of the first one's SQLite connections — another process could then
    checkpoint and delete the WAL they still write to, losing their commits.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    if os.name == "posix":
        os.chmod(path, 0o600)


def load_migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped for ``backend``, in order."""
    folder = resources.files("stayfresh.store.migrations").joinpath(backend)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class FileRefreshLock(RefreshLock):
    """An ``flock`` on a file in ``<db>.locks/`` (through the filelock package).

    A process-local mutex in front of it makes the lock exclusive between the
    threads of one process too (filelock's own lock is reentrant).
    """

    def __init__(self, path: Path) -> None:
        self._local = threading.Lock()
        self._file = filelock.FileLock(path, mode=0o600, thread_local=False, poll_interval=0.005)

    def acquire(self, timeout: float | None = None) -> bool:
        started = time.monotonic()
        if not self._local.acquire(timeout=-1 if timeout is None else timeout):
            return False
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        try:
            self._file.acquire(timeout=-1 if remaining is None else remaining)
        except filelock.Timeout:
            self._local.release()
            return False
        except BaseException:
            self._local.release()
            raise
        return True

    def release(self) -> None:
        self._file.release()
        self._local.release()


class SQLiteStore(SQLiteWorkMixin, SQLiteLibraryMixin, SQLiteNotifyMixin, Store):
    """:class:`Store` on a local SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
        self.path = Path(path).expanduser().absolute()
        self.location = str(self.path)
        self.lock_dir = Path(str(self.path) + ".locks")
        self._local = threading.local()
        self._locks: dict[str, FileRefreshLock] = {}
        self._locks_guard = threading.Lock()
        _ensure_private_file(self.path)
        if migrate:
            self.migrate()

    # -- connections -----------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Run one read query outside any explicit transaction."""
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    # -- migrations ------------------------------------------------------------

    def migrate(self) -> int:
        """Apply every migration not yet applied; safe when processes race."""
        conn = self._conn()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        for version, name, sql in load_migrations("sqlite"):
            with self.write() as tx:
                done = tx.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if done:
                    continue
                log.info("applying migration %s to %s", name, self.location)
                for statement in _split_sql(sql):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
        return self.schema_version()

    def schema_version(self) -> int:
        row = self.read("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row[0]["v"] or 0)

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
        with self.write() as tx:
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

    def refresh_lock(self, name: str) -> RefreshLock:
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                self.lock_dir.mkdir(mode=0o700, exist_ok=True)
                digest = hashlib.sha256(name.encode()).hexdigest()[:24]
                lock = FileRefreshLock(self.lock_dir / f"{digest}.lock")
                self._locks[name] = lock
            return lock

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


def _split_sql(sql: str) -> list[str]:
    """Split a migration file into whole statements (triggers and comments included)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:60]!r}")
    return statements
