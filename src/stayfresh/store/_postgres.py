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

import logging
from collections.abc import Callable

import psycopg

from ..errors import StoreError
from ._accounts import AccountsSQL
from ._library import LibrarySQL
from ._notify import NotifySQL
from ._postgres_conn import DEFAULT_RETRY_FOR as DEFAULT_RETRY_FOR  # re-exported
from ._postgres_conn import WAKE_CHANNEL, PostgresConnection
from ._work import WorkSQL

log = logging.getLogger(__name__)


class PostgresStore(
    PostgresConnection,
    WorkSQL,
    LibrarySQL,
    NotifySQL,
    AccountsSQL,
):
    """:class:`Store` on a PostgreSQL database shared by many processes and machines."""

    #: runners LISTEN here; ``stayfresh.work`` picks its PostgreSQL waker by this attribute
    wake_channel = WAKE_CHANNEL

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
