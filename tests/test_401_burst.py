"""A burst of 401s for one token makes exactly one refresh: threads, tasks, processes.

The API server below refuses the old token. Every caller sends the old token
first (it has not expired, so nothing refreshes it beforehand), gets 401, and
asks for a refresh naming the token that was refused. The token endpoint must
see one refresh, however the 401s are spread:

- ``after``: one caller's 401 comes first; everyone else's 401 is held until
  the new token has been used successfully, i.e. after the first refresh is
  over. A refresh that did not carry the rejected token would start again.
- ``during``: every caller gets its 401 at once and the refresh is held until
  all of them have been answered: the callers join the flight in progress.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests

from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from stayfresh.store import SQLiteStore, Store
from stayfresh.testing import LocalHTTPServer, Request, Response
from stayfresh.tokens import Keeper, StayfreshAuth, StayfreshRequestsAuth, TokenSet, add_account

UTC = dt.UTC
OLD, NEW = "old-access", "new-access"
GUARD = 60.0  # seconds: only against hangs


class BurstApi(LocalHTTPServer):
    """Accepts ``NEW``; answers ``OLD`` with 401 once ``callers`` requests carried it."""

    def __init__(self, callers: int, wave: str) -> None:
        super().__init__(backlog=128)  # every caller connects at once
        self.callers = callers
        self.wave = wave
        self.old_seen = 0
        self.refused = 0
        self.all_old_arrived = threading.Event()
        self.all_refused = threading.Event()
        self.new_used = threading.Event()
        self.first_refusal = threading.Lock()
        self.start()

    @property
    def url(self) -> str:
        """The protected resource: ``http://127.0.0.1:PORT/data``."""
        return f"http://127.0.0.1:{self.port}/data"

    def handle(self, request: Request) -> Response:
        return Response(self.answer(request.headers.get("authorization")))

    def answer(self, authorization: str | None) -> int:
        if authorization == f"Bearer {NEW}":
            self.new_used.set()
            return 200
        with self.lock:
            self.old_seen += 1
            if self.old_seen >= self.callers:
                self.all_old_arrived.set()
        assert self.all_old_arrived.wait(GUARD)  # everyone has sent the old token
        if self.wave == "after" and not self.first_refusal.acquire(blocking=False):
            assert self.new_used.wait(GUARD)  # the first refresh is over
        with self.lock:
            self.refused += 1
            if self.refused >= self.callers:
                self.all_refused.set()
        return 401


def refresh_handler(api: BurstApi) -> Any:
    def handler(seen: Seen) -> Reply:
        if api.wave == "during":
            api.all_refused.wait(GUARD)  # every caller has its 401 before the refresh ends
        return token_reply(access=NEW, expires_in=3600)

    return handler


def add_account_with_old_token(store: Store, token_url: str) -> None:
    now = dt.datetime.now(UTC)
    add_account(
        store,
        "acct",
        "oauth2",
        {"token_url": token_url, "client_id": "client", "client_secret": "secret"},
        TokenSet(
            access_token=OLD,
            refresh_token="refresh",
            expires_at=now + dt.timedelta(hours=3),  # valid: only the server knows it is not
            obtained_at=now,
        ),
    )


@pytest.fixture(params=["after", "during"])
def wave(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def servers(
    wave: str, request: pytest.FixtureRequest
) -> Iterator[tuple[BurstApi, FakeTokenServer]]:
    callers = getattr(request, "param", 50)
    api = BurstApi(callers, wave)
    tokens = FakeTokenServer(refresh_handler(api)).start()
    yield api, tokens
    tokens.stop()
    api.stop()


@pytest.mark.parametrize("library", ["httpx2", "requests"])
def test_threads(store: Store, servers: tuple[BurstApi, FakeTokenServer], library: str) -> None:
    api, token_server = servers
    add_account_with_old_token(store, token_server.token_url)
    keeper = Keeper(store, timeout=GUARD, lock_timeout=GUARD)
    statuses: list[int] = []

    def call() -> None:
        if library == "requests":
            auth = StayfreshRequestsAuth("acct", keeper=keeper)
            with requests.Session() as session:
                statuses.append(session.get(api.url, auth=auth, timeout=GUARD).status_code)
            return
        with httpx2.Client(auth=StayfreshAuth("acct", keeper=keeper), timeout=GUARD) as client:
            statuses.append(client.get(api.url).status_code)

    threads = [threading.Thread(target=call) for _ in range(api.callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD)
    keeper.close()
    assert statuses == [200] * api.callers
    assert token_server.count == 1


def test_asyncio_tasks(store: Store, servers: tuple[BurstApi, FakeTokenServer]) -> None:
    api, token_server = servers
    add_account_with_old_token(store, token_server.token_url)
    keeper = Keeper(store, timeout=GUARD, lock_timeout=GUARD)

    async def main() -> list[int]:
        limits = httpx2.Limits(max_connections=api.callers)
        auth = StayfreshAuth("acct", keeper=keeper)
        async with httpx2.AsyncClient(auth=auth, timeout=GUARD, limits=limits) as client:
            replies = await asyncio.gather(*(client.get(api.url) for _ in range(api.callers)))
        return [r.status_code for r in replies]

    assert asyncio.run(main()) == [200] * api.callers
    keeper.close()
    assert token_server.count == 1


CHILD = r"""
import sys
import httpx2
from stayfresh.store import open_store
from stayfresh.tokens import Keeper, StayfreshAuth
keeper = Keeper(open_store(sys.argv[1]), timeout=60, lock_timeout=60)
with httpx2.Client(auth=StayfreshAuth("acct", keeper=keeper), timeout=60) as client:
    print(client.get(sys.argv[2]).status_code)
keeper.close()
"""


@pytest.mark.slow  # ten client processes
@pytest.mark.parametrize("servers", [10], indirect=True)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes(
    backend: str,
    servers: tuple[BurstApi, FakeTokenServer],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    api, token_server = servers
    if backend == "sqlite":
        db = str(tmp_path / "burst.db")
        store: Store = SQLiteStore(db)
    else:
        from stayfresh.store._postgres import PostgresStore

        db = request.getfixturevalue("pg_url")
        store = PostgresStore(db, retry_for=10)
    add_account_with_old_token(store, token_server.token_url)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, db, api.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(api.callers)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    store.close()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "200", err
    assert token_server.count == 1
