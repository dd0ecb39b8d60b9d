"""The store's edge: what it accepts to open, and how database failures reach callers.

A database path comes from outside (``--db``, ``STAYFRESH_DB``, a symlink
someone made), so before writing a byte or changing a mode the SQLite backend
asks :func:`inspect_sqlite_file` whether the file is its own; anything else is
refused with :class:`~stayfresh.errors.DatabaseRefused` and left exactly as it
was. Failures of the database itself (a writer holding the lock past the busy
timeout, a full disk, a corrupt page) become the typed errors of
:mod:`stayfresh.errors` through :func:`sqlite_failure`, so no command ends in
a raw ``sqlite3`` traceback. The shared pieces (busy timeout, schema check,
refresh-intent owner and fingerprint) serve both backends.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import stat
from collections.abc import Collection
from pathlib import Path

from ..errors import (
    ConfigError,
    DatabaseRefused,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    StoreFull,
)

#: seconds a statement waits for another writer's lock before :class:`StoreBusy`
DEFAULT_BUSY_TIMEOUT = 30.0
BUSY_TIMEOUT_ENV = "STAYFRESH_BUSY_TIMEOUT"
DEFAULT_STATEMENT_TIMEOUT = 300.0
STATEMENT_TIMEOUT_ENV = "STAYFRESH_STATEMENT_TIMEOUT"

#: seconds after which a refresh intent whose owner never finished is presumed dead
INTENT_LEASE = 300.0

#: bytes set aside on disk by a refresh intent for the commit that ends it (SQLite)
RESERVE_BYTES = 256 * 1024


def busy_timeout(value: float | None = None) -> float:
    """``value``, else ``STAYFRESH_BUSY_TIMEOUT`` (seconds), else 30 s.

    One setting for both backends: SQLite's busy timeout and PostgreSQL's
    ``lock_timeout`` are the same promise ("wait this long for another
    writer, then say busy").
    """
    return _seconds_setting(value, BUSY_TIMEOUT_ENV, DEFAULT_BUSY_TIMEOUT, "busy timeout")


def statement_timeout(value: float | None = None) -> float:
    """``value``, else ``STAYFRESH_STATEMENT_TIMEOUT`` (seconds), else 300 s.

    PostgreSQL's ``statement_timeout`` on every connection: no statement of a
    stuck or overloaded server holds a caller longer than this.
    """
    return _seconds_setting(
        value, STATEMENT_TIMEOUT_ENV, DEFAULT_STATEMENT_TIMEOUT, "statement timeout"
    )


def _seconds_setting(value: float | None, env: str, default: float, what: str) -> float:
    if value is None:
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{env}={text[:40]!r} is not a number of seconds") from None
    if not 0 < value <= 86400:  # NaN fails too
        raise ConfigError(f"{what} must be between 0 and 86400 seconds, not {value!r}")
    return value


def busy_error(location: str, timeout: float) -> StoreBusy:
    return StoreBusy(
        f"database {location} is busy: another process held its lock for more than"
        f" {timeout:g}s; retry later (the wait is set by {BUSY_TIMEOUT_ENV})"
    )


def full_error(location: str) -> StoreFull:
    return StoreFull(
        f"the disk holding {location} is full: nothing was written; free some space and retry"
    )


def check_schema(applied: Collection[int], known: int, location: str) -> None:
    """Refuse a database migrated by a newer stayfresh (it may hold rows we would corrupt)."""
    found = max(applied, default=0)
    if found > known:
        raise SchemaTooNew(
            f"{location} has schema version {found}, newer than this stayfresh knows"
            f" ({known}); upgrade stayfresh or use another --db (the file was not changed)",
            found=found,
            known=known,
        )


def intent_owner() -> str:
    """Who holds a refresh intent: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the ``host:pid`` that wrote an intent may still be running.

    On this host the process table answers; another host's owner is presumed
    alive (its intent then lives until its lease ends).
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fingerprint(secret: str | None) -> str:
    """A short SHA-256 prefix naming a refresh token without revealing it."""
    if secret is None:
        return "none"
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# -- SQLite --------------------------------------------------------------------------


def _described(path: Path, given: Path) -> str:
    """The path for a message; says so when the user's path was a symlink."""
    return f"{path} (the symlink {given} points there)" if given != path else str(path)


def resolve_path(given: Path) -> Path:
    """The database file a path means: symlinks followed (so every link shares the locks).

    A dangling symlink is refused rather than followed into creating a file
    wherever it points.
    """
    resolved = given.resolve()
    if given.is_symlink() and not resolved.exists():
        raise DatabaseRefused(
            f"{given} is a symlink to {resolved}, which does not exist; create the database"
            " there first or give --db the real path"
        )
    return resolved


def create_private(path: Path) -> bool:
    """Create ``path`` (and its folder) owner-only; True when this call created it.

    An existing file is never opened here: closing any descriptor of a file
    drops every POSIX lock this process holds on it, so a second store opened
    on the same database would silently break the locks of the first one's
    SQLite connections.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def inspect_sqlite_file(path: Path, given: Path, known: int, timeout: float) -> set[int]:
    """The migrations applied to the file at ``path``, refusing it unless it is ours.

    Ours means: empty (new), an SQLite database without tables (new), or one
    with stayfresh's ``schema_migrations`` at a version this code knows.
    Checked through a read-only connection, which never writes the file
    (SQLite shares its descriptors, so closing it keeps the locks of other
    connections of this process); side files it had to create beside a
    refused file are removed again.
    """
    where = _described(path, given)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise DatabaseRefused(f"{where} is not a regular file; give --db a database file path")
    if info.st_size == 0:
        return set()
    sides = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    existed = [p.exists() for p in sides]
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "schema_migrations" not in tables:
                applied: set[int] = set()
            else:
                applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, where, timeout) or _refused(where, str(exc)) from None
        if tables and "schema_migrations" not in tables:
            raise _refused(where, "an SQLite database of another program")
        check_schema(applied, known, where)
        return applied
    except DatabaseRefused:
        conn.close()
        for side, was in zip(sides, existed, strict=True):
            if not was:
                with contextlib.suppress(OSError):
                    side.unlink()
        raise
    finally:
        conn.close()


def _refused(where: str, what: str) -> DatabaseRefused:
    return DatabaseRefused(
        f"{where} is not a stayfresh database ({what}); it was left unchanged:"
        " give --db (or STAYFRESH_DB) another path, or move the file away"
    )


def sqlite_failure(exc: sqlite3.Error, location: str, timeout: float) -> StoreError | None:
    """The typed error for an SQLite failure of the environment, or None for a bug.

    Lock waits past the timeout, a full disk (``SQLITE_FULL``, or a shared
    memory file that cannot grow), corruption and I/O failures are the
    user's to act on; anything else (a constraint, a syntax error) is left
    as it is for its caller.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if code is None:
        return None
    primary = code & 0xFF
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return busy_error(location, timeout)
    if primary == sqlite3.SQLITE_FULL or name == "SQLITE_IOERR_SHMSIZE":
        return full_error(location)
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        what = "not an SQLite file" if primary == sqlite3.SQLITE_NOTADB else "corrupt or truncated"
        return _refused(location, what)
    if primary in (
        sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM, sqlite3.SQLITE_NOMEM,
    ):  # fmt: skip
        return StoreError(f"database {location}: {exc} ({name})")
    return None
