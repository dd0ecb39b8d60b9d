"""stayfresh.testing: the helpers users' tests (and these tests) rely on."""

from __future__ import annotations

import datetime as dt
import os

import httpx2
import pytest

from stayfresh.store import Store
from stayfresh.testing import (
    FakeClock,
    LocalHTTPServer,
    LocalTokenServer,
    Request,
    Response,
    temporary_store,
    wait_for,
)
from stayfresh.tokens import Keeper, TokenSet, add_account

UTC = dt.UTC


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(1_000.0)
    assert clock() == 1_000.0
    assert clock.advance(30) == 1_030.0 and clock() == 1_030.0
    assert clock.advance(-10) == 1_020.0  # wall clocks go back too
    assert clock.set(dt.datetime.fromtimestamp(5_000, UTC)) == 5_000.0
    assert clock.set(7) == 7.0 and clock() == 7.0
    assert abs(FakeClock()() - dt.datetime.now(UTC).timestamp()) < 60


def test_wait_for_returns_the_value_or_names_what_never_came() -> None:
    values = iter([0, None, "ready"])
    assert wait_for(lambda: next(values), 5, interval=0) == "ready"
    with pytest.raises(AssertionError, match="timed out after 0 s waiting for the moon"):
        wait_for(lambda: False, 0, what="the moon")


def test_local_http_server_answers_with_the_handler_and_logs_requests() -> None:
    def handler(request: Request) -> Response:
        if request.path == "/json":
            return Response(201, {"got": request.form})
        if request.path == "/drop":
            return Response(drop=True)
        if request.path == "/stream":
            return Response(headers={"Content-Length": "6"}, stream=iter([b"abc", b"def"]))
        return Response(418, "teapot", {"X-Kind": "tea"})

    with LocalHTTPServer(handler) as server, httpx2.Client(base_url=server.url) as client:
        answer = client.post("/json", data={"a": "1"})
        assert (answer.status_code, answer.json()) == (201, {"got": {"a": "1"}})
        assert answer.headers["content-type"] == "application/json" and answer.headers["date"]
        teapot = client.get("/other?q=1", headers={"X-Test": "yes"})
        assert (teapot.status_code, teapot.text, teapot.headers["x-kind"]) == (418, "teapot", "tea")
        assert client.get("/stream").content == b"abcdef"
        with pytest.raises(httpx2.HTTPError):
            client.get("/drop")
        assert [r.method for r in server.requests] == ["POST", "GET", "GET", "GET"]
        assert server.count == 4 and server.requests[1].headers["x-test"] == "yes"
        assert [r.path for r in server.seen("/other")] == ["/other?q=1"]
        assert server.requests[0].form == {"a": "1"} and server.requests[1].json() is None
    server.stop()  # twice is fine


def test_local_http_server_without_handler_is_404() -> None:
    with LocalHTTPServer() as server:
        assert httpx2.get(server.url + "/x").status_code == 404


def test_local_token_server_rotates_and_rejects_reuse() -> None:
    with LocalTokenServer(access_ttl=60, client_id="c", client_secret="s") as server:
        first = server.issue_refresh_token()
        form = {"grant_type": "refresh_token", "refresh_token": first}
        ok = httpx2.post(server.token_url, data=form, auth=("c", "s"))
        assert ok.status_code == 200 and ok.json()["expires_in"] == 60
        assert ok.json()["refresh_token"] != first
        reused = httpx2.post(server.token_url, data=form, auth=("c", "s"))
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        wrong = httpx2.post(server.token_url, data=form, auth=("c", "nope"))
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
        assert (server.refreshes, server.rejected, server.count) == (1, 1, 3)


def test_a_keeper_refreshes_against_the_local_token_server() -> None:
    """The README's example: fake clock, local token endpoint, temporary store."""
    with LocalTokenServer(access_ttl=600) as server, temporary_store() as store:
        now = dt.datetime.now(UTC)
        add_account(
            store,
            "demo",
            "oauth2",
            {"token_url": server.token_url, "client_id": server.client_id,
             "client_secret": server.client_secret},
            TokenSet(access_token="at-0", refresh_token=server.issue_refresh_token(),
                     expires_at=now + dt.timedelta(seconds=600), obtained_at=now),
        )  # fmt: skip
        clock = FakeClock(now.timestamp())
        keeper = Keeper(store, clock=clock)
        try:
            assert keeper.ensure_valid_token("demo").was_refreshed is False
            clock.advance(301)  # past half the token's life
            assert keeper.ensure_valid_token("demo").was_refreshed is True
        finally:
            keeper.close()
        assert server.refreshes == 1


def test_temporary_store_is_a_fresh_sqlite_file_removed_afterwards() -> None:
    with temporary_store() as store:
        assert isinstance(store, Store) and store.list_accounts() == []
        location = str(store.location)
        assert os.path.exists(location.removeprefix("sqlite:///"))
    assert not os.path.exists(location.removeprefix("sqlite:///"))
    assert not os.path.exists(os.path.dirname(location.removeprefix("sqlite:///")))


@pytest.mark.postgres
def test_temporary_store_on_postgresql(pg_url: str) -> None:
    with temporary_store(pg_url) as store:
        assert store.list_accounts() == []
        assert str(store.location).startswith("postgresql://")
