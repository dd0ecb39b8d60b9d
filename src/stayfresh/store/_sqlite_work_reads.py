"""Reading work rows on SQLite: the query half of :class:`SQLiteWorkMixin`.

Lookups, the due list, the next wake time and run history. None of these
write, so they go through the store's shared read path instead of a
``BEGIN IMMEDIATE`` transaction; :meth:`_rows` also accepts an open
transaction so the writes half (claiming) can load rows inside its own.
The SQL helpers ``_marks`` and ``_chunks`` live here and are shared with
:mod:`._sqlite_work_writes`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._rows import loads_json, work_from_row
from ._work_base import RunRow, WorkRow, WorkStore

_WORK_COLUMNS = (
    "id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,"
    " backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,"
    " lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,"
    " last_run_at, created_at, updated_at, finished_at"
)


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLiteWorkReads(WorkStore):
    """The reading :class:`WorkStore` methods of :class:`SQLiteStore`."""

    if TYPE_CHECKING:

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[sqlite3.Row]: ...

    def _rows(
        self, conn: sqlite3.Connection | None, where: str, params: Sequence[Any]
    ) -> list[WorkRow]:
        """Work rows matching ``where``, with their tags and prerequisites."""

        def query(sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
            if conn is not None:
                return conn.execute(sql, tuple(args)).fetchall()
            return self.read(sql, tuple(args))

        rows = query(f"SELECT {_WORK_COLUMNS} FROM work WHERE {where}", params)
        tags: dict[str, list[str]] = {}
        deps: dict[str, list[str]] = {}
        for chunk in _chunks([r["id"] for r in rows], 500):
            q = _marks(len(chunk))
            for t in query(f"SELECT work_id, tag FROM work_tags WHERE work_id IN ({q})", chunk):
                tags.setdefault(t[0], []).append(t[1])
            for d in query(
                f"SELECT work_id, prerequisite_id FROM work_deps WHERE work_id IN ({q})", chunk
            ):
                deps.setdefault(d[0], []).append(d[1])
        return [
            work_from_row(r, tuple(sorted(tags.get(r["id"], ()))), tuple(deps.get(r["id"], ())))
            for r in rows
        ]

    def get_work(self, work_id: str) -> WorkRow | None:
        found = self._rows(None, "id = ?", (work_id,))
        return found[0] if found else None

    def find_work(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        states: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[WorkRow]:
        where: list[str] = ["1=1"]
        params: list[Any] = []
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if tag is not None:
            where.append("id IN (SELECT work_id FROM work_tags WHERE tag = ?)")
            params.append(tag)
        if id_prefix is not None:
            where.append("substr(id, 1, ?) = ?")
            params.extend([len(id_prefix), id_prefix])
        if states is not None:
            where.append(f"state IN ({_marks(len(states))})")
            params.extend(states)
        clause = " AND ".join(where) + " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            clause += f" LIMIT {int(limit)}"
        return self._rows(None, clause, params)

    def due_work(
        self,
        now: float,
        *,
        limit: int,
        skip_constraints: Collection[str] = (),
        dead_owners: Collection[str] = (),
    ) -> list[WorkRow]:
        skip = ""
        params: list[Any] = [now]
        if skip_constraints:
            skip = f" AND (run_now = 1 OR constraints NOT IN ({_marks(len(skip_constraints))}))"
            params.extend(skip_constraints)
        params.append(now)
        dead = ""
        if dead_owners:
            dead = (
                " UNION ALL SELECT rowid FROM work WHERE state = 'RUNNING' AND lease_until > ?"
                f" AND lease_owner IN ({_marks(len(dead_owners))})"
            )
            params.extend([now, *dead_owners])
        # two index range scans instead of an OR over the whole table
        where = (
            f"rowid IN (SELECT rowid FROM work WHERE state = 'ENQUEUED' AND next_run_at <= ?{skip}"
            f" UNION ALL SELECT rowid FROM work WHERE state = 'RUNNING' AND lease_until <= ?{dead})"
            f" ORDER BY next_run_at LIMIT {int(limit)}"
        )
        return self._rows(None, where, params)

    def next_wake_time(self, now: float, *, runner_id: str) -> float | None:
        rows = self.read(
            "SELECT (SELECT MIN(next_run_at) FROM work WHERE state = 'ENQUEUED'"
            " AND next_run_at > ?), (SELECT MIN(lease_until) FROM work WHERE state = 'RUNNING'"
            " AND lease_until > ? AND lease_owner != ?)",
            (now, now, runner_id),
        )
        times = [t for t in rows[0] if t is not None]
        return float(min(times)) if times else None

    def work_runs(self, work_ids: Collection[str], *, limit: int = 100) -> list[RunRow]:
        if not work_ids:
            return []
        ids = list(work_ids)
        rows = self.read(
            f"SELECT * FROM work_runs WHERE work_id IN ({_marks(len(ids))})"
            f" ORDER BY id DESC LIMIT {int(limit)}",
            tuple(ids),
        )
        return [
            RunRow(
                id=int(r["id"]),
                work_id=r["work_id"],
                attempt=int(r["attempt"]),
                runner_id=r["runner_id"],
                scheduled_at=float(r["scheduled_at"]),
                started_at=float(r["started_at"]),
                ended_at=r["ended_at"],
                outcome=r["outcome"],
                output=loads_json(r["output"]),
                error=r["error"],
            )
            for r in rows
        ]
