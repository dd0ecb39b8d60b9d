"""One stale token, 200 threads + 200 asyncio tasks + 8 processes, a real rotating server.

The server (oidc-provider, refresh-token rotation on) must see exactly one
refresh; every caller must get the same new access token; nobody may see
``invalid_grant`` (with rotation, a second refresh with the old token would be
rejected and would revoke the whole grant).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from oidc_server import OIDCServerFactory
from stayfresh.store import SQLiteStore
from stayfresh.testing import wait_for
from stayfresh.tokens import Keeper, TokenSet, add_account

UTC = dt.UTC

CHILD = r"""
import json, os, sys, time
from stayfresh.store import SQLiteStore
from stayfresh.tokens import Keeper
go = sys.argv[2]
keeper = Keeper(SQLiteStore(sys.argv[1]), lock_timeout=60)
open(f"{go}.ready.{os.getpid()}", "w").close()  # imported and at the barrier
while not os.path.exists(go):
    time.sleep(0.001)
result = keeper.ensure_valid_token("shared")
print(json.dumps({"token": result.access_token, "refreshed": result.was_refreshed}))
"""


def test_one_refresh_for_threads_tasks_and_processes(
    oidc_server_factory: OIDCServerFactory, tmp_path: Path
) -> None:
    server = oidc_server_factory(access_ttl=600, rotate=True, refresh_delay_ms=300)
    issued = server.obtain_tokens()
    db = tmp_path / "shared.db"
    store = SQLiteStore(db)
    now = dt.datetime.now(UTC)
    add_account(
        store,
        "shared",
        "oauth2",
        {"token_url": server.token_url, "client_id": server.client_id, "client_secret": server.client_secret},
        TokenSet(
            access_token=issued["access_token"],
            refresh_token=issued["refresh_token"],
            expires_at=now - dt.timedelta(seconds=1),  # stale for everyone
            obtained_at=now - dt.timedelta(seconds=601),
        ),
    )
    server.reset_stats()
    go = tmp_path / "go"
    env = dict(os.environ)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    keeper = Keeper(store, lock_timeout=60)
    start = threading.Event()
    thread_tokens: list[str | None] = []
    errors: list[BaseException] = []

    def thread_call() -> None:
        start.wait()
        try:
            thread_tokens.append(keeper.ensure_valid_token("shared").access_token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    async def tasks() -> list[str | None]:
        await asyncio.get_running_loop().run_in_executor(None, start.wait)
        results = await asyncio.gather(*(keeper.aensure_valid_token("shared") for _ in range(200)))
        return [r.access_token for r in results]

    task_tokens: list[str | None] = []
    loop_thread = threading.Thread(target=lambda: task_tokens.extend(asyncio.run(tasks())))
    threads = [threading.Thread(target=thread_call) for _ in range(200)]
    for t in [*threads, loop_thread]:
        t.start()
    wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == 8, what="the children ready")
    go.touch()
    start.set()
    for t in [*threads, loop_thread]:
        t.join(60)
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    child_tokens = [json.loads(out)["token"] for out, _ in outputs]

    assert errors == []
    stats = server.stats()
    assert stats["refresh_grants"] == 1, stats
    assert stats["refresh_failure"] == 0, stats
    everyone = set(thread_tokens) | set(task_tokens) | set(child_tokens)
    assert len(thread_tokens) == 200 and len(task_tokens) == 200 and len(child_tokens) == 8
    assert len(everyone) == 1 and everyone != {issued["access_token"]}
    row = store.get_account("shared")
    assert row is not None and row.version == 2 and row.status == "ok"
    assert row.tokens.refresh_token != issued["refresh_token"]  # rotated, and stored
    keeper.close()
