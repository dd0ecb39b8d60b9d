"""The httpx2, legacy httpx and requests integrations against a local API server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import httpx2
import pytest
import requests

from conftest import add_oauth2
from fake_token_server import FakeTokenServer, token_reply
from stayfresh.store import Store
from stayfresh.testing import LocalHTTPServer, Request, Response
from stayfresh.tokens import Keeper, StayfreshAuth, StayfreshRequestsAuth, legacy_httpx_auth


class ApiServer(LocalHTTPServer):
    """Accepts only the bearer token it is told is current; 401 otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.valid = "old-access"
        self.seen: list[str | None] = []
        self.start()

    @property
    def url(self) -> str:
        """The protected resource: ``http://127.0.0.1:PORT/data``."""
        return f"http://127.0.0.1:{self.port}/data"

    def handle(self, request: Request) -> Response:
        auth = request.headers.get("authorization")
        self.seen.append(auth)
        ok = auth == f"Bearer {self.valid}"
        return Response(200 if ok else 401, b"ok" if ok else b"no")


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
