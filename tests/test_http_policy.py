"""The one outbound HTTP policy against servers that misbehave on purpose.

Every test talks to a real socket (``hostile_server``); store-touching tests
run on SQLite and PostgreSQL. What must hold: credentials never cross an
origin, answers are capped, timeouts are total deadlines, errors name the host
and never the secrets, and nothing reaches the store from a bad answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import email.utils
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import add_oauth2
from hostile_server import (
    HostileServer,
    drip,
    echo,
    endless,
    length_lie,
    redirect,
    respond,
    slow_headers,
)
from stayfresh._http import (
    API_MAX_BYTES,
    TOKEN_MAX_BYTES,
    fetch,
    new_client,
    show_url,
)
from stayfresh._retry import MAX_RETRY_AFTER, backoff_delay, parse_retry_after
from stayfresh.errors import (
    ProviderError,
    ResponseTooLarge,
    TransientError,
    UnsafeRedirect,
)
from stayfresh.jobs import LibrarySync
from stayfresh.store import SQLiteStore, Store
from stayfresh.testing import wait_for
from stayfresh.tokens import Keeper, NewAccount, TokenSet, add_account, login_device

NAME = "acct"
SECRET = "s3cr3t-refresh-token"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """(a store, its location for ``--db``) on each backend."""
    if request.param == "sqlite":
        location = str(tmp_path / "policy.db")
        s: Store = SQLiteStore(location)
    else:
        from stayfresh.store._postgres import PostgresStore

        location = request.getfixturevalue("pg_url")
        s = PostgresStore(location, retry_for=10)
    yield s, location
    s.close()


def tokens_of(store: Store) -> Any:
    row = store.get_account(NAME)
    assert row is not None
    return row.tokens


def expired_account(store: Store, token_url: str) -> Any:
    add_oauth2(store, NAME, token_url, expires_in=-60, refresh=SECRET)
    return tokens_of(store)


def configure_library(store: Store, url: str) -> None:
    row = store.get_account(NAME)
    assert row is not None
    library = {"url": url, "items": "items", "page_size": 10}
    store.update_config(NAME, {**row.config, "library_source": "json", "library": library})


def sync(store: Store, **options: Any) -> Any:
    keeper = Keeper(store, timeout=5.0)
    syncer = LibrarySync(keeper, sleep=lambda s: None, **options)
    try:
        return syncer.run(NAME)
    finally:
        syncer.close()
        keeper.close()


# -- no credential crosses an origin --------------------------------------------------------


@pytest.mark.parametrize("header", ["Authorization", "x-amz-access-token"])
def test_credentials_are_not_sent_to_another_origin(
    evil: HostileServer, other: HostileServer, header: str
) -> None:
    evil.route("/api", redirect(other.url("/steal"), status=307))
    other.route("/steal", echo())
    with new_client() as client, pytest.raises(UnsafeRedirect) as info:
        fetch(
            client, "GET", evil.url("/api"), credentials={header: SECRET},
            timeout=10, max_bytes=API_MAX_BYTES,
        )  # fmt: skip
    assert other.requests == []  # nothing at all went there, credential or not
    assert "another origin" in str(info.value) and SECRET not in str(info.value)


def test_same_origin_redirects_keep_their_credentials(evil: HostileServer) -> None:
    evil.route("/old", redirect("/new", status=301)).route("/new", echo())
    with new_client() as client:
        answer = fetch(
            client, "GET", evil.url("/old"), credentials={"x-amz-access-token": SECRET},
            timeout=10, max_bytes=API_MAX_BYTES,
        )  # fmt: skip
    assert answer.status_code == 200
    assert answer.url == evil.url("/new")
    assert b'"x-amz-access-token": "' + SECRET.encode() in answer.content


def test_a_redirect_without_credentials_follows_but_never_carries_cookies(
    evil: HostileServer, other: HostileServer
) -> None:
    # same host, another port: cookie jars match on host only, so a jar would send it
    evil.route("/file", redirect(other.url("/cdn"), headers={"Set-Cookie": "session=abc"}))
    other.route("/cdn", echo())
    with new_client() as client:
        answer = fetch(client, "GET", evil.url("/file"), timeout=10, max_bytes=API_MAX_BYTES)
        again = fetch(client, "GET", other.url("/cdn"), timeout=10, max_bytes=API_MAX_BYTES)
    assert answer.status_code == 200 and again.status_code == 200
    assert all("cookie" not in r.headers for r in other.requests)


def test_https_to_http_is_refused_even_within_a_host() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.scheme == "https":
            return httpx2.Response(302, headers={"Location": "http://api.example/next"})
        raise AssertionError("followed a downgrade to http")

    transport = httpx2.MockTransport(handler)
    with httpx2.Client(transport=transport) as client, pytest.raises(UnsafeRedirect, match="http"):
        fetch(client, "GET", "https://api.example/x", timeout=5, max_bytes=1000)


def test_the_token_endpoint_never_follows_a_redirect(
    evil: HostileServer, other: HostileServer, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    evil.route("/token", redirect(other.url("/token"), status=307))
    other.route("/token", respond(200, {"access_token": "stolen", "expires_in": 60}))
    before = expired_account(store, evil.url("/token"))
    keeper = Keeper(store, timeout=5.0)
    try:
        with pytest.raises(ProviderError, match="307"):
            keeper.ensure_valid_token(NAME)
        keeper.forget()
        with pytest.raises(ProviderError, match="307"):
            asyncio.run(keeper.aensure_valid_token(NAME))
        assert tokens_of(store) == before
    finally:
        keeper.close()
        store.close()
    assert other.requests == []


@pytest.mark.parametrize("provider", ["oauth2", "amazon"])
def test_a_library_redirected_away_fails_and_stores_nothing(
    db: tuple[Store, str], evil: HostileServer, other: HostileServer, provider: str
) -> None:
    """Audible's token header (``x-amz-access-token``) is a credential like Authorization."""
    store, _ = db
    evil.route("/token", respond(200, {"access_token": "fresh", "expires_in": 3600}))
    for path in ("/lib", "/1.0/library"):
        evil.route(path, redirect(other.url("/lib")))
    other.route("/lib", respond(200, {"items": []}))  # an empty, foreign library
    if provider == "amazon":
        add_account(
            store, NAME, "amazon", {"token_url": evil.url("/token"), "api_url": evil.origin},
            TokenSet(access_token="amz-access", refresh_token=SECRET, expires_at=None),
        )  # fmt: skip
    else:
        expired_account(store, evil.url("/token"))
        configure_library(store, evil.url("/lib"))
    with pytest.raises(UnsafeRedirect):
        sync(store)
    assert other.requests == []
    state = store.get_library_sync(NAME)
    assert state is None or state.state == "running"  # never reported finished
    assert store.get_library_item(NAME, "1") is None


# -- bounded size -------------------------------------------------------------------------------


def test_an_endless_token_answer_is_cut_at_its_cap_and_nothing_changes(
    db: tuple[Store, str], evil: HostileServer
) -> None:
    store, _ = db
    evil.route("/token", endless())
    before = expired_account(store, evil.url("/token"))
    keeper = Keeper(store, timeout=30.0)
    try:
        with pytest.raises(ResponseTooLarge, match=f"{TOKEN_MAX_BYTES} bytes"):
            keeper.ensure_valid_token(NAME)
        keeper.forget()
        with pytest.raises(ResponseTooLarge):
            asyncio.run(keeper.aensure_valid_token(NAME))
    finally:
        keeper.close()
    assert tokens_of(store) == before


def test_a_content_length_above_the_cap_is_refused_before_reading(evil: HostileServer) -> None:
    evil.route("/token", length_lie(announced=10**12, stall=True))
    with new_client() as client, pytest.raises(ResponseTooLarge, match="announces"):
        fetch(client, "POST", evil.url("/token"), timeout=30, max_bytes=TOKEN_MAX_BYTES)


def test_an_endless_library_page_fails_typed_and_stores_nothing(
    db: tuple[Store, str], evil: HostileServer
) -> None:
    store, _ = db
    evil.route("/token", respond(200, {"access_token": "fresh", "expires_in": 3600}))
    evil.route("/lib", endless(limit=API_MAX_BYTES + 10 * 1024 * 1024))
    expired_account(store, evil.url("/token"))
    configure_library(store, evil.url("/lib"))
    with pytest.raises(ResponseTooLarge):
        sync(store)
    state = store.get_library_sync(NAME)
    assert state is None or (state.state == "running" and state.pages == 0)


def test_login_endpoints_are_capped_too(evil: HostileServer, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    evil.route("/device", endless(limit=TOKEN_MAX_BYTES * 20))
    config = {
        "client_id": "c", "token_url": evil.url("/token"),
        "device_authorization_endpoint": evil.url("/device"),
    }  # fmt: skip
    try:
        with pytest.raises(ResponseTooLarge):
            login_device(store, "new", new_account=NewAccount(provider="oauth2", config=config))
        assert store.get_account("new") is None
    finally:
        store.close()
    assert evil.seen("/token") == []


_RSS_CHILD = textwrap.dedent(
    """
    import sys
    from stayfresh.errors import ResponseTooLarge
    from stayfresh.jobs import LibrarySync
    from stayfresh.store import SQLiteStore
    from stayfresh.tokens import Keeper, NewAccount, TokenSet, add_account, login_device

    keeper = Keeper(SQLiteStore(sys.argv[1]), timeout=120.0)
    capped = 0
    try:
        keeper.ensure_valid_token("tok")
    except ResponseTooLarge:
        capped += 1
    syncer = LibrarySync(keeper, attempts=1)
    try:
        syncer.run("lib")
    except ResponseTooLarge:
        capped += 1
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a
    # big pytest process would report its parent's peak
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(capped, hwm // 1024)
    """
)


def test_memory_stays_flat_against_endless_bodies(evil: HostileServer, tmp_path: Path) -> None:
    """A child process reads endless token and library answers; its peak RSS stays small."""
    path = tmp_path / "rss.db"
    store = SQLiteStore(path)
    evil.route("/endless", endless())
    evil.route("/token", respond(200, {"access_token": "fresh", "expires_in": 3600}))
    add_oauth2(store, "tok", evil.url("/endless"), expires_in=-60)
    add_oauth2(store, "lib", evil.url("/token"), expires_in=3600)
    row = store.get_account("lib")
    assert row is not None
    library = {"url": evil.url("/endless"), "items": "items"}
    store.update_config("lib", {**row.config, "library_source": "json", "library": library})
    store.close()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(path)], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    capped, peak_mib = (int(x) for x in proc.stdout.split())
    assert capped == 2
    assert peak_mib < 150, f"peak RSS {peak_mib} MiB"


# -- a real deadline ------------------------------------------------------------------------------


#: a guard against hangs, far above the 2 s deadline and far below the servers' pace
GUARD = 60.0


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
@pytest.mark.parametrize(
    "behaviour",
    [drip(b'{"access_token": "late", "expires_in": 3600}' + b" " * 200, 1.0), slow_headers(1.0)],
    ids=["drip", "slow-headers"],
)
def test_the_timeout_is_a_total_deadline_on_both_drivers(
    evil: HostileServer, tmp_path: Path, behaviour: Any
) -> None:
    """Each byte comes well within the 2 s timeout, for minutes; only a total deadline
    ends the request (the guard only keeps a broken build from hanging the suite)."""
    store = SQLiteStore(tmp_path / "t.db")
    evil.route("/token", behaviour)
    before = expired_account(store, evil.url("/token"))
    keeper = Keeper(store, timeout=2.0)
    try:
        pool = concurrent.futures.ThreadPoolExecutor(1)
        attempt = pool.submit(keeper.ensure_valid_token, NAME)
        pool.shutdown(wait=False)  # a hung attempt must not hold the test past its guard
        with pytest.raises(TransientError, match="timed out") as sync_error:
            attempt.result(timeout=GUARD)
        keeper.forget()
        guarded = asyncio.wait_for(keeper.aensure_valid_token(NAME), GUARD)
        with pytest.raises(TransientError, match="timed out"):
            asyncio.run(guarded)
        assert tokens_of(store) == before
    finally:
        keeper.close()
        store.close()
    assert sync_error.value.exit_code == 4
    assert f"127.0.0.1:{evil.port}/token" in str(sync_error.value)


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
def test_a_dripping_library_page_ends_at_the_deadline(
    db: tuple[Store, str], evil: HostileServer
) -> None:
    store, _ = db
    evil.route("/token", respond(200, {"access_token": "fresh", "expires_in": 3600}))
    evil.route("/lib", drip(b'{"items": []}' + b" " * 200, 0.25))
    expired_account(store, evil.url("/token"))
    configure_library(store, evil.url("/lib"))
    with pytest.raises(TransientError, match="timed out"):
        sync(store, timeout=1.5, attempts=1)
    state = store.get_library_sync(NAME)
    assert state is None or state.state == "running"


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
def test_a_timed_out_cli_refresh_releases_the_lock_for_the_next_process(
    db: tuple[Store, str], evil: HostileServer
) -> None:
    """The first process ends at its deadline (exit 4); the second one, waiting for
    the cross-process lock meanwhile, gets it and refreshes."""
    store, location = db
    evil.route("/token", drip(b" " * 1000, 1.0))  # 1000 s of bytes, one per second
    expired_account(store, evil.url("/token"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env["STAYFRESH_DB"] = location
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()", "token", NAME]
    first = subprocess.Popen(
        [*cmd, "--timeout", "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(evil.seen("/token")) == 1, 60, what="the token request")
        evil.route("/token", respond(200, {"access_token": "second", "expires_in": 3600}))
        second = subprocess.run(
            [*cmd, "--timeout", "30"], env=env, capture_output=True, text=True, timeout=120
        )
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 4, err
    assert "timed out" in err and SECRET not in err
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "second"
    assert tokens_of(store).access_token == "second"




# -- errors name the host, never the secret ------------------------------------------------


def test_a_dns_failure_names_the_host(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    expired_account(store, "https://no-such-host.invalid/token")
    keeper = Keeper(store, timeout=10.0)
    try:
        with pytest.raises(TransientError) as info:
            keeper.ensure_valid_token(NAME)
    finally:
        keeper.close()
        store.close()
    assert "https://no-such-host.invalid/token" in str(info.value)


def test_urls_in_errors_lose_userinfo_and_query(evil: HostileServer, tmp_path: Path) -> None:
    port = evil.port
    evil.close()  # nothing listens there any more: connection refused
    url = f"http://user:{SECRET}@127.0.0.1:{port}/token?key={SECRET}&sig=abc"
    store = SQLiteStore(tmp_path / "t.db")
    expired_account(store, url)
    keeper = Keeper(store, timeout=10.0)
    try:
        with pytest.raises(TransientError) as info:
            keeper.ensure_valid_token(NAME)
    finally:
        keeper.close()
        store.close()
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/token" in message
    assert SECRET not in message and "user" not in message and "sig" not in message
    assert show_url(url) == f"http://127.0.0.1:{port}/token"
    assert show_url("https://u:p@[::1]:8443/a?b#c") == "https://[::1]:8443/a"


# -- one Retry-After parser, one backoff ----------------------------------------------------------


def test_retry_after_reads_seconds_and_dates_and_caps_them() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = email.utils.format_datetime(now + dt.timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(later, now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now) == 0.0
    assert parse_retry_after("10" * 40, now) == MAX_RETRY_AFTER
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_backoff_honours_the_server_within_the_cap() -> None:
    assert backoff_delay(3, initial=1.0, floor=0.0, cap=60.0) == 4.0
    assert backoff_delay(1, initial=1.0, floor=0.0, cap=60.0, at_least=7.0) == 7.0
    assert backoff_delay(1, initial=1.0, floor=0.0, cap=60.0, at_least=10**6) == 60.0


def test_a_library_page_waits_as_long_as_an_http_date_retry_after_asks(
    db: tuple[Store, str], evil: HostileServer
) -> None:
    store, _ = db
    when = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=45), usegmt=True
    )
    evil.route("/token", respond(200, {"access_token": "fresh", "expires_in": 3600}))
    evil.route("/lib", respond(503, b"busy", {"Retry-After": when}))
    expired_account(store, evil.url("/token"))
    configure_library(store, evil.url("/lib"))
    waits: list[float] = []
    keeper = Keeper(store, timeout=5.0)
    syncer = LibrarySync(keeper, sleep=waits.append, attempts=2)
    try:
        with pytest.raises(TransientError):
            syncer.run(NAME)
    finally:
        syncer.close()
        keeper.close()
    assert len(waits) == 1 and 30.0 <= waits[0] <= 60.0


def test_the_hardened_client_still_uses_the_environments_proxy(
    evil: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users behind a proxy set HTTP(S)_PROXY; the deadline backend must not cost them it.

    The hostile server plays the proxy: it receives the absolute URL of an origin
    that does not exist, so the answer can only have come through it."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", evil.origin)
    evil.route("/via-proxy", respond(200, {"ok": True}))
    with new_client(timeout=10) as client:
        answer = fetch(
            client, "GET", "http://stayfresh-proxy-test.invalid/via-proxy",
            timeout=10, max_bytes=API_MAX_BYTES,
        )  # fmt: skip
        assert answer.status_code == 200
        assert [r.path for r in evil.seen("/via-proxy")] == [
            "http://stayfresh-proxy-test.invalid/via-proxy"
        ]
        evil.route("/slow", drip(b"x" * 100, 1.0))  # the deadline holds through the proxy too
        with pytest.raises(TransientError, match="timed out"):
            fetch(
                client, "GET", "http://stayfresh-proxy-test.invalid/slow",
                timeout=1.5, max_bytes=API_MAX_BYTES,
            )  # fmt: skip
