"""Reading work rows on PostgreSQL: the query half of :class:`PostgresWorkMixin`.

Lookups, the due list, the next wake time and run history: plain reads that
take no row locks. :meth:`_rows` also accepts an open transaction so the
writes half (claiming) can load rows inside its own. The ``Conn`` alias is
shared with :mod:`._postgres_work_writes`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg.rows import DictRow

from ._rows import loads_json, work_from_row
from ._work_base import RunRow, WorkRow, WorkStore

Conn = psycopg.Connection[DictRow]

_WORK_COLUMNS = (
    "id, name, worker, input, periodic, interval, flex, constraints, backoff_policy,"
    " backoff_delay, timeout, state, run_attempt, scheduled_at, next_run_at, run_now,"
    " lease_owner, lease_until, current_run, output, progress, last_outcome, last_error,"
    " last_run_at, created_at, updated_at, finished_at"
)


class PostgresWorkReads(WorkStore):
    """The reading :class:`WorkStore` methods of :class:`PostgresStore`."""

    if TYPE_CHECKING:

        def read(
            self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()
        ) -> list[DictRow]: ...

    def _rows(self, conn: Conn | None, where: str, params: Sequence[Any]) -> list[WorkRow]:
        """Work rows matching ``where``, with their tags and prerequisites."""

        def query(sql: str, args: Sequence[Any]) -> list[DictRow]:
            if conn is not None:
                return conn.execute(sql, tuple(args)).fetchall()
            return self.read(sql, tuple(args))

        # tags and prerequisites come along as arrays: one round trip per call
        rows = query(
            f"SELECT {_WORK_COLUMNS}, ARRAY(SELECT tag FROM work_tags t WHERE t.work_id = work.id"
            " ORDER BY tag) AS tags, ARRAY(SELECT prerequisite_id FROM work_deps d"
            f" WHERE d.work_id = work.id) AS deps FROM work WHERE {where}",
            params,
        )
        return [work_from_row(cast(Any, r), tuple(r["tags"]), tuple(r["deps"])) for r in rows]

    def get_work(self, work_id: str) -> WorkRow | None:
        found = self._rows(None, "id = %s", (work_id,))
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
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if name is not None:
            where.append("name = %s")
            params.append(name)
        if tag is not None:
            where.append("id IN (SELECT work_id FROM work_tags WHERE tag = %s)")
            params.append(tag)
        if id_prefix is not None:
            where.append("left(id, %s) = %s")
            params.extend([len(id_prefix), id_prefix])
        if states is not None:
            where.append("state = ANY(%s)")
            params.append(list(states))
        clause = " AND ".join(where) + " ORDER BY created_at DESC, seq DESC"
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
            skip = " AND (run_now OR constraints <> ALL(%s))"
            params.append(list(skip_constraints))
        params.append(now)
        dead = ""
        if dead_owners:
            dead = (
                " UNION ALL SELECT id FROM work WHERE state = 'RUNNING' AND lease_until > %s"
                " AND lease_owner = ANY(%s)"
            )
            params.extend([now, list(dead_owners)])
        where = (
            f"id IN (SELECT id FROM work WHERE state = 'ENQUEUED' AND next_run_at <= %s{skip}"
            f" UNION ALL SELECT id FROM work WHERE state = 'RUNNING' AND lease_until <= %s{dead})"
            f" ORDER BY next_run_at, seq LIMIT {int(limit)}"
        )
        return self._rows(None, where, params)

    def next_wake_time(self, now: float, *, runner_id: str) -> float | None:
        rows = self.read(
            "SELECT (SELECT MIN(next_run_at) FROM work WHERE state = 'ENQUEUED'"
            " AND next_run_at > %s) AS a, (SELECT MIN(lease_until) FROM work"
            " WHERE state = 'RUNNING' AND lease_until > %s AND lease_owner <> %s) AS b",
            (now, now, runner_id),
        )
        times = [t for t in (rows[0]["a"], rows[0]["b"]) if t is not None]
        return float(min(times)) if times else None

    def work_runs(self, work_ids: Collection[str], *, limit: int = 100) -> list[RunRow]:
        if not work_ids:
            return []
        rows = self.read(
            f"SELECT * FROM work_runs WHERE work_id = ANY(%s) ORDER BY id DESC LIMIT {int(limit)}",
            (list(work_ids),),
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
