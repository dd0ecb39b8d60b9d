"""account remove cancels the account's works; login restores a client secret after logout."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke_cli
from oidc_server import OIDCServer
from stayfresh.store import SQLiteStore


def test_account_remove_cancels_its_works(db_path: Path) -> None:
    env = {"RT": "refresh-token-value"}
    added = invoke_cli(
        "account", "add", "gone", "--provider", "oauth2", "--token-url", "http://127.0.0.1:9/token",
        "--client-id", "c", "--refresh-token-env", "RT", db=db_path, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    works = json.loads(invoke_cli("work", "list", "--json", db=db_path).stdout)
    assert any(w["name"] == "token-refresh:gone" and w["state"] == "ENQUEUED" for w in works)
    removed = invoke_cli("account", "remove", "gone", db=db_path)
    assert removed.returncode == 0, removed.stderr
    assert "cancelled" in removed.stdout
    works = json.loads(invoke_cli("work", "list", "--json", db=db_path).stdout)
    assert all(w["state"] == "CANCELLED" for w in works if w["name"] == "token-refresh:gone")
    assert invoke_cli("account", "remove", "gone", db=db_path).returncode == 1


def test_login_after_logout_can_restore_the_client_secret(
    db_path: Path, oidc_server: OIDCServer
) -> None:
    issued = oidc_server.obtain_tokens()
    env = {"RT": str(issued["refresh_token"]), "CS": oidc_server.client_secret}
    added = invoke_cli(
        "account", "add", "conf", "--provider", "oidc", "--issuer", oidc_server.issuer,
        "--client-id", oidc_server.client_id, "--client-secret-env", "CS", "--refresh-token-env", "RT",
        db=db_path, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert invoke_cli("logout", "conf", db=db_path).returncode == 0
    store = SQLiteStore(db_path)
    row = store.get_account("conf")
    assert row is not None and "client_secret" not in row.config
    # an unknown account cannot get a secret without --provider
    unknown = invoke_cli("login", "nobody", "--device", "--client-secret-env", "CS", db=db_path, env=env)
    assert unknown.returncode == 2 and "--provider" in unknown.stderr
    # the secret is stored before the login starts (the login itself times out here)
    invoke_cli(
        "login", "conf", "--device", "--client-secret-env", "CS", "--timeout", "1",
        db=db_path, env={**env, "STAYFRESH_NO_BROWSER": "1"},
    )  # fmt: skip
    row = store.get_account("conf")
    assert row is not None and row.config.get("client_secret") == oidc_server.client_secret
    store.close()
