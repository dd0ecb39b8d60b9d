"""Workers and child scripts for the PostgreSQL scale tests.

``logged`` is imported by name (``pg_scale_helpers:logged``) in daemon
subprocesses, which get ``tests/`` on PYTHONPATH. It writes its own record of
every execution to a ``scale_log`` table (a start row when it begins, an end
row when it returns), independent of the store's run history: a SIGKILLed
attempt leaves a start without an end, which is exactly what the test needs
to tell "re-run of a killed attempt" from "ran twice".
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import psycopg

from stayfresh.work import WorkerContext

_local = threading.local()

SCALE_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS scale_log (id BIGSERIAL PRIMARY KEY, work_id TEXT NOT NULL,"
    " scheduled_at DOUBLE PRECISION NOT NULL, pid INTEGER NOT NULL, event TEXT NOT NULL,"
    " at DOUBLE PRECISION NOT NULL, attempt INTEGER NOT NULL)"
)


def _conn() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["SCALE_LOG_URL"], autocommit=True)
        _local.conn = conn
    return conn


def _log(ctx: WorkerContext, event: str) -> None:
    _conn().execute(
        "INSERT INTO scale_log (work_id, scheduled_at, pid, event, at, attempt)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            ctx.work_id,
            ctx.scheduled_at.timestamp(),
            os.getpid(),
            event,
            time.time(),
            ctx.run_attempt,
        ),
    )


def logged(ctx: WorkerContext) -> None:
    """Record start, work for 20-120 ms, record end."""
    _log(ctx, "start")
    time.sleep(random.uniform(0.02, 0.12))
    _log(ctx, "end")


#: a child process of the single-flight test: wait for the go file, ensure the token
TOKEN_CHILD = r"""
import json, os, sys, time
from stayfresh.store import open_store
from stayfresh.tokens import Keeper
url, go = sys.argv[1], sys.argv[2]
keeper = Keeper(open_store(url), lock_timeout=60)
while not os.path.exists(go):
    time.sleep(0.001)
result = keeper.ensure_valid_token("shared")
print(json.dumps({"token": result.access_token, "refreshed": result.was_refreshed}))
"""
