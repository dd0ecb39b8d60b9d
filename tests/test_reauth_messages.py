"""Every message that asks for a new login names the account, through the real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply
from stayfresh.store import SQLiteStore


def test_token_force_after_invalid_grant_names_the_account(
    tmp_path: Path, token_server: FakeTokenServer
) -> None:
    db = tmp_path / "data" / "stayfresh.db"
    store = SQLiteStore(db)
    add_oauth2(store, "work.mail", token_server.token_url, expires_in=-60)
    store.close()
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})

    runs = [
        invoke_cli("token", "work.mail", "--force", db=db),  # the provider says invalid_grant
        invoke_cli("token", "work.mail", db=db),  # the account is marked: no request at all
        invoke_cli("token", "work.mail", "--force", "--json", db=db),  # forced: asks again
    ]
    for done in runs:
        assert done.returncode == 3, done.stderr
        assert "run `stayfresh login work.mail` to sign in again" in done.stderr
        assert "NAME" not in done.stderr
        assert done.stdout == ""
    assert token_server.count == 2
