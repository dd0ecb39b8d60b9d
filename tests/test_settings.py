"""Settings: validation with clear errors, and a change that reaches every account's works at once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import add_oauth2, invoke_cli
from stayfresh.errors import ConfigError
from stayfresh.jobs import (
    Settings,
    apply_settings,
    load_settings,
    logout,
    on_account_ready,
    save_setting,
)
from stayfresh.jobs.internal import (
    library_sync_work_name,
    token_refresh_work_name,
    validate_setting,
)
from stayfresh.store import Store
from stayfresh.testing import FakeClock
from stayfresh.work import NullWaker, WorkInfo, WorkManager, WorkState

HOUR = 3600.0


@pytest.fixture
def manager(store: Store) -> WorkManager:
    return WorkManager(store, clock=FakeClock(1_700_000_000.0), waker=NullWaker())


def live(manager: WorkManager, name: str) -> list[WorkInfo]:
    return [w for w in manager.by_name(name) if w.state is not WorkState.CANCELLED]


def only(manager: WorkManager, name: str) -> WorkInfo:
    found = live(manager, name)
    assert len(found) == 1, found
    return found[0]


def test_defaults_are_the_seeds(store: Store) -> None:
    settings = load_settings(store)
    assert settings == Settings()
    assert settings.to_json() == {
        "sync_frequency": "manual",
        "sync_wifi_only": "on",
        "auto_token_refresh": "on",
        "token_refresh_interval": "24h",
    }
    assert settings.sync_interval is None


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("sync_frequency", "6h", "6h"),
        ("sync-frequency", "1d", "24h"),
        ("sync_frequency", "3600", "1h"),
        ("sync_frequency", "Manual", "manual"),
        ("sync_wifi_only", "off", "off"),
        ("sync_wifi_only", "yes", "on"),
        ("auto_token_refresh", "false", "off"),
        ("token_refresh_interval", "12h", "12h"),
        ("token_refresh_interval", "90m", "1h30m"),
        ("settings.token_refresh_interval", "1d", "24h"),
    ],
)
def test_valid_values_are_normalised(key: str, value: str, stored: str) -> None:
    assert validate_setting(key, value)[1] == stored


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sync_frequency", "5h", "one of manual, 1h, 6h, 12h, 24h"),
        ("sync_frequency", "often", "one of manual"),
        ("sync_wifi_only", "maybe", "on or off"),
        ("token_refresh_interval", "5m", "at least 15m"),
        ("token_refresh_interval", "30d", "at most 7d"),
        ("token_refresh_interval", "soon", "not a duration"),
        ("colour", "blue", "unknown setting 'colour'"),
    ],
)
def test_invalid_values_are_refused_clearly(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_setting(key, value)


def test_lowered_minimum_interval_allows_short_token_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STAYFRESH_MIN_INTERVAL", "60")
    assert validate_setting("token_refresh_interval", "2m")[1] == "2m"


def test_unreadable_stored_value_falls_back_to_default(store: Store) -> None:
    store.set_setting("settings.sync_frequency", "every full moon")
    assert load_settings(store).sync_frequency == "manual"


def test_setting_back_to_default_removes_the_row(store: Store) -> None:
    save_setting(store, "sync_frequency", "6h")
    assert store.get_setting("settings.sync_frequency") == "6h"
    assert save_setting(store, "sync_frequency", "manual").sync_frequency == "manual"
    assert store.get_setting("settings.sync_frequency") is None


def test_a_change_reaches_every_account_at_once(
    store: Store, manager: WorkManager, token_server: object
) -> None:
    for name in ("alice", "bob"):
        add_oauth2(store, name, "http://127.0.0.1:9/token", expires_in=3600)
        on_account_ready(store, name, manager=manager)
    for name in ("alice", "bob"):
        assert only(manager, token_refresh_work_name(name)).interval == 24 * HOUR
        assert live(manager, library_sync_work_name(name)) == []  # manual by default

    # library sync on: a periodic work per account, Wi-Fi only by default
    apply_settings(store, save_setting(store, "sync_frequency", "6h"), manager=manager)
    first = {n: only(manager, library_sync_work_name(n)) for n in ("alice", "bob")}
    for info in first.values():
        assert info.interval == 6 * HOUR and info.constraints.network == "unmetered"
        assert info.worker == "stayfresh.library-sync"
        assert info.input["account"] in ("alice", "bob")
        assert info.input["db"] == str(store.path)  # type: ignore[attr-defined]

    # Wi-Fi only off: the same works, updated in place, schedule kept
    apply_settings(store, save_setting(store, "sync_wifi_only", "off"), manager=manager)
    for name, before in first.items():
        after = only(manager, library_sync_work_name(name))
        assert after.id == before.id and after.constraints.network == "connected"
        assert after.next_run_at == before.next_run_at

    # a new interval counts from the last run (WorkManager's UPDATE rule): 6h → 1h
    clock = manager.clock
    assert isinstance(clock, FakeClock)
    clock.advance(2 * HOUR)
    changes = apply_settings(store, save_setting(store, "sync_frequency", "1h"), manager=manager)
    assert {c.action for c in changes if c.name.startswith("library-sync")} == {"rescheduled"}
    for name in ("alice", "bob"):
        info = only(manager, library_sync_work_name(name))
        assert info.interval == HOUR and info.constraints.network == "connected"
        assert info.next_run_at is not None
        # never run: anchored on creation 2 h ago, so due now
        assert info.next_run_at.timestamp() == pytest.approx(clock.now)

    # the token refresh backup follows its own settings
    apply_settings(store, save_setting(store, "token_refresh_interval", "12h"), manager=manager)
    for name in ("alice", "bob"):
        assert only(manager, token_refresh_work_name(name)).interval == 12 * HOUR
    apply_settings(store, save_setting(store, "auto_token_refresh", "off"), manager=manager)
    for name in ("alice", "bob"):
        assert live(manager, token_refresh_work_name(name)) == []

    # manual again: every library sync cancelled
    apply_settings(store, save_setting(store, "sync_frequency", "manual"), manager=manager)
    for name in ("alice", "bob"):
        assert live(manager, library_sync_work_name(name)) == []
        assert manager.by_name(library_sync_work_name(name))[0].state is WorkState.CANCELLED


def test_applying_the_same_settings_twice_changes_nothing(
    store: Store, manager: WorkManager
) -> None:
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    save_setting(store, "sync_frequency", "12h")
    first = apply_settings(store, manager=manager)
    assert {c.action for c in first} == {"scheduled"}
    again = apply_settings(store, manager=manager)
    assert {c.action for c in again} == {"unchanged"}
    assert len(manager.list_work()) == 2


def test_settings_never_revive_a_logged_out_account(store: Store, manager: WorkManager) -> None:
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    on_account_ready(store, "alice", manager=manager)
    logout(store, "alice", manager=manager)
    apply_settings(store, save_setting(store, "sync_frequency", "1h"), manager=manager)
    assert live(manager, token_refresh_work_name("alice")) == []
    assert live(manager, library_sync_work_name("alice")) == []


def test_cli_settings_show_set_and_errors(db_path: Path, store: Store) -> None:
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    shown = invoke_cli("settings", "show", "--json", db=db_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sync_frequency"] == "manual"

    done = invoke_cli("settings", "set", "sync_frequency", "6h", db=db_path)
    assert done.returncode == 0, done.stderr
    assert "sync_frequency = 6h" in done.stdout
    assert "library-sync:alice: scheduled every 6h, network unmetered" in done.stdout
    infos = WorkManager(store, waker=NullWaker()).by_name("library-sync:alice")
    assert [i.state for i in infos] == [WorkState.ENQUEUED]

    text = invoke_cli("settings", "show", db=db_path)
    assert "6h (set)" in text.stdout and "sync_wifi_only" in text.stdout

    for args, message in [
        (("sync_frequency", "2h"), "sync_frequency must be one of manual, 1h, 6h, 12h, 24h"),
        (("token_refresh_interval", "1m"), "at least 15m"),
        (("nope", "1"), "unknown setting 'nope'"),
        (("auto_token_refresh", "sometimes"), "must be on or off"),
    ]:
        bad = invoke_cli("settings", "set", *args, db=db_path)
        assert bad.returncode == 2, bad
        assert message in bad.stderr and bad.stderr.startswith("error: ")
        assert "Traceback" not in bad.stderr
    assert load_settings(store).sync_frequency == "6h"  # nothing changed by the errors


def test_a_running_work_is_updated_not_interrupted(store: Store, manager: WorkManager) -> None:
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    on_account_ready(store, "alice", manager=manager)
    info = only(manager, token_refresh_work_name("alice"))
    claims = store.claim_work([info.id], runner_id="test", now=manager.clock(), lease_seconds=60)
    assert claims
    apply_settings(store, save_setting(store, "token_refresh_interval", "6h"), manager=manager)
    after = only(manager, token_refresh_work_name("alice"))
    assert after.id == info.id and after.state is WorkState.RUNNING
    assert after.interval == 6 * HOUR
    assert dt.timedelta(seconds=after.interval) == dt.timedelta(hours=6)
