"""The one transaction shape both backends share, and the named queries it runs.

Every write is ``store.transact(body)``: ``body`` receives a :class:`Tx` and
runs named statements in it (``tx.all``, ``tx.one``, ``tx.run``,
``tx.many``); its result is returned once the transaction has committed.
Reads outside a transaction are ``store.select(name, **params)``. The body
may run more than once — PostgreSQL re-runs it on a fresh connection after a
lost one, never twice successfully — so it touches only the database.

What differs between the backends is below this line and small: how a
transaction is opened and retried, how a list is bound, how a lock between
processes is taken (:meth:`Tx.lock`, :meth:`SQLBase.named_lock`) and how
runners are woken (:meth:`Tx.wake`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._contracts import RefreshLock
from ._queries import load
from ._rows import RowLike

if TYPE_CHECKING:
    from ._queries import Dialect

T = TypeVar("T")


class Cursor(Protocol):
    """What both drivers' cursors give back."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Tx(abc.ABC):
    """One open write transaction; statements are named (see :mod:`._queries`)."""

    def __init__(self, queries: Mapping[str, str]) -> None:
        self.queries = queries

    @abc.abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any]) -> Cursor:
        """Run one statement's text (already in this driver's dialect)."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: list[Mapping[str, Any]]) -> None:
        """Run one statement's text once per parameter set."""

    def all(self, name: str, /, **params: Any) -> list[RowLike]:
        rows: list[RowLike] = self.execute(self.queries[name], params).fetchall()
        return rows

    def one(self, name: str, /, **params: Any) -> RowLike | None:
        row: RowLike | None = self.execute(self.queries[name], params).fetchone()
        return row

    def run(self, name: str, /, **params: Any) -> int:
        """Run a statement; the number of rows it changed."""
        return self.execute(self.queries[name], params).rowcount

    def many(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = list(rows)
        if batch:
            self.executemany(self.queries[name], batch)

    def lock(self, key: str) -> None:  # noqa: B027 (a hook: a no-op by default)
        """Serialise with every other transaction locking ``key`` until this one ends.

        Nothing to do on SQLite, where a write transaction already excludes
        every other writer; a transaction advisory lock on PostgreSQL.
        """

    def wake(self) -> None:  # noqa: B027 (a hook: a no-op by default)
        """Wake the runners once this transaction commits (PostgreSQL ``NOTIFY``).

        Nothing to do on SQLite: runners there watch the database file.
        """


class SQLBase(abc.ABC):
    """What the shared store methods need from a backend."""

    dialect: Dialect
    #: a short human label: the file path or the server's address (no password)
    location: str

    @property
    def queries(self) -> Mapping[str, str]:
        """This backend's statements by name (read and translated once per process)."""
        return load(self.dialect)

    @abc.abstractmethod
    def transact(self, body: Callable[[Tx], T]) -> T:
        """Run ``body`` in one write transaction; its result once committed."""

    @abc.abstractmethod
    def select(self, name: str, /, **params: Any) -> list[RowLike]:
        """One named read outside any explicit transaction."""

    def select_one(self, name: str, /, **params: Any) -> RowLike | None:
        rows = self.select(name, **params)
        return rows[0] if rows else None

    @abc.abstractmethod
    def named_lock(self, name: str) -> RefreshLock:
        """The process's one lock object for ``name``, shared by every process."""

    def schema_version(self) -> int:
        """The highest migration applied."""
        row = self.select_one("schema_version")
        return int(row["v"] or 0) if row else 0
