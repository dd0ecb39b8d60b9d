"""Reminders that can never hang, explode or trace back: refused, budgeted, left out.

Bad rules reach the database two ways: through ``notify add`` (refused there,
exit 2, nothing stored) and past it — written by an older version or by hand.
The hand-written ones are put there with plain SQL (sqlite3 / psycopg), on
both backends; a reschedule must leave them out with one error line and
schedule everyone else, and no command may be slowed down by them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2, invoke_cli
from stayfresh import notify
from stayfresh.notify import on_app_start, refresh
from stayfresh.notify._budget import FOREGROUND_WORK_BUDGET, RULE_WORK_BUDGET, WorkBudget
from stayfresh.store import Store, open_store

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
#: rules dateutil accepts and then scans to the year 9999 (seconds each) or loops on forever
NEVER_MATCH = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
PATHOLOGICAL = [
    NEVER_MATCH,
    "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=WEEKLY;BYMONTH=2;BYDAY=MO;BYSETPOS=9",
]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh store lives: a SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "limits.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    opened = open_store(location)
    yield opened
    opened.close()


def by_hand(location: str, sql: str, *params: object) -> None:
    """What an older version or a user with a SQL shell does: bypass every check."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
    else:
        import sqlite3

        with sqlite3.connect(location) as conn:
            conn.execute(sql, params)
        conn.close()


def add(store: Store, title: str, rrule: str = "FREQ=HOURLY") -> int:
    new = notify.make_rule(title, rrule=rrule, start="2026-01-01 00:00", tz="Europe/Berlin", now=T0)
    return store.add_notify_rule(new, now=T0.timestamp()).id


def corrupt(store: Store, location: str, rrules: list[str]) -> list[int]:
    """Rules added the honest way, then rewritten by hand into ``rrules``."""
    ids = [add(store, f"bad {i}") for i in range(len(rrules))]
    for rule_id, rrule in zip(ids, rrules, strict=True):
        by_hand(location, "UPDATE notify_rules SET rrule = ? WHERE id = ?", rrule, rule_id)
    return ids


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- 1, 4: refused at `notify add`, exit 2, one line, nothing stored ------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rrule", "FREQ=DAILY;INTERVAL=0"], "INTERVAL=0 is out of range"),
        (["--rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "cannot make progress"),
        (["--rrule", "FREQ=MINUTELY;BYHOUR=25"], "BYHOUR value 25 is out of range"),
        (["--rrule", "FREQ=MINUTELY;COUNT=99999999"], "COUNT=99999999 is out of range"),
        (["--rrule", "FREQ=YEARLY;BYDAY=60MO"], "BYDAY=60MO"),
        (["--rrule", "FREQ=DAILY;COUNT=3;UNTIL=20300101T000000Z"], "not both"),
        (
            ["--rrule", "FREQ=MINUTELY;INTERVAL=120;BYHOUR=1", "--start", "2026-01-01 00:00"],
            "cannot be expanded",
        ),
        (["--at", "2020-01-01 09:00"], "is in the past (use --allow-past"),
    ],
)
def test_rules_that_cannot_make_progress_are_refused(
    db_path: Path, args: list[str], message: str
) -> None:
    done = invoke_cli("notify", "add", "x", "--tz", "Europe/Berlin", *args, db=db_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1  # one line, no traceback
    listed = invoke_cli("notify", "list", "--json", db=db_path)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_a_past_reminder_is_accepted_with_allow_past(db_path: Path) -> None:
    done = invoke_cli("notify", "add", "Old", "--at", "2020-01-01 09:00", "--allow-past",
                   "--tz", "UTC", "--json", db=db_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["rule"]["at"] == "2020-01-01T09:00:00+00:00" and added["pending"] == []


# -- 2: a stored rule over its budget is left out, with one error line per reschedule --------


def test_stored_rules_over_budget_are_left_out_with_one_error_line_per_reschedule(
    store: Store, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = add(store, "good")
    bad = corrupt(store, location, [NEVER_MATCH, "FREQ=DAILY;INTERVAL=0"])
    caplog.set_level(logging.INFO, logger="stayfresh")
    for round_ in (1, 2):
        outcome = refresh(store, "background", now=T0 + dt.timedelta(hours=round_))
        assert (
            outcome.status == "refreshed"
            and outcome.state is not None
            and outcome.state.result is not None
        )
        assert {p.rule_id for p in store.list_pending_notifications()} == {good}
        assert outcome.state.result.scheduled == 49  # the hourly reminder, both ends of 2 days
        lines = errors(caplog)
        assert len(lines) == round_, lines  # one line per reschedule, not per rule or candidate
        assert f"{bad[0]}: RuleTooExpensive" in lines[-1] and "cannot make progress" in lines[-1]
        assert f"{bad[1]}: ConfigError: INTERVAL=0" in lines[-1]


# -- 3: the foreground layer has a budget; past it, it gives up and changes nothing ---------


def test_foreground_tolerates_a_few_bad_rules_and_gives_up_on_many(
    store: Store, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = add(store, "good")
    assert on_app_start(store, now=T0).status == "refreshed"
    corrupt(store, location, PATHOLOGICAL[:2])
    # two rules at their limit are within the foreground's budget: the others are scheduled
    assert 2 * RULE_WORK_BUDGET < FOREGROUND_WORK_BUDGET < 3 * RULE_WORK_BUDGET
    later = T0 + dt.timedelta(minutes=30)
    assert on_app_start(store, now=later).status == "refreshed"
    assert {p.rule_id for p in store.list_pending_notifications()} == {good}

    corrupt(store, location, PATHOLOGICAL[2:])  # four: the third stops the foreground
    kept = store.list_pending_notifications()
    caplog.clear()
    gave_up = on_app_start(store, now=later + dt.timedelta(minutes=1))
    assert gave_up.status == "failed" and isinstance(gave_up.error, notify.WindowBudgetExceeded)
    assert store.list_pending_notifications() == kept  # nothing changed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("foreground layer gave up" in r.getMessage() for r in warnings)
    assert not errors(caplog) and all(r.exc_info is None for r in caplog.records)
    # the background layer has no window budget: it does the reschedule
    done = refresh(store, "background", now=later + dt.timedelta(minutes=2))
    assert (
        done.status == "refreshed"
        and done.state is not None
        and done.state.result is not None
        and done.state.result.scheduled == 48
    )
    assert {p.rule_id for p in store.list_pending_notifications()} == {good}


def test_the_window_budget_counts_only_work_spent_on_rules_left_out(
    store: Store, location: str
) -> None:
    good = add(store, "good")

    def nothing_to_waste() -> WorkBudget:
        return WorkBudget(0, kind="window")

    assert on_app_start(store, now=T0, budget=nothing_to_waste()).status == "refreshed"
    corrupt(store, location, ["FREQ=DAILY;INTERVAL=0"])  # refused by its text: costs nothing
    assert on_app_start(store, now=T0, budget=nothing_to_waste()).status == "refreshed"
    kept = store.list_pending_notifications()
    assert {p.rule_id for p in kept} == {good}
    corrupt(store, location, [NEVER_MATCH])  # scanned until its own budget ran out
    outcome = on_app_start(store, now=T0, budget=nothing_to_waste())
    assert outcome.status == "failed" and store.list_pending_notifications() == kept


# -- 3: unrelated commands are never slowed down by them (real CLI) ---------------------------


def test_unrelated_commands_succeed_whatever_is_in_the_database(location: str) -> None:
    store = open_store(location)
    add_oauth2(store, "acct", "http://127.0.0.1:9/token", expires_in=3600, access="the-access")
    add(store, "good")
    corrupt(store, location, [*PATHOLOGICAL, "FREQ=DAILY;INTERVAL=0"])
    store.close()
    # each command runs the foreground layer (the reminders changed since the last window);
    # the subprocess timeout of run_cli is the hang guard
    shown = invoke_cli("--db", location, "settings", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sync_frequency"] == "manual"
    assert "foreground layer gave up" in shown.stderr and "Traceback" not in shown.stderr
    token = invoke_cli("--db", location, "token", "acct")
    assert token.returncode == 0, token.stderr
    assert token.stdout == "the-access\n"
    # the background layer (here `notify refresh`) schedules the good one and names the bad
    refreshed = invoke_cli("--db", location, "notify", "refresh", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["scheduled"] > 0
    assert refreshed.stderr.count("could not be expanded") == 1


def test_unusable_stored_settings_fall_back_to_the_defaults(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is input too: a window of 1e308 s (an OverflowError traceback
    before) or a negative grace written by hand gives the default and one error line."""
    store = open_store(db_path)
    try:
        store.set_setting("notify.window", "1e308")
        store.set_setting("notify.grace", "-5")
        store.set_setting("notify.capacity", "12")
        store.set_setting("notify.send_lease", "0")
        with caplog.at_level(logging.ERROR):
            config = notify.NotifyConfig.load(store)
        assert config.window == notify.NotifyConfig().window
        assert config.grace == notify.NotifyConfig().grace
        assert config.send_lease == notify.NotifyConfig().send_lease
        assert config.capacity == 12
        assert len(errors(caplog)) == 3
    finally:
        store.close()
