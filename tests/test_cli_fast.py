"""``stayfresh token NAME`` is the command scripts run once per request: it loads only what it needs.

The valid path (SQLite, token still valid) must not import an HTTP client,
rich or the jobs; commands load lazily, yet ``--help`` lists them all and the
notification foreground layer still runs for every command. No wall-clock
assertion here: what is imported is what costs the time, and it is exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import add_oauth2, run_cli
from stayfresh.store import SQLiteStore

#: runs the console-script entry point and prints, at exit, the heavy modules it imported
WATCH = """
import atexit, json, sys
HEAVY = ("httpx", "httpx2", "httpcore", "httpcore2", "rich")
def report():
    mods = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY
                  or m.startswith(("stayfresh.jobs", "stayfresh.work")))
    layer = "stayfresh.cli._foreground" in sys.modules
    commands = sorted(m for m in sys.modules if m.startswith("stayfresh.cli._")
                      and m.rsplit(".", 1)[1] not in ("_app", "_params", "_foreground"))
    sys.stderr.write("\\nWATCH " + json.dumps({"heavy": mods, "layer": layer,
                                                "commands": commands}) + "\\n")
atexit.register(report)
sys.argv = ["stayfresh", *sys.argv[1:]]
from stayfresh.cli import main
main()
"""

TOP_LEVEL = [
    "account", "constraints", "daemon", "download", "library", "login", "logout",
    "notify", "service", "settings", "status", "sync", "token", "work",
]  # fmt: skip


def watched(db: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    done = subprocess.run(
        [sys.executable, "-c", WATCH, "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("WATCH ")][-1]
    return done, json.loads(line.removeprefix("WATCH "))


def test_valid_token_path_imports_no_http_client_rich_or_jobs(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "work", "https://idp.invalid/token", expires_in=3600, access="tok-1")
    store.close()
    done, seen = watched(db_path, "token", "work")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "tok-1\n"
    assert seen["heavy"] == []
    assert seen["commands"] == ["stayfresh.cli._token"]  # no other command module
    assert seen["layer"] is True  # the notification foreground layer was wired in


def test_json_output_on_the_valid_path_stays_light(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "work", "https://idp.invalid/token", expires_in=3600, access="tok-2")
    store.close()
    done, seen = watched(db_path, "token", "work", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["access_token"] == "tok-2"
    assert seen["heavy"] == []


def test_token_runs_the_foreground_layer(db_path: Path) -> None:
    added = run_cli("notify", "add", "Tick", "--rrule", "FREQ=HOURLY", "--tz", "UTC", db=db_path)
    assert added.returncode == 0, added.stderr
    store = SQLiteStore(db_path)
    add_oauth2(store, "work", "https://idp.invalid/token", expires_in=3600, access="tok-3")
    store.close()
    with contextlib.closing(sqlite3.connect(db_path)) as raw, raw:  # last reschedule 5 h ago
        raw.execute("UPDATE notify_state SET last_reschedule_at = last_reschedule_at - 5 * 3600")
    done, seen = watched(db_path, "token", "work")
    assert done.returncode == 0, done.stderr
    assert seen["heavy"] == []
    status = run_cli("notify", "status", "--json", db=db_path)
    assert status.returncode == 0, status.stderr
    foreground = json.loads(status.stdout)["layers"]["foreground"]
    assert foreground["successes"] == 2  # at `notify add`, then again at `token`


def test_help_lists_every_command(tmp_path: Path) -> None:
    done = run_cli("--help", db=tmp_path / "s.db")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("Commands:", 1)[1].splitlines()
    listed = [x.split()[0] for x in lines if x.startswith("  ") and not x.startswith("   ")]
    assert listed == TOP_LEVEL
    account = run_cli("account", "--help", db=tmp_path / "s.db")
    assert "import" in account.stdout  # attached by the login module, loaded with `account`


@pytest.mark.parametrize("command", TOP_LEVEL)
def test_every_command_help_works(tmp_path: Path, command: str) -> None:
    done = run_cli(command, "--help", db=tmp_path / "s.db")
    assert done.returncode == 0, done.stderr
    assert "--db" in done.stdout or "Commands:" in done.stdout
    assert not (tmp_path / "s.db").exists()


def test_an_unknown_command_is_still_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli("tokne", "work", db=tmp_path / "s.db")
    assert done.returncode == 2
    assert done.stderr.startswith("error: No such command 'tokne'")
    assert len(done.stderr.strip().splitlines()) == 1
