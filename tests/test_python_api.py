"""Adding an account from Python is one typed call, with the background safety net."""

from __future__ import annotations

import pytest

import stayfresh
from fake_token_server import FakeTokenServer, token_reply
from stayfresh.errors import ConfigError
from stayfresh.store import Store
from stayfresh.tokens import Keeper, TokenSet
from stayfresh.work import WorkManager


def test_one_call_adds_the_account_and_its_safety_net(
    store: Store, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: token_reply(access="first", expires_in=3600)
    account = stayfresh.add_account(
        store, "work", token_url=token_server.token_url, client_id="app",
        client_secret="shh", refresh_token="RT", scope="read",
    )  # fmt: skip
    assert (account.provider, account.config["client_id"], account.status) == (
        "oauth2",
        "app",
        "ok",
    )
    assert "shh" not in repr(account)
    assert [w.name for w in WorkManager(store).list_work()] == ["token-refresh:work"]
    result = Keeper(store).ensure_valid_token("work")  # no access token yet: refreshes
    assert (result.access_token, result.was_refreshed) == ("first", True)
    assert token_server.count == 1


def test_an_issuer_makes_it_openid_connect_and_background_is_optional(store: Store) -> None:
    account = stayfresh.add_account(
        store, "corp", issuer="https://login.example", client_id="app",
        refresh_token="RT", auth_method="none", background=False,
    )  # fmt: skip
    assert account.provider == "oidc" and account.config["issuer"] == "https://login.example"
    assert WorkManager(store).list_work() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_id": "", "token_url": "https://idp.example/t"}, "client id"),
        ({"client_id": "app", "token_url": "http://idp.example/t"}, "https"),
        ({"client_id": "app"}, "token-url"),
    ],
)
def test_wrong_values_are_refused_like_the_cli_refuses_them(
    store: Store, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        stayfresh.add_account(store, "work", refresh_token="RT", **kwargs)  # type: ignore[arg-type]
    assert store.list_accounts() == []


def test_a_token_set_needs_only_what_you_have() -> None:
    tokens = TokenSet(refresh_token="RT")
    assert (tokens.access_token, tokens.expires_at, tokens.token_type) == (None, None, "Bearer")
