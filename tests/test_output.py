"""Tables fit both readers: plain columns in a pipe, rich's boxed table on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import add_oauth2, run_cli
from stayfresh.store import SQLiteStore

BOX = set("│┃━─┏┓┗┛╇╭╮")


def _accounts(db: Path) -> None:
    store = SQLiteStore(db)
    add_oauth2(store, "a-very-long-account-name-that-a-terminal-would-cut", "https://idp.invalid/t",
               expires_in=3600)  # fmt: skip
    add_oauth2(store, "b", "https://idp.invalid/t", expires_in=3600)
    store.close()


def test_a_pipe_gets_plain_stable_columns(db_path: Path) -> None:
    _accounts(db_path)
    done = run_cli("account", "list", db=db_path, env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PROVIDER",
        "STATUS",
        "EXPIRES",
        "IN",
        "REFRESHES",
        "FAILURES",
    ]
    assert lines[1].split()[0] == "a-very-long-account-name-that-a-terminal-would-cut"  # never cut
    assert lines[2].split()[:3] == ["b", "oauth2", "ok"]
    assert not BOX & set(done.stdout)
    assert lines[1].index("oauth2") == lines[2].index("oauth2") == lines[0].index("PROVIDER")
    status = run_cli("status", db=db_path)
    assert status.stdout.splitlines()[0] == "Accounts:" and not BOX & set(status.stdout)


def test_a_terminal_gets_the_rich_table(db_path: Path) -> None:
    _accounts(db_path)
    main, child = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env.update(COLUMNS="200", TERM="xterm")
    with subprocess.Popen(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "--db", str(db_path),
         "account", "list"],
        stdout=child, stderr=subprocess.PIPE, env=env,
    ) as proc:  # fmt: skip
        os.close(child)
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            out += chunk
        proc.wait(60)
    os.close(main)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0
    assert BOX & set(text) and "b" in text


def test_durations_and_times_have_one_human_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt
    import time

    from stayfresh.cli._human import duration, expires_in, local, relative

    assert [duration(s) for s in (10800, 172800, 5400, 45, 0.2)] == [
        "3h",
        "2d",
        "1h30m",
        "45s",
        "0s",
    ]
    assert duration(float("inf")) == duration(float("-inf")) == duration(None) == "-"
    assert [expires_in(m) for m in (66, -3, 0, None)] == ["1h6m", "expired 3m ago", "expired",
                                                          "unknown"]  # fmt: skip
    now = 1_800_000_000.0
    assert relative(now + 330, now) == "in 5m30s" and relative(now - 7300, now) == "2h2m ago"
    assert relative(dt.datetime.fromtimestamp(now, dt.UTC), now) == "now"
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert local("2026-11-30T13:40:00+00:00") == "2026-11-30 14:40 +01:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
