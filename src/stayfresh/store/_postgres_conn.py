"""Connections to PostgreSQL: which failures to retry, advisory locks, URL redaction.

Kept apart from :mod:`._postgres` (the store itself) so that the lock and the
retry rules read on their own.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from typing import Any

import psycopg
import psycopg_pool

from ._base import RefreshLock

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def redact_url(url: str) -> str:
    """The URL without its password, for logs and ``Store.location``."""
    return re.sub(r"^(\w+://[^:/@]+):[^@]*@", r"\1:***@", url)


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry on a fresh connection can fix.

    A lost connection (no SQLSTATE, class 08), a server shutting down or
    starting (57P0x), a deadlock or serialization failure (class 40), and a
    pool with no connection to give. Not a statement timeout or a lock
    timeout: those are answers.
    """
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return True
    if isinstance(exc, psycopg.InterfaceError):
        return "closed" in str(exc) or "lost" in str(exc)
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state[:2] in ("08", "40") or state in ("57P01", "57P02", "57P03")


class _CommitUnknown(Exception):
    """The connection broke during COMMIT; ``xid`` tells whether it happened."""

    def __init__(self, xid: str, result: object) -> None:
        super().__init__(xid)
        self.xid = xid
        self.result = result


class AdvisoryLock(RefreshLock):
    """A session-level advisory lock, exclusive between threads, processes and machines.

    While held it pins one connection of the lock pool: the lock lives as
    long as that session. A process-local mutex in front makes it exclusive
    between this process's threads too (advisory locks are reentrant within
    a session). ``acquire(0)`` is one ``pg_try_advisory_lock``; a timeout is
    PostgreSQL's ``lock_timeout`` on ``pg_advisory_lock``, so waiting costs
    no polling. If the connection drops while held, the server frees the
    lock — acceptable, since the lock only guards work whose truth is a
    compare-and-swap write.
    """

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any], name: str) -> None:
        self._pool = pool
        self.name = name
        self.key = advisory_key(name)
        self._local = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self, timeout: float | None = None) -> bool:
        started = time.monotonic()
        if not self._local.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            remaining = (
                None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            )
            conn = self._pool.getconn(timeout=None if remaining is None else max(remaining, 1.0))
            try:
                if remaining == 0.0:
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(%s) AS ok", (self.key,)
                    ).fetchone()
                    got = bool(row and row["ok"])
                else:
                    got = self._wait(conn, remaining)
            except BaseException:
                self._pool.putconn(conn)
                raise
            if not got:
                self._pool.putconn(conn)
                self._local.release()
                return False
            self._conn = conn
            return True
        except BaseException:
            self._local.release()
            raise

    def _wait(self, conn: psycopg.Connection[Any], remaining: float | None) -> bool:
        ms = 0 if remaining is None else max(1, int(remaining * 1000))
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{ms}ms",))
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            if not conn.broken:
                conn.execute("SELECT set_config('lock_timeout', '0', false)")

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError(f"lock {self.name!r} released but not held")
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error as exc:  # the session is gone: so is the lock
            log.warning("lock %r: connection lost while held (%s)", self.name, exc)
        finally:
            self._pool.putconn(conn)
            self._local.release()
