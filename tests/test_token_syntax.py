"""Tokens with control characters or outside their provider's syntax are refused.

An access token goes into ``Authorization`` headers and onto stdout; a refresh
token into forms and the database. A response carrying a token with CR, LF,
NUL, ESC, a C1 control or DEL (or, for RFC 6750 providers, anything outside
b64token) is a ProviderError: nothing is stored, and the message describes the
character without quoting the token. Amazon declares its own syntax
(``Atna|…``), and a provider may declare token types besides Bearer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply, token_reply
from stayfresh.errors import ConfigError, ProviderError
from stayfresh.store import Store
from stayfresh.tokens import (
    AmazonProvider,
    Keeper,
    OAuth2Provider,
    TokenSet,
    add_account,
    refresh_metrics,
    register_provider,
)
from test_echo_secrets import target  # noqa: F401  (the sqlite/postgres fixture)

UTC = dt.UTC
TAIL = "SECRETTAIL0123456789"

BAD_ACCESS = {
    "CR LF": f"abc\r\nX-Injected: 1{TAIL}",
    "LF": f"abc\n{TAIL}",
    "NUL": f"abc\x00{TAIL}",
    "ESC": f"abc\x1b[2J{TAIL}",
    "C1": f"abc\x85{TAIL}",
    "DEL": f"abc\x7f{TAIL}",
    "space": f"abc def{TAIL}",
    "non-ASCII": f"abcé{TAIL}",
    "pipe": f"Atna|{TAIL}",  # fine for amazon, not for RFC 6750
    "too long": "a" * 20_000 + TAIL,
}


@pytest.fixture
def store_of(target: tuple[str, Store]) -> Iterator[Store]:  # noqa: F811
    yield target[1]


def refuse(keeper: Keeper, use_async: bool) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        if use_async:
            asyncio.run(keeper.aensure_valid_token("acct", force=True))
        else:
            keeper.ensure_valid_token("acct", force=True)
    return info.value


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_bad_tokens_in_a_response_are_refused_and_nothing_is_stored(
    store_of: Store, token_server: FakeTokenServer, use_async: bool
) -> None:
    add_oauth2(store_of, "acct", token_server.token_url, expires_in=-60)
    before = store_of.get_account("acct")
    keeper = Keeper(store_of, timeout=10)
    cases = [(name, token_reply(access=value)) for name, value in BAD_ACCESS.items()]
    cases += [
        ("refresh LF", token_reply(access="fine", refresh=f"rt\n{TAIL}")),
        ("refresh NUL", token_reply(access="fine", refresh=f"rt\x00{TAIL}")),
        ("token_type mac", token_reply(access="fine", token_type="mac")),
        ("token_type CRLF", token_reply(access="fine", token_type=f"Bearer\r\n{TAIL}")),
    ]
    try:
        for name, reply in cases:
            token_server.handler = lambda seen, r=reply: r
            error = refuse(keeper, use_async)
            assert TAIL not in str(error), name
            assert "\n" not in str(error) and "\x1b" not in str(error), name
            row = store_of.get_account("acct")
            assert row is not None and before is not None
            assert row.tokens == before.tokens and row.version == before.version, name
            metrics = refresh_metrics(store_of, "acct")
            assert metrics.last_error is not None and TAIL not in metrics.last_error
        # what is allowed still works: any case of "bearer", b64token with padding
        token_server.handler = lambda seen: token_reply(
            access="a-b.c_d~e+f/g==", token_type="BEARER"
        )
        assert keeper.ensure_valid_token("acct", force=True).access_token == "a-b.c_d~e+f/g=="
    finally:
        keeper.close()


def test_amazon_declares_visible_ascii(store: Store, token_server: FakeTokenServer) -> None:
    now = dt.datetime.now(UTC)
    add_account(
        store,
        "books",
        "amazon",
        {"token_url": token_server.token_url, "locale": "de"},
        TokenSet(access_token="Atna|old", refresh_token="Atnr|r", expires_at=now),
    )
    with Keeper(store, timeout=10) as keeper:
        token_server.handler = lambda seen: token_reply(
            access="Atna|new-token", token_type="bearer"
        )
        assert keeper.ensure_valid_token("books", force=True).access_token == "Atna|new-token"
        token_server.handler = lambda seen: token_reply(access=f"Atna|\r\n{TAIL}")
        with pytest.raises(ProviderError) as info:
            keeper.ensure_valid_token("books", force=True)
        assert TAIL not in str(info.value)


class DPoPProvider(OAuth2Provider):
    name = "test-dpop"
    token_types = frozenset({"bearer", "dpop"})


def test_a_provider_may_declare_other_token_types(
    store: Store, token_server: FakeTokenServer
) -> None:
    register_provider(DPoPProvider())
    now = dt.datetime.now(UTC)
    config = {"token_url": token_server.token_url, "client_id": "c"}
    tokens = TokenSet(access_token="at", refresh_token="rt", expires_at=now)
    add_account(store, "dpop", "test-dpop", config, tokens)
    add_account(store, "plain", "oauth2", config, tokens)
    token_server.handler = lambda seen: token_reply(access="fresh", token_type="DPoP")
    with Keeper(store, timeout=10) as keeper:
        assert keeper.ensure_valid_token("dpop", force=True).tokens.token_type == "DPoP"
        with pytest.raises(ProviderError, match="token_type 'DPoP'"):
            keeper.ensure_valid_token("plain", force=True)


def test_user_given_tokens_are_checked_too(store: Store) -> None:
    config = {"token_url": "https://example.com/t", "client_id": "c"}
    for access, refresh in ((f"a\n{TAIL}", "rt"), ("at", f"r\r{TAIL}"), ("Atna|x", "rt")):
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=None)
        with pytest.raises(ConfigError) as info:
            add_account(store, "acct", "oauth2", config, tokens)
        assert TAIL not in str(info.value)
    assert (
        AmazonProvider().check_tokens(
            TokenSet(access_token="Atna|x", refresh_token="Atnr|y", expires_at=None)
        )
        is None
    )


def test_cli_refuses_and_prints_nothing_raw(tmp_path: Path, token_server: FakeTokenServer) -> None:
    db = tmp_path / "data" / "stayfresh.db"
    token_server.handler = lambda seen: Reply(200, {"access_token": f"x\x1b]0;owned\x07{TAIL}"})
    add = invoke_cli(
        "account", "add", "acct", "--provider", "oauth2", "--token-url", token_server.token_url,
        "--client-id", "c", "--refresh-token-env", "RT", db=db, env={"RT": "rt"},
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    done = invoke_cli("-vv", "token", "acct", db=db)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert TAIL not in done.stderr and "\x1b" not in done.stderr
    assert "U+001B" in done.stderr
    bad = invoke_cli(
        "account", "add", "other", "--provider", "oauth2", "--token-url", token_server.token_url,
        "--client-id", "c", "--refresh-token-env", "RT", db=db, env={"RT": f"rt\r\n{TAIL}"},
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert TAIL not in bad.stderr
