"""``stayfresh work …`` commands (in-process through click) and asyncio embedding."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import work_helpers as wh
from stayfresh.cli import cli
from stayfresh.store import SQLiteStore
from stayfresh.work import Runner, WorkManager, WorkRequest, WorkState, control_dir


def run(db: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], env={"STAYFRESH_MIN_INTERVAL": "1"})
    assert result.exit_code == code, result.output
    return result.output


def test_add_list_status_history_run_cancel(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    out = run(db, "work", "add", "sync", "--worker", "work_helpers:ok", "--every", "15m",
              "--flex", "5m", "--input", '{"k": 1}', "--network", "connected", "--tag", "t1",
              "--backoff", "linear", "--backoff-delay", "45s", "--timeout", "2m")  # fmt: skip
    assert "sync: ENQUEUED (every 15m flex 5m)" in out
    info = json.loads(run(db, "work", "status", "sync", "--json"))
    assert info["state"] == "ENQUEUED" and info["interval"] == 900 and info["flex"] == 300
    assert info["constraints"] == {"network": "connected"} and info["tags"] == ["t1"]
    assert info["input"] == {"k": 1}
    listed = json.loads(run(db, "work", "list", "--json"))
    assert [w["name"] for w in listed] == ["sync"]
    assert "sync" in run(db, "work", "list")
    # a second add with the default policy (keep) changes nothing
    again = json.loads(
        run(db, "work", "add", "sync", "--worker", "noop", "--every", "1h", "--json")
    )
    assert again["id"] == info["id"] and again["worker"] == "work_helpers:ok"
    updated = json.loads(run(db, "work", "add", "sync", "--worker", "noop", "--every", "1h",
                             "--policy", "update", "--tag", "t1", "--json"))  # fmt: skip
    assert (
        updated["id"] == info["id"] and updated["worker"] == "noop" and updated["interval"] == 3600
    )

    # run now: a runner in this process picks it up despite the network constraint
    assert "triggered 1" in run(db, "work", "run", "sync")
    store = SQLiteStore(db)
    Runner(store, listen=False, overrides={"network": "none"}).run_pending()
    status = json.loads(run(db, "work", "status", "sync", "--json"))
    assert status["last_outcome"] == "success" and status["state"] == "ENQUEUED"
    hist = json.loads(run(db, "work", "history", "sync", "--json"))
    assert [h["outcome"] for h in hist] == ["success"]
    assert "success" in run(db, "work", "history", "sync")
    assert "last outcome:  success" in run(db, "work", "status", "sync")

    assert json.loads(run(db, "work", "cancel", "--tag", "t1", "--json")) == {
        "cancelled": [info["id"]]
    }
    assert json.loads(run(db, "work", "status", info["id"][:8], "--json"))["state"] == "CANCELLED"
    store.close()


def test_cancel_by_id_and_all(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a = json.loads(run(db, "work", "add", "a", "--worker", "noop", "--delay", "1h", "--json"))
    run(db, "work", "add", "b", "--worker", "noop", "--json")
    assert "cancelled 1" in run(db, "work", "cancel", "--id", a["id"])
    assert "cancelled 1" in run(db, "work", "cancel", "--all")
    states = {w["state"] for w in json.loads(run(db, "work", "list", "--json"))}
    assert states == {"CANCELLED"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "15m", "--delay", "1m"], "exclude each other"),
        (["--input", "{nope"], "not valid JSON"),
        (["--every", "soon"], "not a duration"),
        (["--input", "[1, 2]"], "must be a JSON object"),
    ],
)
def test_add_rejects_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    out = run(tmp_path / "s.db", "work", "add", "x", "--worker", "noop", *args, code=2)
    assert message in out


def test_status_of_unknown_work(tmp_path: Path) -> None:
    assert "no work named" in run(tmp_path / "s.db", "work", "status", "ghost", code=2)


def test_control_socket_folder_is_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    runner = Runner(store, environ={})
    runner.start()
    try:
        folder = control_dir(db)
        wh.wait_for(lambda: folder.exists() and any(folder.iterdir()), what="socket")
        assert folder == Path(str(db) + ".sock")
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        [sock] = list(folder.iterdir())
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
    finally:
        runner.stop()
    assert not any(folder.iterdir())  # the runner removes its socket
    store.close()


def test_control_dir_for_long_paths_is_short_and_stable(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120) / "s.db"
    a, b = control_dir(deep), control_dir(deep)
    assert a == b and len(os.fsencode(a)) < 90


def test_runner_served_from_asyncio_runs_async_workers_on_the_app_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    wm = WorkManager(store, environ={})
    info = wm.enqueue(WorkRequest(worker="work_helpers:async_ok"), name="a")

    async def main() -> WorkState:
        runner = Runner(store, environ={}, overrides={})
        task = asyncio.create_task(runner.serve())
        for _ in range(400):
            current = wm.get(info.id)
            if current is not None and current.state is WorkState.SUCCEEDED:
                break
            await asyncio.sleep(0.025)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        final = wm.get(info.id)
        assert final is not None
        return final.state

    assert asyncio.run(main()) is WorkState.SUCCEEDED
    store.close()
