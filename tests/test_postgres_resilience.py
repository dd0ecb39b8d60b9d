"""A runner on PostgreSQL rides out lost connections and a server restart.

An in-process :class:`Runner` on a :class:`PostgresStore` runs periodic work
while the test cuts every connection of its database (as a network cut or
an administrator would) and then restarts the server. The runner must keep
running, its LISTEN connection must come back (a work enqueued by another
store afterwards wakes it at once), and no period may run twice.
"""

from __future__ import annotations

import collections
import os
import time

import pytest

from pg_server import PGServer
from stayfresh.store import PostgresStore
from stayfresh.work import Runner, WorkManager, WorkRequest
from stayfresh.work._pg_wake import APPLICATION_NAME
from work_helpers import CALLS


def _listeners(store: PostgresStore) -> int:
    import psycopg

    with psycopg.connect(store.url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def _wait(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_runner_survives_connection_loss_and_restart(
    pg_server: PGServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAYFRESH_MIN_INTERVAL", "1")
    url = pg_server.create_database()
    store = PostgresStore(url, retry_for=60)
    other = PostgresStore(url, retry_for=60)
    runner = Runner(store, lease_seconds=5, grace=2, environ=dict(os.environ))
    CALLS.clear()
    runner.start()
    try:
        assert _wait(lambda: _listeners(other) == 1)
        manager = WorkManager(other)
        for i in range(10):
            manager.enqueue(WorkRequest.periodic_every("work_helpers:ok", 1.0), name=f"p{i}")
        assert _wait(lambda: len(CALLS) >= 10, 10), "NOTIFY from another store did not wake it"
        assert runner.stats["socket"] >= 1

        pg_server.terminate_connections(url)  # every connection, the listener's too
        time.sleep(2.5)
        pg_server.restart()  # the server is gone for a moment
        time.sleep(2.5)
        assert runner._thread is not None and runner._thread.is_alive()
        assert _wait(lambda: _listeners(other) == 1), "the listener did not reconnect"

        # woken at once by a NOTIFY after reconnecting: a one-time work from "another host"
        before = len(CALLS)
        manager.enqueue(WorkRequest.one_time("work_helpers:ok"), name="after-restart")
        assert _wait(lambda: any(c[0] == "after-restart" for c in CALLS[before:]), 5)
        time.sleep(1.5)
    finally:
        runner.stop(grace=2)
    assert not runner._thread.is_alive()
    periods: collections.Counter[tuple[str, float]] = collections.Counter()
    lost = 0
    for work in other.find_work():
        for run in other.work_runs([work.id], limit=1000):
            if run.outcome == "success":
                periods[(work.id, run.scheduled_at)] += 1
            lost += run.outcome == "lost"
    assert periods and max(periods.values()) == 1, "a period ran twice"
    last = max(r.started_at for w in other.find_work() for r in other.work_runs([w.id]))
    assert last > time.time() - 5, "work stopped running after the restart"
    assert lost == 0  # the runner kept its leases: nothing was taken over
    store.close()
    other.close()
