"""A token endpoint that echoes what it was sent: no secret may come back out.

The server repeats the request (form, Authorization header) and whatever else
it knows into ``error_description``, an HTML error page, or a 200 that is not
JSON. Every secret of the account (refresh token, access token, client
secret, device serial, password) in every obvious spelling (raw, percent-
encoded in either case, form-encoded with ``+``, JSON-escaped, HTML-escaped,
base64, the Basic ``client_id:secret`` pair) must stay out of the exception,
the logs, ``last_error``, ``status_message``, ``account show --json``,
``status --json`` and stderr at ``-vv``. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_cli
from fake_token_server import FakeTokenServer, Reply, Seen
from stayfresh.errors import ReauthRequired, TokenError
from stayfresh.store import SQLiteStore, Store
from stayfresh.tokens import (
    Keeper,
    NewAccount,
    TokenSet,
    add_account,
    login_device,
    refresh_metrics,
)
from stayfresh.tokens._scrub import Scrubber

UTC = dt.UTC

# special characters make every encoding differ from the raw value
REFRESH = 'SECRET-RT|4f8e/1c2+a9b 7d"6e&5<3'
ACCESS = "SECRET-AT/a1b2+c3d4~e5.f6_07=="
CLIENT_ID = "stayfresh-client"
CLIENT_SECRET = "SECRET-CS:0f1e/2d3c+4b5a%69 78"
SERIAL = "SECRET-SERIAL-7a6b5c4d3e2f1a0b"
PASSWORD = "SECRET-PW-é€/ 12ab34"
SECRETS = (REFRESH, ACCESS, CLIENT_SECRET, SERIAL, PASSWORD)


def b64(text: str) -> tuple[str, str]:
    raw = text.encode()
    return base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encodings(secret: str) -> dict[str, str]:
    """Every spelling of ``secret`` a server could echo."""
    quoted = urllib.parse.quote(secret, safe="")
    found = {
        "raw": secret,
        "percent": quoted,
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),
        "percent-keep-slash": urllib.parse.quote(secret, safe="/"),
        "form": urllib.parse.quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "json-utf8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "html": html.escape(secret),
        "html-numeric": "".join(c if c.isalnum() else f"&#{ord(c)};" for c in secret),
        "base64": b64(secret)[0],
        "base64url": b64(secret)[1],
    }
    if secret == CLIENT_SECRET:
        found["basic"] = b64(f"{CLIENT_ID}:{CLIENT_SECRET}")[0]
        found["basic-quoted"] = b64(f"{CLIENT_ID}:{quoted}")[0]
    return found


def assert_clean(text: str, where: str) -> None:
    """No secret, in no spelling, not even the first half of one (a cut-off echo)."""
    for secret in SECRETS:
        for name, form in encodings(secret).items():
            half = form[: max(8, len(form) // 2)]
            assert half not in text, f"{secret!r} as {name} ({half!r}…) leaked in {where}:\n{text}"


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """(what ``--db`` takes, an open store) for a fresh database of each backend."""
    if request.param == "sqlite":
        location = str(tmp_path / "data" / "stayfresh.db")
        store: Store = SQLiteStore(location)
    else:
        from stayfresh.store._postgres import PostgresStore

        location = request.getfixturevalue("pg_url")
        store = PostgresStore(location, retry_for=10)
    yield location, store
    store.close()


def add_secret_account(store: Store, name: str, token_url: str) -> None:
    now = dt.datetime.now(UTC)
    add_account(
        store,
        name,
        "oauth2",
        {"token_url": token_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
         "device_serial": SERIAL, "password": PASSWORD},
        TokenSet(
            access_token=ACCESS,
            refresh_token=REFRESH,
            expires_at=now - dt.timedelta(minutes=1),
            obtained_at=now - dt.timedelta(hours=1),
        ),
    )  # fmt: skip


def echo_of(seen: Seen) -> str:
    """The request as the server got it: the form as encoded, and the credential header."""
    return f"{urllib.parse.urlencode(seen.form)} authorization={seen.headers.get('authorization')}"


Mode = Callable[[str], Reply]
MODES: dict[str, Mode] = {
    "json-400": lambda text: Reply(
        400, {"error": "invalid_request", "error_description": f"bad request: {text}"}
    ),
    "invalid_grant": lambda text: Reply(
        400, {"error": "invalid_grant", "error_description": f"revoked: {text}"}
    ),
    "html-502": lambda text: Reply(
        502, f"<html><title>Bad gateway for {html.escape(text)}</title>"
    ),
    "text-200": lambda text: Reply(200, f"you sent {text}"),
    # the provider cuts long descriptions: the cut falls in the middle of the echo
    "cut": lambda text: Reply(
        400, {"error": "invalid_request", "error_description": "x" * 280 + " " + text}
    ),
}


def test_scrubber_finds_every_spelling_even_cut_short() -> None:
    scrub = Scrubber(SECRETS, client_id=CLIENT_ID)
    for secret in SECRETS:
        for name, form in encodings(secret).items():
            assert scrub(f"before {form} after") == "before [redacted] after", name
            for keep in (8, len(form) // 2, len(form) - 1):  # a provider's "…" cut it here
                cut = scrub(f"desc: {form[:keep]}…")
                assert cut == "desc: [redacted]…", (name, keep, cut)
    assert scrub("nothing secret here…") == "nothing secret here…"


def test_every_secret_echoed_by_the_server_is_scrubbed(
    target: tuple[str, Store], token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    _, store = target
    add_secret_account(store, "acct", token_server.token_url)
    caplog.set_level("DEBUG")
    keeper = Keeper(store, timeout=10)
    echoed: list[str] = []
    spellings = [form for secret in SECRETS for form in encodings(secret).values()]
    try:
        runs = [(name, mode) for name, mode in MODES.items() for _ in SECRETS]
        for n, (name, mode) in enumerate(runs):
            # one spelling of what the server knows (a different one each time), then the
            # request as it got it: the form as encoded and the Basic credentials
            form = spellings[n % len(spellings)]
            token_server.handler = lambda seen, f=form, m=mode: m(f"{f} {echo_of(seen)}")
            with pytest.raises(TokenError) as info:
                keeper.ensure_valid_token("acct", force=True)
            echoed.append(str(info.value))
            assert_clean(str(info.value), f"the error ({name})")
            assert_clean(repr(info.value), f"the error's repr ({name})")
            if isinstance(info.value, ReauthRequired):
                row = store.get_account("acct")
                assert row is not None
                assert_clean(str(row.status_message), "status_message")
            assert_clean(str(refresh_metrics(store, "acct").last_error), "last_error")
    finally:
        keeper.close()
    assert_clean(caplog.text, "the logs")
    # the errors still say what happened
    assert any("[redacted]" in text and "bad request" in text for text in echoed)
    assert any("Bad gateway for" in text for text in echoed)


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
def test_cli_output_holds_no_echoed_secret(
    target: tuple[str, Store], token_server: FakeTokenServer
) -> None:
    db, store = target
    add_secret_account(store, "echo", token_server.token_url)
    add_secret_account(store, "gone", token_server.token_url + "/grant")
    add_secret_account(store, "page", token_server.token_url + "/page")

    def handler(seen: Seen) -> Reply:
        known = " ".join(" ".join(encodings(s).values()) for s in SECRETS)
        text = f"{echo_of(seen)} {known}"
        if seen.path.endswith("/grant"):
            return MODES["invalid_grant"](text)
        if seen.path.endswith("/page"):
            return MODES["html-502"](text)
        return MODES["json-400"](text)

    token_server.handler = handler
    env = {"STAYFRESH_LOG_LEVEL": "DEBUG"}
    failed = run_cli("--db", db, "-vv", "token", "echo", env=env)
    assert failed.returncode == 1, failed.stderr
    gone = run_cli("--db", db, "-vv", "token", "gone", "--force", env=env)
    assert gone.returncode == 3, gone.stderr
    assert "run `stayfresh login gone`" in gone.stderr
    page = run_cli("--db", db, "-vv", "token", "page", env=env)
    assert page.returncode == 4, page.stderr
    shown = [run_cli("--db", db, "account", "show", n, "--json") for n in ("echo", "gone", "page")]
    status = run_cli("--db", db, "status", "--json")
    listed = run_cli("--db", db, "account", "list", "--json")
    for proc in (*shown, status, listed):
        assert proc.returncode == 0, proc.stderr
    for proc in (failed, gone, page, *shown, status, listed):
        assert_clean(proc.stdout, f"stdout of {proc.args[3:]}")
        assert_clean(proc.stderr, f"stderr of {proc.args[3:]}")
    assert "bad request" in failed.stderr and "[redacted]" in failed.stderr
    gone_info = json.loads(shown[1].stdout)
    assert gone_info["status"] == "needs_login"
    assert "revoked" in gone_info["status_message"]
    assert json.loads(shown[0].stdout)["metrics"]["last_error"]


@pytest.mark.parametrize("where", ["device authorization", "token poll"])
def test_device_login_errors_hold_no_echoed_secret(
    store: Store, token_server: FakeTokenServer, where: str
) -> None:
    """The login paths read provider texts too: same scrubbing (client secret, device code)."""

    def handler(seen: Seen) -> Reply:
        text = f"{CLIENT_SECRET} {echo_of(seen)}"
        if seen.path.endswith("/device") and where == "device authorization":
            return MODES["json-400"](text)
        if seen.path.endswith("/device"):
            return Reply(body={"device_code": "DEVCODE-" + SERIAL, "user_code": "U",
                               "verification_uri": "https://example.com/d", "interval": 1})  # fmt: skip
        return MODES["json-400"](text)

    token_server.handler = handler
    config = {
        "token_url": token_server.token_url,
        "device_authorization_endpoint": token_server.url + "/device",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_method": "client_secret_post",
    }
    with pytest.raises(TokenError) as info:
        login_device(
            store,
            "dev",
            new_account=NewAccount(provider="oauth2", config=config),
            sleep=lambda s: None,
        )
    assert "[redacted]" in str(info.value)
    assert_clean(str(info.value), f"the {where} error")
