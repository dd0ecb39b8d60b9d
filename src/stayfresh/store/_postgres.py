"""The shared backend: PostgreSQL, for many daemons on many machines.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool`. Connections are in
autocommit mode: a read is one statement, a write is one explicit
transaction (:meth:`PostgresStore.transact`). Both survive a lost connection:
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

What is PostgreSQL's own here: the pools and the retry rules, binding lists
as arrays, advisory locks, LISTEN/NOTIFY wake-ups, and scrubbing old row
versions with ``VACUUM FULL``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg.conninfo
import psycopg_pool
from psycopg.rows import DictRow, dict_row

from .._retry import backoff_delay
from ..errors import StoreError, StoreUnavailable
from . import _guard
from ._accounts import AccountsSQL
from ._contracts import RefreshLock
from ._fresh import FreshSQL
from ._guard import busy_error, check_schema, full_error
from ._library import LibrarySQL
from ._notify import NotifySQL
from ._queries import load_migrations
from ._rows import RowLike
from ._sql import Cursor, Tx
from ._work import WorkSQL

if TYPE_CHECKING:
    from ._queries import Dialect

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]

#: default seconds a call keeps retrying while the database is unreachable
DEFAULT_RETRY_FOR = 120.0

_MIGRATION_LOCK = "stayfresh:migrations"
#: the LISTEN/NOTIFY channel that wakes runners (see ``stayfresh.work``)
WAKE_CHANNEL = "stayfresh_work"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: libpq's TCP keepalives and user timeout: a server that stops answering without a reset
#: (a network partition, a host gone) fails the connection within about a minute
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}


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


def pg_failure(exc: BaseException, location: str, timeout: float) -> StoreError | None:
    """The typed error for a failure that is an answer, not a bug; None otherwise.

    A lock wait past ``lock_timeout`` (55P03) is :class:`StoreBusy`, a full
    disk on the server (53100) :class:`StoreFull`.
    """
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return busy_error(location, timeout)
    if isinstance(exc, psycopg.errors.QueryCanceled):  # statement_timeout
        return StoreUnavailable(f"PostgreSQL at {location}: a statement ran too long ({exc})")
    if isinstance(exc, psycopg.Error) and exc.sqlstate == "53100":
        return full_error(location)
    return None


def retry_delay(
    exc: BaseException,
    *,
    tries: int,
    deadline: float,
    location: str,
    busy_timeout: float,
    what: str,
    transient: bool = False,
) -> float:
    """How long to wait before retrying after ``exc`` — or raise its typed error.

    The one retry policy of every call (statements, the refresh lock): a failure
    that is an answer is raised typed (or as is when it is a bug); a transient one
    is retried with backoff until ``deadline`` (monotonic), then StoreUnavailable.
    ``transient``: the caller already knows it is (a commit whose outcome is unknown).
    """
    if not transient and not is_transient(exc):
        typed = pg_failure(exc, location, busy_timeout)
        if typed is None:
            raise exc
        raise typed from exc
    delay = backoff_delay(tries, initial=0.05, floor=0.0, cap=2.0)
    if time.monotonic() + delay > deadline:
        raise StoreUnavailable(f"{what}: PostgreSQL at {location} unreachable: {exc}") from exc
    log.warning("%s failed (%s); retrying in %.2fs", what, exc, delay)
    return delay


def _applied(conn: psycopg.Connection[Any]) -> set[int]:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").fetchone()
    if not (row and row["present"]):
        return set()
    return {int(r["version"]) for r in conn.execute("SELECT version FROM schema_migrations")}


def migrate_database(
    conn: psycopg.Connection[Any],
    migrations: list[tuple[int, str, str]],
    location: str,
    up_to: int | None = None,
) -> None:
    """Apply the missing ``migrations`` (up to ``up_to``), each in its own transaction.

    Reads first: a database migrated by a newer stayfresh is refused
    (:class:`SchemaTooNew`) and a current one is left without taking the
    migration lock. Otherwise the advisory lock makes concurrent starters
    migrate exactly once.
    """
    wanted = [m for m in migrations if up_to is None or m[0] <= up_to]
    applied = _applied(conn)
    check_schema(applied, migrations[-1][0], location)
    if all(version in applied for version, _, _ in wanted):
        return
    key = advisory_key(_MIGRATION_LOCK)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for version, name, sql in wanted:
            with conn.transaction():
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if done:
                    continue
                log.info("applying migration %s to %s", name, location)
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
    finally:
        if not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


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
    PostgreSQL's ``lock_timeout`` on ``pg_advisory_lock``, set for that one
    transaction (the connection's own busy timeout is back afterwards), so
    waiting costs no polling. If the connection drops while held, the server frees the
    lock — acceptable, since the lock only guards work whose truth is a
    compare-and-swap write.
    """

    def __init__(
        self,
        pool: psycopg_pool.ConnectionPool[Any],
        name: str,
        *,
        location: str = "",
        retry_for: float = DEFAULT_RETRY_FOR,
        busy_timeout: float = 30.0,
    ) -> None:
        self._pool = pool
        self.name = name
        self.key = advisory_key(name)
        self._local = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._location, self._retry_for, self._busy_timeout = location, retry_for, busy_timeout

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock (see the class); database trouble is retried like any store call.

        A lost connection, a server restarting or a pool with no connection to
        give is retried with backoff for the store's ``retry_for`` (at least 5 s
        even for a try), then :class:`~stayfresh.errors.StoreUnavailable`; a
        failure that is an answer is typed the way every other call types it.
        """
        started = time.monotonic()
        if not self._local.acquire(timeout=-1 if timeout is None else timeout):
            return False
        give_up = started + min(self._retry_for, max(5.0, timeout or self._retry_for))
        tries = 0
        try:
            while True:
                left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
                try:
                    return self._take(left)
                except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                    tries += 1
                    time.sleep(
                        retry_delay(
                            exc,
                            tries=tries,
                            deadline=give_up,
                            location=self._location,
                            busy_timeout=self._busy_timeout,
                            what=f"lock {self.name!r}",
                        )
                    )
        except BaseException:
            self._local.release()
            raise

    def _take(self, remaining: float | None) -> bool:
        """One attempt on one pooled connection (kept while the lock is held)."""
        conn = self._pool.getconn(timeout=None if remaining is None else max(remaining, 1.0))
        try:
            if remaining == 0.0:
                row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (self.key,)).fetchone()
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

    def _wait(self, conn: psycopg.Connection[Any], remaining: float | None) -> bool:
        ms = 0 if remaining is None else max(1, int(remaining * 1000))
        try:  # a session lock taken in a transaction outlives it; the setting does not
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{ms}ms",))
                if ms:  # the wait asked for, not the connection's statement limit, decides
                    conn.execute(
                        "SELECT set_config('statement_timeout', %s, true)", (f"{ms + 5000}ms",)
                    )
                conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            return True
        except psycopg.errors.LockNotAvailable:
            return False

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


class PostgresTx(Tx):
    """A transaction on a pooled connection (see :meth:`PostgresConnection.transact`)."""

    def __init__(self, conn: Conn, queries: Mapping[str, str]) -> None:
        super().__init__(queries)
        self.conn = conn

    def execute(self, sql: str, params: Mapping[str, Any]) -> Cursor:
        return self.conn.execute(sql, _bind(params))

    def executemany(self, sql: str, rows: list[Mapping[str, Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql, [_bind(r) for r in rows])

    def lock(self, key: str) -> None:
        # the key spelling of every stayfresh release since 0.1: running daemons agree
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"stayfresh:{key}",)
        )

    def wake(self) -> None:
        self.conn.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))


_ARRAYS = (tuple, set, frozenset)


def _bind(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """psycopg parameters: a tuple or set is bound as a list (an array)."""
    for value in params.values():
        if isinstance(value, _ARRAYS):
            return {k: list(v) if isinstance(v, _ARRAYS) else v for k, v in params.items()}
    return params


class PostgresStore(WorkSQL, LibrarySQL, NotifySQL, FreshSQL, AccountsSQL):
    """:class:`~stayfresh.store.Store` on a PostgreSQL database shared by many processes and machines."""

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
        busy_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        """Connect (failing fast when the server is down) and migrate.

        ``busy_timeout``: seconds a statement waits for a lock held by
        another session before :class:`~stayfresh.errors.StoreBusy` (default
        ``STAYFRESH_BUSY_TIMEOUT`` or 30); it is each connection's
        ``lock_timeout``. ``statement_timeout``: the longest any statement may run
        (default ``STAYFRESH_STATEMENT_TIMEOUT`` or 300 s), then
        :class:`~stayfresh.errors.StoreUnavailable`. A database migrated by a newer stayfresh is refused
        (:class:`~stayfresh.errors.SchemaTooNew`) before anything is written.
        """
        self.url = url
        self.location = redact_url(url)
        self.retry_for = retry_for
        self.busy_timeout = _guard.busy_timeout(busy_timeout)
        given = psycopg.conninfo.conninfo_to_dict(url)
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            # a connection gone silent (no reset) is found dead, not waited on; settings
            # in the URL (?keepalives_idle=…) win
            **{k: v for k, v in KEEPALIVES.items() if k not in given},
        }
        self.statement_timeout = _guard.statement_timeout(statement_timeout)
        lock_ms = f"{max(1, round(self.busy_timeout * 1000))}ms"
        statement_ms = f"{max(1, round(self.statement_timeout * 1000))}ms"

        def configure(conn: Conn) -> None:  # every new connection of both pools
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_ms,))
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (statement_ms,))

        self._pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=kwargs,
            open=False,
            name="stayfresh",
            timeout=10.0,
            reconnect_timeout=retry_for,
            configure=configure,
        )
        self._lock_pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url,
            min_size=0,
            max_size=max(1, lock_pool_size),
            kwargs=kwargs,
            open=False,
            name="stayfresh-locks",
            timeout=10.0,
            max_idle=60.0,
            configure=configure,
        )
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
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    # -- connections and retries ------------------------------------------------------

    def _retrying(self, attempt: Callable[[Conn], T]) -> T:
        """Run ``attempt`` on a pooled connection, retrying transient failures with backoff."""
        deadline = time.monotonic() + self.retry_for
        tries = 0
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
            except _CommitUnknown as exc:  # the connection went while committing: look again
                unknown = exc
                cause: BaseException = exc.__cause__ or exc
                transient = True
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                cause, transient = exc, False
            tries += 1
            time.sleep(
                retry_delay(
                    cause,
                    tries=tries,
                    deadline=deadline,
                    location=self.location,
                    busy_timeout=self.busy_timeout,
                    what="database call",
                    transient=transient,
                )
            )

    dialect: Dialect = "postgres"

    def transact(self, body: Callable[[Tx], T]) -> T:
        """Run ``body`` in one transaction (see :meth:`_write_tx`); its result once committed."""
        queries = self.queries
        return self._write_tx(lambda conn: body(PostgresTx(conn, queries)))

    def select(self, name: str, /, **params: Any) -> list[RowLike]:
        """One named autocommit read (retried when the connection is lost)."""
        sql = self.queries[name]

        def attempt(conn: Conn) -> list[RowLike]:
            return list(conn.execute(sql, _bind(params)).fetchall())

        return self._retrying(attempt)

    def _write_tx(self, body: Callable[[Conn], T]) -> T:
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
        find nothing left to do. A current database is only read.
        """
        migrations = load_migrations("postgres")
        self._retrying(lambda conn: migrate_database(conn, migrations, self.location, up_to))
        return self.schema_version()

    def advisory_lock(self, name: str) -> AdvisoryLock:
        """The process's one :class:`AdvisoryLock` object for ``name``."""
        with self._locks_guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = AdvisoryLock(
                    self._lock_pool,
                    name,
                    location=self.location,
                    retry_for=self.retry_for,
                    busy_timeout=self.busy_timeout,
                )
            return lock

    def named_lock(self, name: str) -> RefreshLock:
        return self.advisory_lock(f"stayfresh:{name}")

    def _scrubbed(self, write: Callable[[], bool]) -> bool:
        """An UPDATE leaves the old row version in the table file: ``VACUUM FULL``
        rewrites the table without it. The server's WAL keeps it until recycled."""
        if not write():
            return False
        try:
            self._retrying(lambda conn: conn.execute("VACUUM (FULL) accounts"))
        except (psycopg.Error, StoreError) as exc:
            log.warning("%s: could not rewrite the accounts table: %s", self.location, exc)
        return True

    def wake_runners(self, application_name: str) -> int:
        """NOTIFY the wake channel; how many sessions named ``application_name`` listen."""
        row = self._retrying(
            lambda conn: conn.execute(
                "SELECT pg_notify(%s, '') IS NULL AS sent, (SELECT count(*) FROM"
                " pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()) AS n",
                (WAKE_CHANNEL, application_name),
            ).fetchone()
        )
        return int(row["n"]) if row else 0


def _xact_status(conn: Conn, xid: str) -> str | None:
    row = conn.execute("SELECT pg_xact_status(%s::xid8) AS s", (xid,)).fetchone()
    return None if row is None else row["s"]
