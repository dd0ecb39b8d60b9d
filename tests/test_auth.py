"""The httpx2, legacy httpx and requests integrations against a local API server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import httpx2
import pytest
import requests

from conftest import add_oauth2
from fake_token_server import FakeTokenServer, token_reply
from stayfresh.store import Store
from stayfresh.tokens import Keeper, StayfreshAuth, StayfreshRequestsAuth, legacy_httpx_auth


class ApiServer:
    """Accepts only the bearer token it is told is current; 401 otherwise."""

    def __init__(self) -> None:
        self.valid = "old-access"
        self.seen: list[str | None] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                auth = self.headers.get("authorization")
                outer.seen.append(auth)
                ok = auth == f"Bearer {outer.valid}"
                body = b"ok" if ok else b"no"
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.stop()


@pytest.fixture
def setup(store: Store, token_server: FakeTokenServer, keeper: Keeper) -> Keeper:
    token_server.handler = lambda seen: token_reply(access="new-access", expires_in=3600)
    add_oauth2(store, "acct", token_server.token_url, expires_in=3 * 3600)
    return keeper


def test_httpx2_sync_sends_token_and_retries_once_on_401(
    setup: Keeper, api: ApiServer, token_server: FakeTokenServer
) -> None:
    with httpx2.Client(auth=StayfreshAuth("acct", keeper=setup)) as client:
        assert client.get(api.url).status_code == 200
        assert token_server.count == 0  # valid token: no refresh
        api.valid = "new-access"  # the server revoked the old token early
        response = client.post(api.url, content=b"payload")
        assert response.status_code == 200
    assert token_server.count == 1
    assert api.seen == ["Bearer old-access", "Bearer old-access", "Bearer new-access"]


def test_httpx2_gives_up_after_one_retry(
    setup: Keeper, api: ApiServer, token_server: FakeTokenServer
) -> None:
    api.valid = "never-issued"
    with httpx2.Client(auth=StayfreshAuth("acct", keeper=setup)) as client:
        assert client.get(api.url).status_code == 401
    assert token_server.count == 1
    assert len(api.seen) == 2


def test_httpx2_async(setup: Keeper, api: ApiServer, token_server: FakeTokenServer) -> None:
    async def main() -> list[int]:
        async with httpx2.AsyncClient(auth=StayfreshAuth("acct", keeper=setup)) as client:
            first = (await client.get(api.url)).status_code
            api.valid = "new-access"
            second = (await client.get(api.url)).status_code
            return [first, second]

    assert asyncio.run(main()) == [200, 200]
    assert token_server.count == 1


def test_legacy_httpx_client(setup: Keeper, api: ApiServer, token_server: FakeTokenServer) -> None:
    auth = legacy_httpx_auth("acct", keeper=setup)
    assert isinstance(auth, httpx.Auth)
    with httpx.Client(auth=auth) as client:
        assert client.get(api.url).status_code == 200
        api.valid = "new-access"
        assert client.get(api.url).status_code == 200
    assert token_server.count == 1


def test_requests_auth(setup: Keeper, api: ApiServer, token_server: FakeTokenServer) -> None:
    auth = StayfreshRequestsAuth("acct", keeper=setup)
    with requests.Session() as session:
        assert session.get(api.url, auth=auth).status_code == 200
        api.valid = "new-access"
        response = session.post(api.url, data=b"payload", auth=auth)
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [401]
    assert token_server.count == 1
    assert api.seen[-1] == "Bearer new-access"


def test_stale_token_refreshed_before_the_request(
    store: Store, token_server: FakeTokenServer, keeper: Keeper, api: ApiServer
) -> None:
    token_server.handler = lambda seen: token_reply(access="new-access", expires_in=3600)
    add_oauth2(store, "acct", token_server.token_url, expires_in=60)  # inside 30 min
    api.valid = "new-access"
    assert (
        requests.get(api.url, auth=StayfreshRequestsAuth("acct", keeper=keeper)).status_code == 200
    )
    assert api.seen == ["Bearer new-access"]
    assert token_server.count == 1
