"""``stayfresh notify …`` end to end in real subprocesses."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import invoke_cli
from stayfresh.store import SQLiteStore


def ok(db: Path, *args: str, **kw: object) -> str:
    done = invoke_cli(*args, db=db, **kw)  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reminders_window_sinks_background_status(db_path: Path) -> None:
    out = ok(db_path, "notify", "add", "Stretch", "--rrule", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
             "--start", "2026-01-01 09:00", "--tz", "Europe/Berlin")  # fmt: skip
    assert out.startswith("reminder 1: Stretch") and "next: " in out
    added = json.loads(
        ok(db_path, "notify", "add", "Tea", "--at", "+1h", "--body", "green", "--json")
    )
    assert added["refresh"]["status"] == "refreshed" and len(added["pending"]) == 1
    rules = json.loads(ok(db_path, "notify", "list", "--json"))
    assert [r["title"] for r in rules] == ["Stretch", "Tea"] and rules[0]["tz"] == "Europe/Berlin"
    pending = json.loads(ok(db_path, "notify", "pending", "--json"))
    assert len(pending) == 3
    assert sum(p["title"] == "Stretch" for p in pending) == 2
    berlin = ZoneInfo("Europe/Berlin")
    local = {dt.datetime.fromisoformat(p["due_at"]).astimezone(berlin).strftime("%H:%M")
             for p in pending if p["title"] == "Stretch"}  # fmt: skip
    assert local == {"09:00"}

    assert ok(db_path, "notify", "refresh").startswith("refreshed: 3 pending from 2 reminder(s)")
    refreshed = json.loads(ok(db_path, "notify", "refresh", "--json"))
    assert refreshed["status"] == "refreshed" and refreshed["layer"] == "manual"

    assert "sink 1: log" in ok(db_path, "notify", "sink", "add", "log")
    url = "json://127.0.0.1:9/hook"
    out = ok(db_path, "notify", "sink", "add", "-", "--at-least-once", input=url + "\n")
    assert "(at-least-once)" in out
    sinks = json.loads(ok(db_path, "notify", "sink", "list", "--json"))
    assert [(s["kind"], s["at_least_once"]) for s in sinks] == [("log", False), ("apprise", True)]
    assert ok(db_path, "notify", "sink", "remove", "1") == "removed sink 1\n"

    enabled = json.loads(ok(db_path, "notify", "background", "enable", "--json"))
    assert enabled["enabled"] and enabled["name"] == "NOTIFICATION_REFRESH_TASK"
    assert "NOTIFICATION_REFRESH_TASK" in ok(db_path, "work", "list")
    status = json.loads(ok(db_path, "notify", "status", "--json"))
    assert status["rules"] == 2 and status["pending"] == 3 and status["background"]["enabled"]
    assert status["layers"]["foreground"]["successes"] == 2  # one per `notify add`
    assert status["layers"]["manual"]["successes"] == 2
    assert status["layers"]["manual"]["seconds_since_last_success"] >= 0
    assert "foreground executions 2" in ok(db_path, "notify", "status")
    disabled = json.loads(ok(db_path, "notify", "background", "disable", "--json"))
    assert disabled == {"enabled": False, "cancelled": [enabled["id"]]}
    assert not json.loads(ok(db_path, "notify", "status", "--json"))["background"]["enabled"]

    assert ok(db_path, "notify", "remove", "2") == "removed reminder 2\n"
    assert len(json.loads(ok(db_path, "notify", "pending", "--json"))) == 2
    config = json.loads(ok(db_path, "notify", "config", "--capacity", "1", "--json"))
    assert config["capacity"] == 1
    assert len(json.loads(ok(db_path, "notify", "pending", "--json"))) == 1


def test_refresh_says_skipped_while_another_process_holds_the_lock(db_path: Path) -> None:
    ok(db_path, "notify", "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")
    store = SQLiteStore(db_path)
    lock = store.lock("notify", "window")
    assert lock.acquire(0)
    try:
        assert ok(db_path, "notify", "refresh").startswith("skipped: another refresh holds")
        assert json.loads(ok(db_path, "notify", "refresh", "--json"))["status"] == "skipped"
    finally:
        lock.release()
    assert ok(db_path, "notify", "refresh").startswith("refreshed: ")
    status = json.loads(ok(db_path, "notify", "status", "--json"))
    assert status["layers"]["manual"]["skips"] == 2 and status["layers"]["manual"]["successes"] == 1
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rrule", "FREQ=DAILY", "--at", "now"], "exactly one of"),
        (["--rrule", "FREQ=FORTNIGHTLY"], "invalid RRULE"),
        (["--rrule", "FREQ=SECONDLY"], "not supported"),
        (["--at", "tomorrow-ish"], "cannot read time"),
        (["--at", "now", "--tz", "Mars/Base"], "unknown time zone"),
        (["--at", "now", "--start", "now"], "--start only applies"),
    ],
)
def test_bad_input_is_a_usage_error(db_path: Path, args: list[str], message: str) -> None:
    done = invoke_cli("notify", "add", "x", *args, db=db_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_bad_sinks_and_ids(db_path: Path) -> None:
    assert invoke_cli("notify", "sink", "add", "nope://x", db=db_path).returncode == 2
    assert invoke_cli("notify", "remove", "42", db=db_path).returncode == 2
    assert invoke_cli("notify", "sink", "remove", "42", db=db_path).returncode == 2


def test_deliver_command_sends_what_is_due(db_path: Path) -> None:
    ok(db_path, "notify", "add", "Now", "--at", "now", "--tz", "UTC")
    out = invoke_cli("notify", "deliver", "--json", db=db_path)
    assert out.returncode == 0 and json.loads(out.stdout)["sent"] == 1
    assert "notification: Now" in out.stderr  # the implicit log sink, at WARNING
    history = json.loads(ok(db_path, "notify", "deliveries", "--json"))
    assert [(h["title"], h["state"], h["sink_id"]) for h in history] == [("Now", "sent", 0)]


def test_any_command_runs_the_foreground_layer(db_path: Path) -> None:
    ok(db_path, "notify", "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")
    store = SQLiteStore(db_path)
    # pretend the last reschedule was 5 hours ago
    with contextlib.closing(sqlite3.connect(store.path)) as raw, raw:
        raw.execute("UPDATE notify_state SET last_reschedule_at = last_reschedule_at - 5 * 3600")
    ok(db_path, "work", "list")  # an unrelated command
    assert (
        json.loads(ok(db_path, "notify", "status", "--json"))["layers"]["foreground"]["successes"]
        == 2
    )
    ok(db_path, "work", "list")  # within 4 h now: one read, nothing more
    assert (
        json.loads(ok(db_path, "notify", "status", "--json"))["layers"]["foreground"]["executions"]
        == 2
    )
    store.close()


def test_commands_that_never_open_the_database_do_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "s.db"
    assert invoke_cli("--help", db=missing).returncode == 0
    assert invoke_cli("notify", "--help", db=missing).returncode == 0
    assert not missing.exists()
