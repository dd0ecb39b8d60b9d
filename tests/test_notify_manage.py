"""Reminders you can manage: ``notify edit``, ``disable`` and ``enable`` change a rule in place
and the window shows it at once (the change reschedules through the same lock as every change)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import invoke_cli
from notify_helpers import webhook


def _run(db: Path, *args: str) -> Any:
    done = invoke_cli("notify", *args, "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _pending_of(db: Path, rule_id: int) -> list[dict[str, Any]]:
    return [p for p in _run(db, "pending") if p["rule_id"] == rule_id]


def test_edit_changes_title_body_and_recurrence_in_place(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    assert len(_pending_of(db_path, rule["id"])) >= 47  # hourly over two days
    changed = _run(db_path, "edit", str(rule["id"]), "--title", "Tock", "--body", "b")
    assert (changed["rule"]["id"], changed["rule"]["title"], changed["rule"]["body"]) == (
        rule["id"], "Tock", "b",
    )  # fmt: skip
    assert changed["rule"]["rrule"] == "FREQ=HOURLY" and changed["rule"]["tz"] == "UTC"
    assert {p["title"] for p in _pending_of(db_path, rule["id"])} == {"Tock"}
    daily = _run(db_path, "edit", str(rule["id"]), "--rrule", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
    assert daily["rule"]["title"] == "Tock"  # what is not given stays
    due = [p["due_at"] for p in _pending_of(db_path, rule["id"])]
    assert 1 <= len(due) <= 2 and all(d.endswith("T09:00:00+00:00") for d in due)
    paris = _run(db_path, "edit", str(rule["id"]), "--tz", "Europe/Paris")  # re-timed in place
    assert paris["rule"]["tz"] == "Europe/Paris"
    assert all(p["due_at"][11:19] in ("08:00:00", "07:00:00") for p in paris["pending"])


def test_disable_empties_its_window_and_enable_refills_it(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    before = _pending_of(db_path, rule["id"])
    off = _run(db_path, "disable", str(rule["id"]))
    assert off["rule"]["enabled"] is False and off["pending"] == []
    assert _pending_of(db_path, rule["id"]) == []
    listed = invoke_cli("notify", "list", db=db_path).stdout
    assert "Tick (disabled)" in listed
    on = _run(db_path, "enable", str(rule["id"]))
    assert on["rule"]["enabled"] is True
    assert len(_pending_of(db_path, rule["id"])) == len(before)


def test_a_one_time_reminder_moves_with_at_only(db_path: Path) -> None:
    rule = _run(db_path, "add", "Once", "--at", "+2h", "--tz", "UTC")["rule"]
    moved = _run(db_path, "edit", str(rule["id"]), "--at", "+3h")
    assert moved["rule"]["at"] > rule["at"]
    assert [p["due_at"] for p in _pending_of(db_path, rule["id"])] == [moved["rule"]["at"]]
    done = invoke_cli("notify", "edit", str(rule["id"]), "--tz", "Europe/Paris", db=db_path)
    assert done.returncode == 2 and "move it with --at WHEN" in done.stderr


def test_bad_changes_are_refused_and_change_nothing(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    for args, message in [
        (("edit", "99", "--title", "x"), "no reminder with id 99"),
        (("disable", "99"), "no reminder with id 99"),
        (("edit", str(rule["id"]), "--title", " "), "needs a title"),
        (("edit", str(rule["id"]), "--rrule", "FREQ=DAILY;INTERVAL=0"), "INTERVAL"),
        (("edit", str(rule["id"]), "--at", "2001-01-01T00:00"), "in the past"),
    ]:
        done = invoke_cli("notify", *args, db=db_path)
        assert done.returncode == 2, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
    (listed,) = _run(db_path, "list")
    assert {k: v for k, v in listed.items() if k != "next_at"} == rule


def test_sink_test_sends_a_real_message_and_says_when_it_cannot(db_path: Path) -> None:
    with webhook() as hook:
        sink = _sink(db_path, hook.url)
        done = invoke_cli("notify", "sink", "test", str(sink["id"]), db=db_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"sent a test message through sink {sink['id']}")
        assert hook.titles() == ["stayfresh test"]
        hook.status = 500
        failed = invoke_cli("notify", "sink", "test", str(sink["id"]), "--json", db=db_path)
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["sent"] is False
    assert _run(db_path, "deliveries") == []  # a test is not a delivery
    missing = invoke_cli("notify", "sink", "test", "99", db=db_path)
    assert missing.returncode == 2 and "no sink with id 99" in missing.stderr


def _sink(db: Path, url: str) -> Any:
    done = invoke_cli("notify", "sink", "add", url, "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_removing_speaks_json_too(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    removed = _run(db_path, "remove", str(rule["id"]))
    assert removed["removed"] == rule["id"] and removed["refresh"]["status"] == "refreshed"
    sink = _sink(db_path, "log")
    assert _run(db_path, "sink", "remove", str(sink["id"])) == {"removed": sink["id"]}


def test_snooze_drops_the_occurrences_in_it_and_clear_brings_them_back(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    before = [p["due_at"] for p in _pending_of(db_path, rule["id"])]
    snoozed = _run(db_path, "snooze", str(rule["id"]), "--for", "3h")
    assert snoozed["rule"]["snoozed_until"] is not None
    after = [p["due_at"] for p in _pending_of(db_path, rule["id"])]
    assert after == [d for d in before if d >= snoozed["rule"]["snoozed_until"]]
    assert len(before) - len(after) == 3  # three hourly occurrences fall in the snooze
    assert "(snoozed until" in invoke_cli("notify", "list", db=db_path).stdout
    _run(db_path, "snooze", str(rule["id"]), "--clear")
    assert [p["due_at"] for p in _pending_of(db_path, rule["id"])] == before
    for args in (("snooze", str(rule["id"])), ("snooze", str(rule["id"]), "--for", "1h",
                                                "--clear"),
                 ("snooze", str(rule["id"]), "--until", "2001-01-01T00:00"),
                 ("snooze", "99", "--for", "1h")):  # fmt: skip
        assert invoke_cli("notify", *args, db=db_path).returncode == 2, args


def test_list_shows_each_reminders_next_occurrence(db_path: Path) -> None:
    rule = _run(db_path, "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC")["rule"]
    first = _pending_of(db_path, rule["id"])[0]["due_at"]
    (listed,) = _run(db_path, "list")
    assert listed["next_at"] == first
    text = invoke_cli("notify", "list", db=db_path).stdout
    assert f"; next {first[:10]} {first[11:16]} UTC" in text
    _run(db_path, "disable", str(rule["id"]))
    assert _run(db_path, "list")[0]["next_at"] is None
