"""``stayfresh token NAME`` is the command scripts run once per request: it loads only what it needs.

The valid path (SQLite, token still valid, notification window fresh) is
answered without click, the store classes or the keeper — and never imports an
HTTP client, rich or the jobs; every other case runs the full command, which
answers exactly as before. Commands load lazily, yet ``--help`` lists them all
and the notification foreground layer still runs for every command. No
wall-clock assertion here (speed is in ``benchmarks/bench_cli.py``): what is
imported is what costs the time, and it is exact.
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
from fake_token_server import FakeTokenServer, token_reply
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
                      and m.rsplit(".", 1)[1] not in ("_app", "_params", "_foreground", "_fast"))
    fast = not any(m in sys.modules for m in ("click", "stayfresh.store._sqlite",
                                               "stayfresh.tokens._keeper", "typing"))
    sys.stderr.write("\\nWATCH " + json.dumps({"heavy": mods, "layer": layer, "fast": fast,
                                                "decided": "stayfresh.notify._decision" in sys.modules,
                                                "commands": commands}) + "\\n")
atexit.register(report)
sys.argv = ["stayfresh", *sys.argv[1:]]
from stayfresh.cli import main
main()
"""

TOP_LEVEL = [
    "account", "completion", "constraints", "daemon", "download", "library", "login", "logout",
    "metrics", "notify", "service", "settings", "status", "sync", "token", "work",
]  # fmt: skip


def watched(
    db: Path | None, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", WATCH, *(["--db", str(db)] if db else []), *args],
        capture_output=True,
        text=True,
        env=full_env,
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
    assert seen["fast"] is True  # no click, no store classes, no keeper, not even typing
    assert seen["commands"] == []  # no command module
    assert seen["decided"] is True  # the foreground layer's test ran (one read, no lock)


def test_json_output_on_the_valid_path_stays_light(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "work", "https://idp.invalid/token", expires_in=3600, access="tok-2")
    store.close()
    done, seen = watched(db_path, "token", "work", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["access_token"] == "tok-2"
    assert seen["heavy"] == []
    assert seen["fast"] is False  # --json is the full command's
    assert seen["commands"] == ["stayfresh.cli._token"]  # and only that command's module


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
    assert seen["fast"] is False and seen["layer"] is True  # the window was due: full command
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


# -- the valid path and the full command give the same answers ---------------------------


def _account(db: Path, token_url: str = "https://idp.invalid/token", **kw: object) -> None:
    store = SQLiteStore(db)
    add_oauth2(store, "work", token_url, **kw)  # type: ignore[arg-type]
    store.close()


def test_db_after_the_command_and_from_the_environment_take_the_valid_path(db_path: Path) -> None:
    _account(db_path, expires_in=3600, access="tok-4")
    after, seen_after = watched(None, "token", "work", "--db", str(db_path))
    from_env, seen_env = watched(None, "token", "work", env={"STAYFRESH_DB": str(db_path)})
    assert (after.returncode, after.stdout) == (0, "tok-4\n"), after.stderr
    assert (from_env.returncode, from_env.stdout) == (0, "tok-4\n"), from_env.stderr
    assert seen_after["fast"] is True and seen_env["fast"] is True


def test_a_token_due_for_refresh_takes_the_full_command(
    db_path: Path, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: token_reply(access="fresh", expires_in=3600)
    _account(db_path, token_server.token_url, expires_in=10 * 60)  # 10 min < 30 min threshold
    done, seen = watched(db_path, "token", "work")
    assert (done.returncode, done.stdout) == (0, "fresh\n"), done.stderr
    assert seen["fast"] is False and token_server.count == 1
    again, seen_again = watched(db_path, "token", "work")  # now valid: the light path again
    assert (again.stdout, seen_again["fast"], token_server.count) == ("fresh\n", True, 1)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("-v", "token", "work"), {}),
        (("token", "work"), {"STAYFRESH_VERBOSE": "1"}),
        (("token", "work"), {"STAYFRESH_LOG_LEVEL": "debug"}),
        (("token", "work", "--threshold", "1m"), {}),
        (("token", "--", "work"), {}),
    ],
    ids=["-v", "verbose-env", "log-level-env", "threshold", "double-dash"],
)
def test_other_options_take_the_full_command_with_the_same_answer(
    db_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    _account(db_path, expires_in=3600, access="tok-5")
    done, seen = watched(db_path, *args, env=env)
    assert (done.returncode, done.stdout) == (0, "tok-5\n"), done.stderr
    assert seen["fast"] is False


def test_a_missing_account_or_database_is_reported_by_the_full_command(tmp_path: Path) -> None:
    db = tmp_path / "data" / "s.db"
    _account(db, expires_in=3600)
    missing, seen = watched(db, "token", "nobody")
    assert missing.returncode == 1 and "no account named 'nobody'" in missing.stderr
    assert seen["fast"] is False
    fresh_db = tmp_path / "new.db"  # the full command creates it, as it always did
    created, seen_created = watched(fresh_db, "token", "work")
    assert created.returncode == 1 and "no account named 'work'" in created.stderr
    assert seen_created["fast"] is False and fresh_db.exists()


def test_a_database_that_is_not_private_is_repaired_by_the_full_command(db_path: Path) -> None:
    _account(db_path, expires_in=3600, access="tok-6")
    db_path.chmod(0o644)
    done, seen = watched(db_path, "token", "work")
    assert (done.returncode, done.stdout, seen["fast"]) == (0, "tok-6\n", False)
    assert db_path.stat().st_mode & 0o777 == 0o600
    _, seen_again = watched(db_path, "token", "work")
    assert seen_again["fast"] is True


def test_a_newer_schema_is_refused_not_read(db_path: Path) -> None:
    _account(db_path, expires_in=3600, access="tok-7")
    with contextlib.closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0)")
    done, seen = watched(db_path, "token", "work")
    assert done.returncode != 0 and "tok-7" not in done.stdout
    assert "newer" in done.stderr and seen["fast"] is False


def test_the_valid_path_changes_nothing_in_the_database(db_path: Path) -> None:
    _account(db_path, expires_in=3600, access="tok-8")
    with contextlib.closing(sqlite3.connect(db_path)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = raw.execute("PRAGMA data_version").fetchone(), db_path.read_bytes()
    done, seen = watched(db_path, "token", "work")
    assert (done.stdout, seen["fast"]) == ("tok-8\n", True)
    with contextlib.closing(sqlite3.connect(db_path)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert raw.execute("SELECT count(*) FROM work").fetchone() == (0,)
        after = raw.execute("PRAGMA data_version").fetchone(), db_path.read_bytes()
    assert after[1] == before[1]  # not a byte of the database file changed


@pytest.mark.parametrize(
    "env",
    [
        {"XDG_DATA_HOME": "/srv/data", "HOME": "/home/u"},
        {"XDG_DATA_HOME": "", "HOME": "/home/u"},
        {"XDG_DATA_HOME": "relative/dir", "HOME": "/home/u"},
        {"HOME": "/home/u"},
    ],
    ids=["xdg", "xdg-empty", "xdg-relative", "home-only"],
)
def test_the_default_location_is_platformdirs_own(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    import platformdirs

    from stayfresh.store import default_db_path

    monkeypatch.delenv("STAYFRESH_DB", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = Path(platformdirs.user_data_dir("stayfresh")) / "stayfresh.db"
    assert default_db_path() == expected


def test_every_command_but_completion_daemon_and_metrics_speaks_json() -> None:
    import click

    from stayfresh.cli import cli

    ctx = click.Context(cli)
    without: list[str] = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                walk(command, [*path, name])
            elif not any(p.name == "as_json" for p in command.params):
                without.append(" ".join([*path, name]))

    walk(cli, [])
    # a shell script, a long-running process, and Prometheus' own text format
    assert without == ["completion", "daemon", "metrics"]


def test_help_shows_every_options_environment_variable(tmp_path: Path) -> None:
    done = run_cli("token", "--help", db=tmp_path / "s.db")
    for name in ("STAYFRESH_TOKEN_THRESHOLD", "STAYFRESH_TOKEN_FORCE", "STAYFRESH_TIMEOUT"):
        assert name in done.stdout.replace("\n", " ").replace("  ", " ").replace(" ", ""), name
    root = run_cli("--help", db=tmp_path / "s.db").stdout
    assert "STAYFRESH_LOG_FORMAT" in root and "STAYFRESH_VERBOSE" in root
