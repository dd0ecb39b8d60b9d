"""``stayfresh status``: accounts, works and settings on one screen, and the same as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply
from stayfresh.jobs import collect_status, on_account_ready, save_setting
from stayfresh.store import Store
from stayfresh.work import NullWaker, Runner, WorkManager


def _populate(store: Store, server: FakeTokenServer) -> None:
    """alice is fine (90 min left); bob's refresh token was rejected by the background check."""
    save_setting(store, "sync_frequency", "6h")
    add_oauth2(store, "alice", server.token_url, expires_in=90 * 60, access="AT-alice-secret")
    add_oauth2(store, "bob", server.token_url, expires_in=-60, refresh="RT-bob-secret")
    manager = WorkManager(store, waker=NullWaker())
    for name in ("alice", "bob"):
        on_account_ready(store, name, manager=manager)
    server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    runner = Runner(store, listen=False, overrides={"network": "metered"})
    assert runner.run_pending() == 2  # both token checks; the syncs wait for Wi-Fi


def test_collect_status(store: Store, token_server: FakeTokenServer) -> None:
    _populate(store, token_server)
    data = collect_status(store)
    accounts = {a["name"]: a for a in data["accounts"]}
    assert accounts["alice"]["status"] == "ok"
    assert 88 <= accounts["alice"]["expires_in_minutes"] <= 90
    assert accounts["bob"]["status"] == "needs_login"
    assert accounts["bob"]["failures"] == 1
    works = {w["name"]: w for w in data["works"]}
    assert set(works) == {
        "token-refresh:alice",
        "token-refresh:bob",
        "library-sync:alice",
        "library-sync:bob",
    }
    assert works["token-refresh:alice"]["last_outcome"] == "success"
    assert works["token-refresh:bob"]["last_outcome"] == "failure"
    assert "run `stayfresh login bob`" in works["token-refresh:bob"]["message"]
    assert works["library-sync:alice"]["state"] == "ENQUEUED"
    assert works["library-sync:alice"]["network"] == "unmetered"
    assert works["library-sync:alice"]["last_outcome"] is None
    assert works["token-refresh:alice"]["account"] == "alice"
    assert works["token-refresh:alice"]["next_run_at"] is not None
    assert data["settings"]["sync_frequency"] == "6h"
    assert data["settings_default"] == {
        "sync_frequency": False,
        "sync_wifi_only": True,
        "auto_token_refresh": True,
        "token_refresh_interval": True,
    }


def test_cli_status_text_and_json(
    db_path: Path, store: Store, token_server: FakeTokenServer
) -> None:
    _populate(store, token_server)
    done = invoke_cli("status", db=db_path, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for needle in (
        "Accounts",
        "Works",
        "Settings",
        "alice",
        "needs_login",
        "token-refresh:bob",
        "library-sync:alice",
        "failure: account bob needs a new login",
        "sync_frequency",
        "6h (set)",
        "in 1d",
    ):
        assert needle in text, (needle, text)
    as_json = invoke_cli("status", "--json", db=db_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert {a["name"] for a in data["accounts"]} == {"alice", "bob"}
    assert len(data["works"]) == 4
    assert data["settings"]["sync_wifi_only"] == "on"
    for output in (text, as_json.stdout):
        assert "AT-alice-secret" not in output and "RT-bob-secret" not in output
        assert "old-refresh" not in output and 'secret"' not in output


def test_cli_status_hides_cancelled_works_unless_asked(
    db_path: Path, store: Store, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "alice", token_server.token_url)
    on_account_ready(store, "alice", manager=WorkManager(store, waker=NullWaker()))
    assert invoke_cli("logout", "alice", db=db_path).returncode == 0
    plain = json.loads(invoke_cli("status", "--json", db=db_path).stdout)
    assert plain["works"] == []
    assert plain["accounts"][0]["status_message"] == "logged out"
    everything = json.loads(invoke_cli("status", "--json", "--all", db=db_path).stdout)
    assert [w["state"] for w in everything["works"]] == ["CANCELLED"]
    empty = invoke_cli("status", db=db_path)
    assert empty.returncode == 0 and "no works scheduled" in empty.stdout


def test_cli_status_on_an_empty_database(db_path: Path) -> None:
    done = invoke_cli("status", db=db_path)
    assert done.returncode == 0, done.stderr
    assert "stayfresh account add" in done.stdout
