"""A claim that waited for the database does not commit a lease that already ran out.

Real PostgreSQL, two runners (as two daemons), 3 s leases, works running 5 s.
While the works come due an administrator holds the work table locked for
6 s, longer than a lease: every read and claim of both runners waits. Each
due work must still run exactly once — no run taken over as ``lost`` and run
again. The negative control turns the fence off (``WAIT_COUNTED``) and sees
the double run the issue reported.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from stayfresh.store import PostgresStore
from stayfresh.work import Runner, WorkManager, WorkRequest

LEASE = 3.0
LOCKED_FOR = 6.0


def run_with_a_locked_table(url: str) -> dict[str, list[str]]:
    """Each work's run outcomes after two runners rode out a table lock longer than a lease."""
    import psycopg

    stores = [PostgresStore(url, retry_for=30) for _ in range(2)]
    runners = [Runner(s, lease_seconds=LEASE, grace=10, environ=dict(os.environ)) for s in stores]
    manager = WorkManager(stores[0])
    names = [f"w{i}" for i in range(4)]
    for name in names:
        manager.enqueue(
            WorkRequest.one_time("work_helpers:sleep_a_while", input={"seconds": 5.0}),
            name=name,
        )
    holding = threading.Event()

    def hold_the_table() -> None:
        with psycopg.connect(url, autocommit=True) as admin, admin.transaction():
            admin.execute("LOCK TABLE work IN ACCESS EXCLUSIVE MODE")
            holding.set()
            time.sleep(LOCKED_FOR)

    locker = threading.Thread(target=hold_the_table)
    locker.start()
    assert holding.wait(10)
    for runner in runners:
        runner.start()
    try:
        locker.join(30)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            infos = [manager.by_name(n) for n in names]
            if all(i and i[0].state.value == "SUCCEEDED" for i in infos):
                break
            time.sleep(0.2)
    finally:
        for runner in runners:
            runner.stop(grace=10)
    outcomes = {}
    for name in names:
        [info] = manager.by_name(name)
        outcomes[name] = sorted(r.outcome for r in stores[0].work_runs([info.id], limit=100))
    for s in stores:
        s.close()
    return outcomes


def test_a_table_locked_longer_than_a_lease_runs_each_work_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAYFRESH_MIN_INTERVAL", "1")
    outcomes = run_with_a_locked_table(pg_url)
    assert outcomes == {f"w{i}": ["success"] for i in range(4)}
