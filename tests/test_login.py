"""Login flows against the real oidc-provider server (and a scripted one for error paths)."""

from __future__ import annotations

import itertools
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from oidc_server import OIDCServer
from stayfresh.errors import ConfigError, ProviderError
from stayfresh.store import Store
from stayfresh.tokens import (
    DevicePrompt,
    Keeper,
    NewAccount,
    TokenSet,
    add_account,
    login_browser,
    login_device,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_status(url: str) -> int:
    try:
        with NO_PROXY.open(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        with err:
            return err.code


@pytest.fixture(autouse=True)
def _no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAYFRESH_NO_BROWSER", "1")


def public_oidc(server: OIDCServer) -> NewAccount:
    return NewAccount(
        provider="oidc",
        config={
            "issuer": server.issuer,
            "client_id": server.public_client_id,
            "auth_method": "none",
        },
    )


class Background:
    """Run a login in a thread; keep its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc

    def join(self) -> Any:
        self._thread.join(60)
        assert not self._thread.is_alive(), "login did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def browser_login(store: Store, name: str, **kwargs: Any) -> tuple[Background, str]:
    urls: queue.Queue[str] = queue.Queue()
    job = Background(lambda: login_browser(store, name, on_url=urls.put, timeout=30, **kwargs))
    try:
        url = urls.get(timeout=30)
    except queue.Empty:
        job.join()  # raises the login's own error
        raise
    return job, url


# -- authorization code + PKCE -------------------------------------------------------------


def test_browser_login_creates_account_and_tokens_refresh(
    store: Store, keeper: Keeper, oidc_server: OIDCServer
) -> None:
    job, url = browser_login(store, "me", new_account=public_oidc(oidc_server))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(oidc_server.issuer + "/auth?")
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["scope"] == "openid offline_access" and query["prompt"] == "consent"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", query["redirect_uri"])

    browser = oidc_server.complete_browser_login(url)
    assert browser.callback_status == 200
    assert b"close this tab" in (browser.callback_body or b"")
    account = job.join()

    assert account.status == "ok"
    assert account.tokens.refresh_token and account.tokens.access_token
    assert account.config["authorization_endpoint"] == f"{oidc_server.issuer}/auth"
    oidc_server.reset_stats()
    result = keeper.ensure_valid_token("me", force=True)
    assert result.was_refreshed
    assert result.access_token != account.tokens.access_token
    assert oidc_server.stats()["refresh_success"] == 1


def test_browser_login_heals_needs_login_account(
    store: Store, keeper: Keeper, oidc_server: OIDCServer
) -> None:
    """A confidential client (client_secret_basic + PKCE) on an account that was logged out."""
    add_account(
        store,
        "work",
        "oidc",
        {
            "issuer": oidc_server.issuer,
            "client_id": oidc_server.client_id,
            "client_secret": oidc_server.client_secret,
        },
        TokenSet(access_token=None, expires_at=None, refresh_token="dead-refresh-token"),
    )
    store.set_status("work", "needs_login", "the refresh token was rejected")

    job, url = browser_login(store, "work")
    assert oidc_server.complete_browser_login(url).callback_status == 200
    account = job.join()

    assert account.status == "ok" and not account.needs_login
    assert account.tokens.refresh_token != "dead-refresh-token"
    assert keeper.ensure_valid_token("work", force=True).was_refreshed


def test_callback_with_wrong_state_fails(store: Store, oidc_server: OIDCServer) -> None:
    job, url = browser_login(store, "me", new_account=public_oidc(oidc_server))
    redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
    assert get_status(f"{redirect}?code=stolen&state=forged") == 400
    with pytest.raises(ProviderError, match="wrong state"):
        job.join()
    assert store.get_account("me") is None


def test_callback_error_is_reported(store: Store, oidc_server: OIDCServer) -> None:
    job, url = browser_login(store, "me", new_account=public_oidc(oidc_server))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    params = urllib.parse.urlencode({"error": "access_denied", "state": query["state"]})
    assert get_status(f"{query['redirect_uri']}?{params}") == 400
    with pytest.raises(ProviderError, match="access_denied"):
        job.join()


def test_browser_login_times_out(store: Store, oidc_server: OIDCServer) -> None:
    with pytest.raises(ProviderError, match="no login callback"):
        login_browser(store, "me", new_account=public_oidc(oidc_server), timeout=0.3)


def test_oauth2_login_needs_an_authorize_url(store: Store, token_server: FakeTokenServer) -> None:
    add_oauth2(store, "plain", token_server.token_url)
    with pytest.raises(ConfigError, match="--authorize-url"):
        login_browser(store, "plain", timeout=1)
    with pytest.raises(ConfigError, match="https"):
        login_browser(store, "plain", authorize_url="http://example.com/auth", timeout=1)


def test_amazon_accounts_cannot_log_in(store: Store) -> None:
    add_account(
        store,
        "books",
        "amazon",
        {"locale": "de"},
        TokenSet(access_token=None, expires_at=None, refresh_token="Atnr|x"),
    )
    with pytest.raises(ConfigError, match="account import"):
        login_device(store, "books")


# -- device authorization grant ------------------------------------------------------------


def test_device_login_end_to_end(store: Store, keeper: Keeper, oidc_server: OIDCServer) -> None:
    prompts: queue.Queue[DevicePrompt] = queue.Queue()
    sleeps: list[float] = []

    def fast_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        threading.Event().wait(0.05)

    job = Background(
        lambda: login_device(
            store,
            "dev",
            new_account=public_oidc(oidc_server),
            on_prompt=prompts.put,
            sleep=fast_sleep,
            timeout=60,
        )
    )
    prompt = prompts.get(timeout=30)
    assert prompt.verification_uri.startswith(oidc_server.issuer)
    oidc_server.complete_device_login(prompt.user_code)
    account = job.join()

    assert account.status == "ok" and account.tokens.refresh_token
    assert sleeps[0] == prompt.interval
    # polling faster than the interval earns slow_down: each one adds 5 s
    assert all(b - a in (0, 5) for a, b in itertools.pairwise(sleeps))
    assert keeper.ensure_valid_token("dev", force=True).was_refreshed


def scripted_device_server(answers: list[Reply]) -> FakeTokenServer:
    """Device endpoint at /device; the token endpoint answers ``answers`` in turn."""
    polls = iter(answers)

    def handler(seen: Seen) -> Reply:
        if seen.path == "/device":
            return Reply(
                body={
                    "device_code": "dc-1",
                    "user_code": "ABCD-EFGH",
                    "verification_uri": "http://127.0.0.1/device",
                    "expires_in": 600,
                    "interval": 3,
                }
            )
        return next(polls)

    return FakeTokenServer(handler).start()


def pending(error: str) -> Reply:
    return Reply(status=400, body={"error": error})


@pytest.fixture
def device_account(store: Store) -> Iterator[Callable[[list[Reply]], FakeTokenServer]]:
    servers: list[FakeTokenServer] = []

    def make(answers: list[Reply]) -> FakeTokenServer:
        server = scripted_device_server(answers)
        servers.append(server)
        add_oauth2(
            store,
            "dev",
            server.token_url,
            device_authorization_endpoint=server.url + "/device",
        )
        store.set_status("dev", "needs_login", "expired")
        return server

    yield make
    for server in servers:
        server.stop()


def test_device_polling_honours_interval_and_slow_down(
    store: Store, device_account: Callable[[list[Reply]], FakeTokenServer]
) -> None:
    server = device_account(
        [
            pending("authorization_pending"),
            pending("slow_down"),
            pending("authorization_pending"),
            token_reply("new-access", "new-refresh"),
        ]
    )
    sleeps: list[float] = []
    account = login_device(store, "dev", sleep=sleeps.append)
    assert sleeps == [3, 3, 8, 8]
    assert account.status == "ok" and account.tokens.refresh_token == "new-refresh"
    polls = [r for r in server.requests if r.path == "/token"]
    assert {p.form["grant_type"] for p in polls} == {"urn:ietf:params:oauth:grant-type:device_code"}
    assert all(p.form["device_code"] == "dc-1" for p in polls)
    assert all(p.headers["authorization"].startswith("Basic ") for p in polls)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("expired_token", "expired"),
        ("access_denied", "denied"),
        ("invalid_client", "invalid_client"),
    ],
)
def test_device_login_failures_are_clear(
    store: Store,
    device_account: Callable[[list[Reply]], FakeTokenServer],
    error: str,
    message: str,
) -> None:
    device_account([pending("authorization_pending"), pending(error)])
    with pytest.raises(ProviderError, match=message):
        login_device(store, "dev", sleep=lambda s: None)
    row = store.get_account("dev")
    assert row is not None and row.status == "needs_login"
    assert row.tokens.refresh_token == "old-refresh"  # nothing lost


def test_device_login_gives_up_after_timeout(
    store: Store, device_account: Callable[[list[Reply]], FakeTokenServer]
) -> None:
    device_account([pending("authorization_pending")] * 100)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ProviderError, match="not approved in time"):
        login_device(store, "dev", sleep=sleep, clock=lambda: now[0], timeout=10)


# -- the CLI in a real subprocess ----------------------------------------------------------


def spawn_cli(db: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env.update(STAYFRESH_NO_BROWSER="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_until(proc: subprocess.Popen[str], pattern: str) -> tuple[re.Match[str], str]:
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:
        seen += line
        match = re.search(pattern, line)
        if match:
            return match, seen
    raise AssertionError(f"{pattern!r} never printed; stderr: {seen}")


def finish(proc: subprocess.Popen[str], seen_err: str) -> tuple[str, str]:
    out, err = proc.communicate(timeout=60)
    return out, seen_err + err


def assert_no_secrets(store: Store, name: str, *texts: str) -> None:
    row = store.get_account(name)
    assert row is not None
    for secret in (row.tokens.access_token, row.tokens.refresh_token):
        assert secret
        for text in texts:
            assert secret not in text
            assert secret[:12] not in text


def test_cli_device_login(db_path: Path, store: Store, oidc_server: OIDCServer) -> None:
    proc = spawn_cli(
        db_path,
        "-vv",
        "login",
        "cli-dev",
        "--device",
        "--provider",
        "oidc",
        "--issuer",
        oidc_server.issuer,
        "--client-id",
        oidc_server.public_client_id,
        "--auth-method",
        "none",
    )
    match, seen = read_until(proc, r"enter the code: (\S+)")
    oidc_server.complete_device_login(match.group(1))
    out, err = finish(proc, seen)
    assert proc.returncode == 0, err
    assert "logged in to cli-dev (oidc): status ok" in out
    assert_no_secrets(store, "cli-dev", out, err)

    show = invoke_cli("account", "show", "cli-dev", "--json", db=db_path)
    assert '"status": "ok"' in show.stdout


def test_cli_browser_login_heals_account(
    db_path: Path, store: Store, oidc_server: OIDCServer
) -> None:
    add_account(
        store,
        "cli-web",
        "oidc",
        {
            "issuer": oidc_server.issuer,
            "client_id": oidc_server.public_client_id,
            "auth_method": "none",
        },
        TokenSet(access_token=None, expires_at=None, refresh_token="dead"),
    )
    store.set_status("cli-web", "needs_login", "refresh token rejected")
    proc = spawn_cli(db_path, "-vv", "login", "cli-web", "--json")
    match, seen = read_until(proc, r"^(http://127\.0\.0\.1:\d+/auth\?\S+)$")
    assert oidc_server.complete_browser_login(match.group(1)).callback_status == 200
    out, err = finish(proc, seen)
    assert proc.returncode == 0, err
    assert '"status": "ok"' in out
    assert_no_secrets(store, "cli-web", out, err)


def test_cli_login_errors_have_exit_codes(db_path: Path, oidc_server: OIDCServer) -> None:
    missing = invoke_cli("login", "nobody", "--no-browser", db=db_path)
    assert missing.returncode == 2 and "--provider" in missing.stderr
    stray = invoke_cli("login", "x", "--client-id", "y", db=db_path)
    assert stray.returncode == 2
    timed_out = invoke_cli(
        "login",
        "slow",
        "--timeout",
        "1",
        "--provider",
        "oidc",
        "--issuer",
        oidc_server.issuer,
        "--client-id",
        oidc_server.public_client_id,
        "--auth-method",
        "none",
        db=db_path,
        env={"STAYFRESH_NO_BROWSER": "1"},
    )
    assert timed_out.returncode == 1 and "no login callback" in timed_out.stderr
