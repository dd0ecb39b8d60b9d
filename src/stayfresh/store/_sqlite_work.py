"""SQL of the work engine on SQLite, mixed into :class:`SQLiteStore`.

Every state change runs in one ``BEGIN IMMEDIATE`` transaction, which takes
SQLite's write lock at the start: claiming is "read the candidates, update
them" with no other writer in between, so two runner processes can never
claim the same work. The transactions are short (no worker code runs inside).

The SQL is split by responsibility: :mod:`._sqlite_work_reads` holds the
queries, :mod:`._sqlite_work_writes` the state changes; this module combines
them under the name the store (and the rest of the code) imports.
"""

from __future__ import annotations

from ._sqlite_work_reads import SQLiteWorkReads
from ._sqlite_work_writes import SQLiteWorkWrites


class SQLiteWorkMixin(SQLiteWorkReads, SQLiteWorkWrites):
    """The :class:`WorkStore` methods of :class:`SQLiteStore`."""
