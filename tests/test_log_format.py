"""``--log-format json``: one JSON object per log line, with the decision's fields and no secret.

And at ``-v`` every work run says when it started and how it ended (a
successful run of a user's work used to log nothing).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import add_oauth2, run_cli
from fake_token_server import FakeTokenServer, token_reply
from stayfresh.store import SQLiteStore
from stayfresh.testing import wait_for
from stayfresh.work import NullWaker, Runner, WorkManager, WorkRequest


@pytest.mark.parametrize("how", ["option", "environment"])
def test_json_log_lines_carry_fields_and_no_secret(
    db_path: Path, token_server: FakeTokenServer, how: str
) -> None:
    token_server.handler = lambda seen: token_reply(
        access="NEW-ACCESS-SECRET", refresh="NEW-REFRESH-SECRET", expires_in=3600
    )
    store = SQLiteStore(db_path)
    add_oauth2(
        store, "work", token_server.token_url, expires_in=60,
        access="OLD-ACCESS-SECRET", refresh="OLD-REFRESH-SECRET",
    )  # fmt: skip
    store.close()
    args = ("-v", "--log-format", "json") if how == "option" else ("-v",)
    env = {"STAYFRESH_LOG_FORMAT": "json"} if how == "environment" else {}
    done = run_cli(*args, "token", "work", db=db_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "NEW-ACCESS-SECRET\n"  # the token goes to stdout, and only there
    lines = done.stderr.splitlines()
    assert lines, "at -v a refresh logs what it decided"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"].startswith("stayfresh.tokens") for r in records)
    assert "SECRET" not in done.stderr


def test_text_stays_the_default(db_path: Path, token_server: FakeTokenServer) -> None:
    store = SQLiteStore(db_path)
    add_oauth2(store, "work", token_server.token_url, expires_in=60)
    store.close()
    done = run_cli("-v", "token", "work", db=db_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr and not done.stderr.lstrip().startswith("{")


def test_each_run_logs_its_start_and_outcome(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(db_path)
    WorkManager(store, waker=NullWaker()).enqueue(WorkRequest(worker="work_helpers:ok"), name="w")
    caplog.set_level(logging.INFO, logger="stayfresh.work")
    runner = Runner(store).start()
    try:
        wait_for(lambda: any("ended" in r.getMessage() for r in caplog.records), 30)
    finally:
        runner.stop()
        store.close()
    started = [r for r in caplog.records if r.getMessage().startswith("work w started")]
    ended = [r for r in caplog.records if r.getMessage().startswith("work w ended: success")]
    assert len(started) == 1 and len(ended) == 1
    assert (started[0].work, started[0].worker, started[0].attempt) == ("w", "work_helpers:ok", 1)
    assert (ended[0].outcome, ended[0].levelname) == ("success", "INFO")
    assert ended[0].seconds >= 0


def test_verbose_after_the_command_counts_too(tmp_path: Path) -> None:
    db = tmp_path / "new.db"  # a new database: its migrations are logged at INFO
    quiet = run_cli("notify", "list", db=db)
    assert quiet.returncode == 0 and quiet.stderr == ""
    other = tmp_path / "other.db"
    after = run_cli("--log-format", "json", "notify", "list", "-v", db=other)
    assert after.returncode == 0, after.stderr
    records = [json.loads(line) for line in after.stderr.splitlines()]
    assert any("applying migration" in r["message"] and r["level"] == "INFO" for r in records)
