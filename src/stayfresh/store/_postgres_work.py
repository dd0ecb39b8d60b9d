"""SQL of the work engine on PostgreSQL, mixed into :class:`PostgresStore`.

SQLite serialises every writer; PostgreSQL does not, so each method takes
exactly the row locks its decision depends on (READ COMMITTED re-checks a
locked row's conditions on its newest version):

- claiming reads candidates ``FOR UPDATE SKIP LOCKED``: two daemons never
  wait on each other and never both take a work;
- unique-work policies first take a transaction advisory lock on the unique
  name, so two concurrent ``keep`` enqueues cannot both insert;
- cancelling and finishing lock the rows they change, and unblocking a
  dependent locks it first, so two prerequisites finishing at once cannot
  both see the other unfinished and leave the dependent BLOCKED forever.

Enqueue, cancel, run-now, and a finish that re-enqueues or unblocks work,
``NOTIFY`` the wake channel in their transaction: every daemon listening
(``stayfresh.work._control``) looks again once it commits, on any host.

The SQL is split by responsibility: :mod:`._postgres_work_reads` holds the
queries, :mod:`._postgres_work_writes` the state changes; this module combines
them under the name the store (and the rest of the code) imports, and
re-exports the wake channel.
"""

from __future__ import annotations

from ._postgres_work_reads import PostgresWorkReads
from ._postgres_work_writes import WAKE_CHANNEL, PostgresWorkWrites, wake_runners

__all__ = ["WAKE_CHANNEL", "PostgresWorkMixin", "wake_runners"]


class PostgresWorkMixin(PostgresWorkReads, PostgresWorkWrites):
    """The :class:`WorkStore` methods of :class:`PostgresStore`."""
