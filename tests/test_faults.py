"""Faults from a token endpoint we control, over real sockets on 127.0.0.1.

Each fault must give the right typed error in the library and the right exit
code from ``stayfresh token``, and never change the stored tokens. The
accounts here hold an *expired* access token, so a failed refresh cannot fall
back to the current token and the error surfaces.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from stayfresh.errors import (
    ConfigError,
    ProviderError,
    ReauthRequired,
    TokenError,
    TransientError,
)
from stayfresh.store import Store
from stayfresh.tokens import Keeper, TokenSet, add_account, refresh_metrics

UTC = dt.UTC
NAME = "acct"
#: seconds the fake server waits before a library timeout (keeper timeout 0.5 s)
LIB_DELAY = 2.0
#: the CLI's keeper waits 10 s (Keeper's default timeout; `token` has no option for it)
CLI_TIMEOUT = 1.0  # passed as `token --timeout`

HTML_500 = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body>"
    "<h1>Internal Server Error</h1><p>The server encountered an internal error.</p>"
    + "<pre>" + "Traceback line\n" * 300 + "</pre>"
    + "<p>END-OF-HTML-MARKER</p></body></html>"
)  # fmt: skip
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    + "<!-- padding -->\r\n" * 200
    + "<!-- END-OF-HTML-MARKER -->\r\n</body>\r\n</html>\r\n"
)  # fmt: skip


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    with FakeTokenServer() as server:
        yield server


@pytest.fixture
def fast_keeper(store: Store) -> Iterator[Keeper]:
    k = Keeper(store, timeout=0.5, lock_timeout=5.0)
    yield k
    k.close()


def snapshot(store: Store, name: str = NAME) -> tuple[Any, int]:
    row = store.get_account(name)
    assert row is not None
    return row.tokens, row.version


def status(store: Store, name: str = NAME) -> str:
    row = store.get_account(name)
    assert row is not None
    return row.status


def add_expired(store: Store, url: str, name: str = NAME, **kw: Any) -> None:
    add_oauth2(store, name, url, expires_in=-60, **kw)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_date_in(seconds: float) -> str:
    when = dt.datetime.now(UTC) + dt.timedelta(seconds=seconds)
    return email.utils.format_datetime(when, usegmt=True)


def json_reply(status: int, body: Any, **headers: str) -> Reply:
    return Reply(
        status=status,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


# -- the fault table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    reply: Callable[[], Reply]
    error: type[TokenError]
    exit_code: int
    check: Callable[[TokenError], None] = lambda exc: None
    #: text the provider sent that must reach the user (library message and CLI stderr)
    says: str | None = None


def _short_message(code: str, title: str) -> Callable[[TokenError], None]:
    """One short line that names the status and the page's title, not the page."""

    def check(exc: TokenError) -> None:
        message = str(exc)
        assert code in message
        assert title in message
        assert "END-OF-HTML-MARKER" not in message
        assert "<" not in message, message
        assert "\n" not in message and "\r" not in message, repr(message)
        assert len(message) < 200, message

    return check


def _retry_after(low: float, high: float) -> Callable[[TokenError], None]:
    def check(exc: TokenError) -> None:
        assert isinstance(exc, TransientError)
        assert exc.retry_after is not None
        assert low <= exc.retry_after <= high, exc.retry_after

    return check


def _provider_error(status_code: int, error: str | None) -> Callable[[TokenError], None]:
    def check(exc: TokenError) -> None:
        assert isinstance(exc, ProviderError)
        assert exc.status == status_code
        assert exc.error == error

    return check


FAULTS: dict[str, Fault] = {
    "connection-dropped": Fault(lambda: Reply(drop=True), TransientError, 4),
    "500-html": Fault(
        lambda: Reply(500, HTML_500, {"Content-Type": "text/html"}),
        TransientError,
        4,
        _short_message("500", "Internal Server Error"),
    ),
    "502-html": Fault(
        lambda: Reply(502, HTML_502, {"Content-Type": "text/html"}),
        TransientError,
        4,
        _short_message("502", "Bad Gateway"),
    ),
    "503-json": Fault(
        lambda: json_reply(503, {"error": "temporarily_unavailable"}),
        TransientError,
        4,
        says="temporarily_unavailable",
    ),
    "429-retry-after-seconds": Fault(
        lambda: json_reply(429, {"error": "slow_down"}, **{"Retry-After": "120"}),
        TransientError,
        4,
        _retry_after(120, 120),
    ),
    "429-retry-after-http-date": Fault(
        lambda: Reply(429, "Too Many Requests", {"Retry-After": http_date_in(600)}),
        TransientError,
        4,
        _retry_after(500, 601),
    ),
    "200-garbage": Fault(
        lambda: Reply(200, b"\x00\xffthis is not json{", {"Content-Type": "application/json"}),
        ProviderError,
        1,
    ),
    "200-html": Fault(
        lambda: Reply(200, HTML_500, {"Content-Type": "text/html"}),
        ProviderError,
        1,
        lambda exc: (
            None
            if len(str(exc)) < 300 and "END-OF-HTML-MARKER" not in str(exc)
            else pytest.fail(str(exc))
        ),
    ),
    "200-json-array": Fault(
        lambda: json_reply(200, [{"access_token": "in-an-array", "expires_in": 3600}]),
        ProviderError,
        1,
    ),
    "200-missing-access-token": Fault(
        lambda: json_reply(200, {"token_type": "Bearer", "expires_in": 3600}),
        ProviderError,
        1,
    ),
    "200-empty-access-token": Fault(
        lambda: json_reply(200, {"access_token": "", "expires_in": 3600}),
        ProviderError,
        1,
    ),
    "200-unreadable-expires-in": Fault(
        lambda: json_reply(200, {"access_token": "new-access", "expires_in": "soon"}),
        ProviderError,
        1,
    ),
    "200-negative-expires-in": Fault(
        lambda: json_reply(200, {"access_token": "new-access", "expires_in": -5}),
        ProviderError,
        1,
    ),
    "200-unreadable-expires-at": Fault(
        lambda: json_reply(200, {"access_token": "new-access", "expires_at": "next tuesday"}),
        ProviderError,
        1,
    ),
    "400-invalid-client": Fault(
        lambda: json_reply(
            400, {"error": "invalid_client", "error_description": "Client authentication failed"}
        ),
        ProviderError,
        1,
        _provider_error(400, "invalid_client"),
        says="Client authentication failed",
    ),
    "401-invalid-client": Fault(
        lambda: json_reply(
            401,
            {"error": "invalid_client", "error_description": "client credentials are wrong"},
            **{"WWW-Authenticate": 'Basic realm="token"'},
        ),
        ProviderError,
        1,
        _provider_error(401, "invalid_client"),
        says="client credentials are wrong",
    ),
    "401-plain-text": Fault(
        lambda: Reply(401, "Unauthorized: bad client", {"Content-Type": "text/plain"}),
        ProviderError,
        1,
        _provider_error(401, None),
        says="Unauthorized: bad client",
    ),
    "400-long-multiline-description": Fault(
        lambda: json_reply(
            400,
            {
                "error": "invalid_request",
                "error_description": "first line\r\nsecond line\n"
                + "x" * 5000
                + "END-OF-HTML-MARKER",
            },
        ),
        ProviderError,
        1,
        lambda exc: (
            None
            if len(str(exc)) < 400 and "\n" not in str(exc) and "\r" not in str(exc)
            else pytest.fail(repr(str(exc)))
        ),
        says="first line second line",
    ),
    "400-invalid-scope": Fault(
        lambda: json_reply(400, {"error": "invalid_scope", "error_description": "scope too wide"}),
        ProviderError,
        1,
        _provider_error(400, "invalid_scope"),
        says="scope too wide",
    ),
}


# -- library ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_library_fault_gives_typed_error_and_keeps_tokens(
    fault: str, store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    spec = FAULTS[fault]
    token_server.handler = lambda seen: spec.reply()
    add_expired(store, token_server.token_url)
    before = snapshot(store)

    with pytest.raises(TokenError) as info:
        fast_keeper.ensure_valid_token(NAME)

    assert type(info.value) is spec.error, repr(info.value)
    assert info.value.exit_code == spec.exit_code
    spec.check(info.value)
    if spec.says:
        assert spec.says in str(info.value)
    assert token_server.count >= 1
    assert snapshot(store) == before
    assert status(store) == "ok"
    assert_nothing_lost(store, token_server)


def assert_nothing_lost(store: Store, server: FakeTokenServer, name: str = NAME) -> None:
    """After the fault, a healthy provider gets the old refresh token and a refresh works."""
    server.handler = lambda seen: token_reply("after-fault-access", expires_in=3600)
    keeper = Keeper(store, timeout=5.0)
    try:
        result = keeper.ensure_valid_token(name)
    finally:
        keeper.close()
    assert result.was_refreshed
    assert result.access_token == "after-fault-access"
    assert server.requests[-1].form["refresh_token"] == "old-refresh"
    assert result.tokens.refresh_token == "old-refresh"
    assert status(store, name) == "ok"


def test_library_read_timeout_is_transient(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: Reply(delay=LIB_DELAY, body={"access_token": "late"})
    add_expired(store, token_server.token_url)
    before = snapshot(store)

    with pytest.raises(TransientError) as info:
        fast_keeper.ensure_valid_token(NAME)

    assert "timed out" in str(info.value)
    assert info.value.exit_code == 4
    assert snapshot(store) == before
    assert_nothing_lost(store, token_server)


def test_library_connection_refused_is_transient(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    add_expired(store, f"http://127.0.0.1:{closed_port()}/token")
    before = snapshot(store)

    with pytest.raises(TransientError) as info:
        fast_keeper.ensure_valid_token(NAME)

    assert info.value.exit_code == 4
    assert snapshot(store) == before
    assert status(store) == "ok"


def test_library_failure_is_counted_in_metrics(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: FAULTS["500-html"].reply()
    add_expired(store, token_server.token_url)
    with pytest.raises(TransientError):
        fast_keeper.ensure_valid_token(NAME)
    metrics = refresh_metrics(store, NAME)
    assert metrics.failures == 1
    assert metrics.last_error is not None and "TransientError" in metrics.last_error
    assert "END-OF-HTML-MARKER" not in metrics.last_error


# -- re-authentication ---------------------------------------------------------------------


def test_library_invalid_grant_requires_login_once(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: json_reply(
        400, {"error": "invalid_grant", "error_description": "Refresh token is expired"}
    )
    add_expired(store, token_server.token_url)
    before = snapshot(store)

    with pytest.raises(ReauthRequired) as info:
        fast_keeper.ensure_valid_token(NAME)

    assert info.value.account == NAME
    assert info.value.exit_code == 3
    assert snapshot(store) == before
    assert status(store) == "needs_login"
    assert token_server.count == 1

    # never retried: a fresh keeper (as another process would) does not call the provider
    other = Keeper(store, timeout=0.5)
    try:
        with pytest.raises(ReauthRequired) as again:
            other.ensure_valid_token(NAME)
    finally:
        other.close()
    assert again.value.account == NAME
    assert token_server.count == 1
    assert snapshot(store) == before


AMAZON_REFRESH = "Atnr|old-amazon-refresh"
AMAZON_DEAD = {
    "error": "InvalidValue",
    "error_description": "The request has an invalid parameter : source_token",
}


def add_amazon(store: Store, url: str, name: str = "audible", *, expires_in: float = -60) -> None:
    now = dt.datetime.now(UTC)
    add_account(
        store,
        name,
        "amazon",
        {"locale": "us", "token_url": url, "device_serial": "0123456789ABCDEF"},
        TokenSet(
            access_token="Atna|old-amazon-access",
            refresh_token=AMAZON_REFRESH,
            expires_at=now + dt.timedelta(seconds=expires_in),
            obtained_at=now - dt.timedelta(hours=1),
        ),
    )


def test_amazon_request_form_and_refresh_token_kept(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: json_reply(
        200, {"access_token": "Atna|new-amazon-access", "expires_in": 3600, "token_type": "bearer"}
    )
    add_amazon(store, token_server.token_url)
    _, version = snapshot(store, "audible")

    result = fast_keeper.ensure_valid_token("audible")

    assert result.was_refreshed
    assert result.access_token == "Atna|new-amazon-access"
    assert result.tokens.refresh_token == AMAZON_REFRESH  # Amazon does not rotate
    seen = token_server.requests[-1]
    assert seen.method == "POST"
    assert seen.path == "/token"
    assert seen.form["app_name"] == "Audible"
    assert seen.form["source_token"] == AMAZON_REFRESH
    assert seen.form["requested_token_type"] == "access_token"
    assert seen.form["source_token_type"] == "refresh_token"
    assert seen.form.get("app_version")
    assert "refresh_token" not in seen.form
    assert seen.headers["content-type"].startswith("application/x-www-form-urlencoded")
    tokens, new_version = snapshot(store, "audible")
    assert new_version == version + 1
    assert tokens.refresh_token == AMAZON_REFRESH
    assert tokens.access_token == "Atna|new-amazon-access"
    assert tokens.expires_at is not None
    assert 3500 < tokens.expires_at - dt.datetime.now(UTC).timestamp() <= 3600


def test_amazon_invalid_source_token_requires_login(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: json_reply(400, AMAZON_DEAD)
    add_amazon(store, token_server.token_url)
    before = snapshot(store, "audible")

    with pytest.raises(ReauthRequired) as info:
        fast_keeper.ensure_valid_token("audible")

    assert info.value.account == "audible"
    assert snapshot(store, "audible") == before
    assert status(store, "audible") == "needs_login"


def test_oauth2_invalid_value_is_not_reauth(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    """Amazon's wording is Amazon's: an oauth2 server's 400 InvalidValue is a provider error."""
    token_server.handler = lambda seen: json_reply(
        400, {"error": "InvalidValue", "error_description": "bad scope value"}
    )
    add_expired(store, token_server.token_url)
    with pytest.raises(ProviderError):
        fast_keeper.ensure_valid_token(NAME)
    assert status(store) == "ok"


# -- still valid: a failure does not fail the caller -------------------------------------


@pytest.mark.parametrize("fault", ["500-html", "connection-dropped", "200-garbage"])
def test_library_valid_token_survives_failed_refresh(
    fault: str, store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: FAULTS[fault].reply()
    add_oauth2(store, NAME, token_server.token_url, expires_in=600)  # inside the 30 min threshold
    before = snapshot(store)

    result = fast_keeper.ensure_valid_token(NAME)

    assert token_server.count >= 1  # it did try
    assert result.access_token == "old-access"
    assert not result.was_refreshed
    assert snapshot(store) == before


def test_library_valid_token_survives_timeout(
    store: Store, token_server: FakeTokenServer, fast_keeper: Keeper
) -> None:
    token_server.handler = lambda seen: Reply(delay=LIB_DELAY, body={"access_token": "late"})
    add_oauth2(store, NAME, token_server.token_url, expires_in=600)
    before = snapshot(store)
    result = fast_keeper.ensure_valid_token(NAME)
    assert result.access_token == "old-access"
    assert snapshot(store) == before


# -- CLI: exit codes ------------------------------------------------------------------------

#: one CLI run per exit-code class plus the messages that matter (subprocesses are slow)
CLI_FAULTS = [
    "connection-dropped",
    "500-html",
    "502-html",
    "429-retry-after-seconds",
    "429-retry-after-http-date",
    "200-garbage",
    "200-json-array",
    "200-missing-access-token",
    "200-unreadable-expires-in",
    "400-invalid-client",
    "401-invalid-client",
    "400-long-multiline-description",
]


@pytest.mark.parametrize("fault", CLI_FAULTS)
def test_cli_fault_exit_code(
    fault: str, store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    spec = FAULTS[fault]
    token_server.handler = lambda seen: spec.reply()
    add_expired(store, token_server.token_url)
    before = snapshot(store)

    proc = invoke_cli("token", NAME, db=db_path)

    assert proc.returncode == spec.exit_code, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    assert "END-OF-HTML-MARKER" not in proc.stderr
    assert len(proc.stderr) < 400, proc.stderr
    if spec.exit_code != 3:
        assert proc.stderr.count("\n") == 1, repr(proc.stderr)  # one line
    if spec.says:
        assert spec.says in proc.stderr
    assert snapshot(store) == before
    assert status(store) == "ok"


def test_cli_connection_refused_exit_4(store: Store, db_path: Path) -> None:
    add_expired(store, f"http://127.0.0.1:{closed_port()}/token")
    before = snapshot(store)
    proc = invoke_cli("token", NAME, db=db_path)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(store) == before


def test_cli_read_timeout_exit_4(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    release = threading.Event()

    def hang(seen: Seen) -> Reply:
        release.wait(CLI_TIMEOUT + 5)  # longer than the CLI's timeout; released at the end
        return Reply(drop=True)

    token_server.handler = hang
    add_expired(store, token_server.token_url)
    before = snapshot(store)
    try:
        proc = invoke_cli("token", NAME, "--timeout", str(CLI_TIMEOUT), db=db_path)
    finally:
        release.set()
    assert proc.returncode == 4, proc.stderr
    assert "timed out" in proc.stderr
    assert snapshot(store) == before


def test_cli_invalid_grant_exit_3_and_needs_login(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: json_reply(
        400, {"error": "invalid_grant", "error_description": "Refresh token is expired"}
    )
    add_expired(store, token_server.token_url)
    before = snapshot(store)

    proc = invoke_cli("token", NAME, db=db_path)

    assert proc.returncode == 3, proc.stderr
    assert f"stayfresh login {NAME}" in proc.stderr
    assert proc.stdout == ""
    assert snapshot(store) == before
    assert token_server.count == 1

    shown = invoke_cli("account", "show", NAME, "--json", db=db_path)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["status"] == "needs_login"

    again = invoke_cli("token", NAME, db=db_path)
    assert again.returncode == 3, again.stderr
    assert f"stayfresh login {NAME}" in again.stderr
    assert token_server.count == 1  # not retried
    assert snapshot(store) == before


def test_cli_amazon_invalid_source_token_exit_3(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: json_reply(400, AMAZON_DEAD)
    add_amazon(store, token_server.token_url)
    before = snapshot(store, "audible")
    proc = invoke_cli("token", "audible", db=db_path)
    assert proc.returncode == 3, proc.stderr
    assert "stayfresh login audible" in proc.stderr
    assert snapshot(store, "audible") == before
    assert status(store, "audible") == "needs_login"


def test_cli_valid_token_survives_failed_refresh(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: FAULTS["502-html"].reply()
    add_oauth2(store, NAME, token_server.token_url, expires_in=600)
    before = snapshot(store)
    proc = invoke_cli("token", NAME, db=db_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "old-access"
    assert token_server.count >= 1
    assert snapshot(store) == before


# -- configuration and usage errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/token",
        "http://10.0.0.1/token",
        "http://127.0.0.1.example.com/token",
        "http://localhost.example.com/token",
        "ftp://127.0.0.1/token",
        "not a url",
    ],
)
def test_http_token_url_off_loopback_is_config_error(store: Store, url: str) -> None:
    with pytest.raises(ConfigError):
        add_oauth2(store, NAME, url)
    assert store.get_account(NAME) is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/token", "http://localhost:9/token", "http://[::1]:9/token"]
)
def test_http_token_url_on_loopback_is_accepted(store: Store, url: str) -> None:
    add_oauth2(store, NAME, url)
    assert store.get_account(NAME) is not None


def test_cli_account_add_http_off_loopback_exit_2(db_path: Path) -> None:
    proc = invoke_cli(
        "account", "add", NAME, "--provider", "oauth2",
        "--token-url", "http://example.com/token", "--client-id", "c",
        "--refresh-token-env", "RT",
        db=db_path, env={"RT": "some-refresh-token"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "https" in proc.stderr
    listed = invoke_cli("account", "list", "--json", db=db_path)
    assert json.loads(listed.stdout) == []


def test_cli_amazon_http_token_url_off_loopback_exit_2(db_path: Path) -> None:
    proc = invoke_cli(
        "account", "add", "audible", "--provider", "amazon", "--locale", "us",
        "--token-url", "http://api.amazon.com/auth/token",
        "--refresh-token-env", "RT",
        db=db_path, env={"RT": "Atnr|x"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("token", "nobody"), 1),  # no such account
        (("token",), 2),  # missing NAME
        (("token", NAME, "--threshold", "soon"), 2),
        (("account", "show", "nobody"), 1),
        (("account", "remove", "nobody"), 1),
    ],
)
def test_cli_other_exit_codes(args: tuple[str, ...], code: int, db_path: Path) -> None:
    proc = invoke_cli(*args, db=db_path)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
