"""Providers against the real oidc-provider: discovery, client auth methods, rotation."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import run_cli
from oidc_server import OIDCServer
from stayfresh.store import Store
from stayfresh.tokens import Keeper, TokenSet, add_account

UTC = dt.UTC


def _stale(issued: dict[str, object]) -> TokenSet:
    now = dt.datetime.now(UTC)
    return TokenSet(
        access_token=str(issued["access_token"]),
        refresh_token=str(issued["refresh_token"]),
        expires_at=now - dt.timedelta(seconds=1),
        obtained_at=now - dt.timedelta(seconds=61),
    )


def test_oidc_discovery_finds_and_caches_the_token_url(store: Store, oidc_server: OIDCServer) -> None:
    issued = oidc_server.obtain_tokens()
    add_account(
        store,
        "corp",
        "oidc",
        {"issuer": oidc_server.issuer, "client_id": oidc_server.client_id, "client_secret": oidc_server.client_secret},
        _stale(issued),
    )
    oidc_server.reset_stats()
    with Keeper(store) as keeper:
        result = keeper.ensure_valid_token("corp")
    assert result.was_refreshed and result.access_token != issued["access_token"]
    assert oidc_server.stats()["refresh_success"] == 1
    row = store.get_account("corp")
    assert row is not None and row.config["token_url"] == oidc_server.token_url  # cached
    assert row.tokens.refresh_token != issued["refresh_token"]  # rotation on: the new one stored


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_oauth2_client_auth_methods_and_no_rotation(
    store: Store, oidc_server_norotate: OIDCServer, method: str
) -> None:
    server = oidc_server_norotate
    issued = server.obtain_tokens()
    add_account(
        store,
        "acct",
        "oauth2",
        {
            "token_url": server.token_url,
            "client_id": server.client_id,
            "client_secret": server.client_secret,
            "auth_method": method,
        },
        _stale(issued),
    )
    with Keeper(store) as keeper:
        first = keeper.ensure_valid_token("acct")
        second = keeper.ensure_valid_token("acct", force=True)
    assert first.was_refreshed and second.was_refreshed
    assert first.access_token != second.access_token
    row = store.get_account("acct")
    assert row is not None and row.tokens.refresh_token == issued["refresh_token"]  # kept


def test_public_client_without_secret(store: Store, oidc_server: OIDCServer) -> None:
    issued = oidc_server.obtain_tokens(client="public")
    add_account(
        store,
        "pub",
        "oauth2",
        {"token_url": oidc_server.token_url, "client_id": oidc_server.public_client_id, "auth_method": "none"},
        _stale(issued),
    )
    with Keeper(store) as keeper:
        assert keeper.ensure_valid_token("pub").was_refreshed


def test_cli_token_end_to_end_with_real_server(oidc_server: OIDCServer, tmp_path: object) -> None:
    issued = oidc_server.obtain_tokens()
    db = f"{tmp_path}/cli.db"
    env = {"RT": str(issued["refresh_token"]), "CS": oidc_server.client_secret}
    added = run_cli(
        "--db", db, "account", "add", "real", "--provider", "oidc", "--issuer", oidc_server.issuer,
        "--client-id", oidc_server.client_id, "--client-secret-env", "CS", "--refresh-token-env", "RT",
        env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    got = run_cli("--db", db, "token", "real", "--json")
    assert got.returncode == 0, got.stderr
    again = run_cli("token", "real", "--json", "--db", db)
    assert again.returncode == 0, again.stderr
    assert '"was_refreshed": true' in got.stdout and '"was_refreshed": false' in again.stdout
