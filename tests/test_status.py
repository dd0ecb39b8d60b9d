"""``stayfresh status``: accounts, works and settings on one screen, and the same as JSON."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply
from stayfresh.jobs import collect_status, on_account_ready, save_setting
from stayfresh.jobs.internal import health_problems
from stayfresh.store import SQLiteStore, Store
from stayfresh.testing import wait_for
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


# -- status --check: what needs a person ---------------------------------------------------


def _check(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = invoke_cli("status", "--check", *args, db=db, env=env)
    return done.returncode, done.stdout.splitlines()


def test_check_is_quiet_and_zero_when_nothing_needs_attention(
    db_path: Path, token_server: FakeTokenServer
) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "alice", token_server.token_url, expires_in=90 * 60)
    store.close()
    assert _check(db_path) == (0, ["ok: nothing needs attention"])


def test_check_names_every_problem_one_line_each_and_exits_1(
    db_path: Path, token_server: FakeTokenServer
) -> None:
    store = SQLiteStore(db_path)
    _populate(store, token_server)  # bob needs a new sign-in; works wait and no daemon runs
    add_oauth2(store, "carol", token_server.token_url, expires_in=-60)
    store.record_fresh("token", "carol", "background", "failure", at=time.time(), error="boom 503")
    store.close()
    code, lines = _check(db_path)
    assert code == 1
    kinds = sorted(line.split(":", 1)[0] for line in lines)
    assert kinds == ["needs_login", "no_daemon", "refresh_failing"]
    assert any("run `stayfresh login bob`" in line for line in lines)
    assert any("carol" in line and "boom 503" in line for line in lines)
    done = invoke_cli("status", "--check", "--json", db=db_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert {(p["kind"], p["subject"]) for p in report["problems"]} == {
        ("needs_login", "bob"), ("refresh_failing", "carol"), ("no_daemon", None),
    }  # fmt: skip


def test_a_running_daemon_answers_the_check(db_path: Path, token_server: FakeTokenServer) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "alice", token_server.token_url, expires_in=90 * 60)
    on_account_ready(store, "alice", manager=WorkManager(store, waker=NullWaker()))
    assert "no_daemon" in {p.kind for p in health_problems(store)}
    runner = Runner(SQLiteStore(db_path), overrides={"network": "unmetered"}).start()
    try:
        wait_for(lambda: not any(p.kind == "no_daemon" for p in health_problems(store)), 30)
    finally:
        runner.stop()
    store.close()


def test_a_failed_work_and_a_stale_window_are_problems(db_path: Path) -> None:
    added = invoke_cli("notify", "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC", db=db_path)
    assert added.returncode == 0, added.stderr
    with contextlib.closing(sqlite3.connect(db_path)) as raw, raw:  # last reschedule 5 h ago
        raw.execute("UPDATE notify_state SET last_reschedule_at = last_reschedule_at - 5 * 3600")
    store = SQLiteStore(db_path)
    status = {"accounts": [], "works": [{"state": "FAILED", "name": "report", "id": "w1",
                                          "message": "disk on fire"}]}  # fmt: skip
    problems = health_problems(store, status=status, daemons=0)
    store.close()
    assert [(p.kind, p.subject) for p in problems] == [
        ("work_failed", "report"), ("notify_stale", None),
    ]  # fmt: skip
    assert "disk on fire" in problems[0].message
    # the command's own foreground layer rebuilds a stale window first (and its delivery
    # work then waits for a daemon, which is the one problem left)
    code, lines = _check(db_path)
    assert code == 1 and [line.split(":", 1)[0] for line in lines] == ["no_daemon"]
    with contextlib.closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("UPDATE notify_state SET last_reschedule_at = last_reschedule_at - 5 * 3600")
    code, lines = _check(db_path, env={"STAYFRESH_NOTIFY_FOREGROUND": "0"})
    assert code == 1 and lines[-1].startswith("notify_stale: the notification window is stale")
