"""The embedded default backend: one SQLite file in WAL mode.

Writes run in short ``BEGIN IMMEDIATE`` transactions, so concurrent writers
from several processes queue on SQLite's own lock (up to the busy timeout,
then :class:`~stayfresh.errors.StoreBusy`) instead of failing; that lock is
also why the shared statements' row locks (``FOR UPDATE``) are dropped here.
Each thread gets its own connection (re-opened after ``fork``). The database,
its WAL files, the lock folder and the lock files are owner-only — but a file
is made owner-only only once it is known to be ours (see :mod:`._guard`).
Opening a database whose schema is current writes nothing, so read-only
commands run while another process holds the write lock.

What is SQLite's own here: opening the file, binding lists as JSON, file
locks, the room set aside before a refresh, and scrubbing freed pages.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import operator
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from . import _guard
from ._accounts import AccountsSQL
from ._contracts import RefreshLock
from ._fresh import FreshSQL
from ._guard import (
    RESERVE_BYTES,
    check_schema,
    create_private,
    full_error,
    inspect_sqlite_file,
    resolve_path,
    sqlite_failure,
)
from ._library import LibrarySQL
from ._notify import NotifySQL
from ._queries import PARAMETER, load_migrations, split_statements
from ._rows import RowLike
from ._sql import Cursor, Tx
from ._work import WorkSQL

if TYPE_CHECKING:
    from ._queries import Dialect

log = logging.getLogger(__name__)

T = TypeVar("T")

#: a list parameter, as the shared statements' ``= ANY(:x)`` reads on SQLite
_JSON_LIST = re.compile(r"json_each\(:(\w+)\)")
Values = Callable[[Mapping[str, Any]], "tuple[Any, ...] | list[Any]"]


@functools.cache
def _positional(sql: str) -> tuple[str, Values]:
    """A named statement as sqlite3 runs it fastest: ``?`` marks, and a getter of its values.

    Positional binding of tuples built in C (:func:`operator.itemgetter`) is
    what keeps a 15,000-row ``executemany`` as cheap as hand-written ``?`` SQL.
    Only the parameters the statement reads as lists (``json_each(:x)``) are
    encoded, as JSON text; every other value is bound as it is.
    """
    names: list[str] = []

    def mark(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)  # a quoted string or a bare %
        names.append(m.group(1))
        return "?"

    text = PARAMETER.sub(mark, sql)
    if len(names) == 1:
        only = names[0]
        getter: Values = lambda params: (params[only],)  # noqa: E731
    else:
        getter = operator.itemgetter(*names) if names else (lambda params: ())
    read_as_lists = set(_JSON_LIST.findall(sql))
    lists = [i for i, name in enumerate(names) if name in read_as_lists]
    if not lists:
        return text, getter

    def values(params: Mapping[str, Any]) -> list[Any]:
        args = list(getter(params))
        for i in lists:
            args[i] = json.dumps(list(args[i])) if args[i] else "[]"  # empty: no encoder
        return args

    return text, values


class SQLiteTx(Tx):
    """A ``BEGIN IMMEDIATE`` transaction on this thread's connection."""

    def __init__(self, conn: sqlite3.Connection, queries: Mapping[str, str]) -> None:
        super().__init__(queries)
        self.conn = conn

    def execute(self, sql: str, params: Mapping[str, Any]) -> Cursor:
        text, values = _positional(sql)
        return self.conn.execute(text, values(params))

    def executemany(self, sql: str, rows: list[Mapping[str, Any]]) -> None:
        text, values = _positional(sql)
        self.conn.executemany(text, map(values, rows))


class FileRefreshLock(RefreshLock):
    """An ``flock`` on a file in ``<db>.locks/`` (through the filelock package).

    A process-local mutex in front of it makes the lock exclusive between the
    threads of one process too (filelock's own lock is reentrant).
    """

    def __init__(self, path: Path) -> None:
        import filelock  # only when a refresh needs the lock, not on the valid-token path

        self._local = threading.Lock()
        self._file = filelock.FileLock(path, mode=0o600, thread_local=False, poll_interval=0.005)

    def acquire(self, timeout: float | None = None) -> bool:
        import filelock  # loaded by __init__ already

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


class SQLiteStore(WorkSQL, LibrarySQL, NotifySQL, FreshSQL, AccountsSQL):
    """:class:`~stayfresh.store.Store` on a local SQLite file."""

    dialect: Dialect = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        migrate: bool = True,
        busy_timeout: float | None = None,
    ) -> None:
        """Open the database at ``path`` after checking that it is ours.

        A missing file is created owner-only; an existing one is inspected
        read-only first and refused (:class:`~stayfresh.errors.DatabaseRefused`,
        the file untouched: bytes, mode and times) unless it is empty or a
        stayfresh database this version knows. Only then is it made 0600.
        ``busy_timeout``: seconds to wait for another writer (default
        ``STAYFRESH_BUSY_TIMEOUT`` or 30).
        """
        given = Path(path).expanduser().absolute()
        self.busy_timeout = _guard.busy_timeout(busy_timeout)
        self.path = resolve_path(given)
        self.location = str(self.path)
        self.lock_dir = Path(str(self.path) + ".locks")
        self._local = threading.local()
        self._locks: dict[str, FileRefreshLock] = {}
        self._locks_guard = threading.Lock()
        try:
            create_private(self.path)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise full_error(self.location) from None
            raise
        known = load_migrations("sqlite")[-1][0]
        applied = inspect_sqlite_file(self.path, given, known, self.busy_timeout)
        if os.name == "posix" and stat.S_IMODE(self.path.stat().st_mode) != 0o600:
            os.chmod(self.path, 0o600)  # ours (or empty): it is about to hold secrets
        if migrate:
            self.migrate(seen=applied)

    # -- connections -----------------------------------------------------------

    @contextlib.contextmanager
    def _typed_errors(self) -> Iterator[None]:
        """Turn SQLite's environment failures (busy, disk full, corrupt) into typed errors."""
        try:
            yield
        except sqlite3.Error as exc:
            self._raise_typed(exc)

    def _raise_typed(self, exc: sqlite3.Error) -> NoReturn:
        """Busy, disk full and corrupt as stayfresh's typed errors; anything else as it is."""
        typed = sqlite_failure(exc, self.location, self.busy_timeout)
        if typed is None:
            raise exc
        raise typed from exc

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            with self._typed_errors():
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
                try:
                    conn.row_factory = sqlite3.Row
                    # the journal mode is stored in the file: set it once, not on every open
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=FULL")
                    conn.execute("PRAGMA foreign_keys=ON")
                except BaseException:
                    conn.close()
                    raise
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _rollback(self, conn: sqlite3.Connection) -> None:
        """Leave the thread's connection clean after a failed body or COMMIT (disk full)."""
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def transact(self, body: Callable[[SQLiteTx], T]) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction; its result once committed."""
        try:  # plain try blocks, not context managers: this is the engine's hottest call
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(SQLiteTx(conn, self.queries))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
            return result
        except sqlite3.Error as exc:
            self._raise_typed(exc)

    def select(self, name: str, /, **params: Any) -> list[RowLike]:
        """One named read outside any explicit transaction."""
        text, values = _positional(self.queries[name])
        try:
            rows: list[RowLike] = self._conn().execute(text, values(params)).fetchall()
            return rows
        except sqlite3.Error as exc:
            self._raise_typed(exc)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    # -- migrations ------------------------------------------------------------

    def _applied(self) -> set[int]:
        with self._typed_errors():
            conn = self._conn()
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'"
            ).fetchone():
                return set()
            return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}

    def migrate(self, *, seen: set[int] | None = None) -> int:
        """Apply every migration not yet applied; safe when processes race.

        Reads first and writes only when something is missing: a current
        database is opened without taking the write lock. ``seen`` is what
        the opening check already read (applied versions only ever grow, so a
        complete set needs no second look).
        """
        migrations = load_migrations("sqlite")
        applied = self._applied() if seen is None else seen
        check_schema(applied, migrations[-1][0], self.location)
        pending = [m for m in migrations if m[0] not in applied]
        if not pending:
            return max(applied)
        self.transact(
            lambda tx: tx.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
        )
        for migration in pending:
            self.transact(functools.partial(self._apply, migration))
        return self.schema_version()

    def _apply(self, migration: tuple[int, str, str], tx: SQLiteTx) -> None:
        """Apply one migration in ``tx`` unless a racing process already has."""
        version, name, sql = migration
        conn = tx.conn
        if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
            return
        log.info("applying migration %s to %s", name, self.location)
        for statement in split_statements(sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, time.time()),
        )

    # -- per-account files -----------------------------------------------------

    def named_lock(self, name: str) -> RefreshLock:
        """A file lock in ``<db>.locks/``, ``<hash of name>.lock``: names (an account,
        a URL) come from users and never become file names."""
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                self.lock_dir.mkdir(mode=0o700, exist_ok=True)
                lock = self._locks[name] = FileRefreshLock(self._account_file(name, ".lock"))
            return lock

    def _account_file(self, name: str, suffix: str) -> Path:
        """``<db>.locks/<hash of name><suffix>``: per-name files, named without the name."""
        return self.lock_dir / (hashlib.sha256(name.encode()).hexdigest()[:24] + suffix)

    # -- what only a file needs ---------------------------------------------------

    def _scrubbed(self, write: Callable[[], bool]) -> bool:
        """``secure_delete`` zeroes the bytes this write frees; ``VACUUM`` then rebuilds
        the file so that older values (rotated tokens left in free space by earlier
        updates) go too, and a checkpoint empties the write-ahead log."""
        conn = self._conn()
        conn.execute("PRAGMA secure_delete=ON")
        try:
            if not write():
                return False
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.warning(
                    "%s: another process is reading the database; old pages stay in the"
                    " write-ahead log until its next checkpoint",
                    self.location,
                )
            return True
        finally:
            conn.execute("PRAGMA secure_delete=OFF")

    def _reserve(self, name: str) -> None:
        """Allocate :data:`RESERVE_BYTES` for the commit that ends a refresh.

        Why a reserve file rather than padding in the row: in WAL mode every
        commit appends the pages it changes to the ``-wal`` file, so rows
        freed inside the database give the final commit no room on the
        filesystem. A file allocated with ``posix_fallocate`` (so the blocks
        really are taken), deleted just before that commit, does: a few pages
        for the token row, the intent and the metrics need far less. If
        another program fills the freed space in between, the commit still
        fails typed (StoreFull) — the reserve narrows the window, it cannot
        close it.
        """
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            _allocate(self._account_file(name, ".reserve"), RESERVE_BYTES)
        except OSError as exc:
            self._release_reserve(name)
            if exc.errno == errno.ENOSPC:
                raise full_error(self.location) from None
            raise

    def _release_reserve(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._account_file(name, ".reserve").unlink()


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
