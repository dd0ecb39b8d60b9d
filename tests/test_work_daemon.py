"""Real daemon processes on one database: SIGKILL, two runners, downtime, wake-ups.

Intervals are lowered with STAYFRESH_MIN_INTERVAL so real periods pass in
seconds. Nothing here asserts how fast something happened; waits are hang
guards only. Facts are read from the workers' own log lines and the store.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from stayfresh.store import SQLiteStore, open_store
from stayfresh.testing import wait_for
from stayfresh.work import SocketWaker, WorkManager, control_dir
from stayfresh.work._control import SocketListener
from work_helpers import Daemon, cli, env_for, read_log

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="daemon tests use Linux signals"),
    pytest.mark.slow,  # daemon processes, SIGKILL, SIGSTOP
]

FAST = {"STAYFRESH_MIN_INTERVAL": "1"}


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons started by a test; any still alive at the end are killed."""
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return str(request.getfixturevalue("pg_server").create_database())


def add(db: Path | str, name: str, log: Path, *args: str, **inp: object) -> None:
    cli(db, "work", "add", name, "--worker", "work_helpers:record",
        "--input", json.dumps({"log": str(log), **inp}), *args, **FAST)  # fmt: skip


def history(db: Path | str, name: str) -> list[str]:
    store = open_store(str(db))
    try:
        return [r.outcome for r in WorkManager(store).history(name=name)]
    finally:
        store.close()


def test_sigkill_mid_run_is_taken_over_at_once_on_the_same_host(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db, log, marker = tmp_path / "s.db", tmp_path / "runs.log", tmp_path / "started"
    add(db, "k", log, "--delay", "0", marker=str(marker), hold=120)
    # a long lease: waiting it out would trip the hang guard below
    first = Daemon(db, tmp_path / "d1.err", "--lease", "120s", **FAST)
    daemons.append(first)
    wait_for(marker.exists, what="first attempt to start")
    first.kill()  # SIGKILL while the work is RUNNING: nothing gets cleaned up
    assert read_log(log) == []
    store = SQLiteStore(db)
    [row] = store.find_work(name="k")
    assert row.state == "RUNNING" and row.lease_until is not None
    assert row.lease_owner is not None and row.lease_owner.split(":")[1] == str(first.proc.pid)
    dead_lease = row.lease_until
    second = Daemon(db, tmp_path / "d2.err", "--lease", "2s", **FAST)
    daemons.append(second)
    wait_for(lambda: len(read_log(log)) == 1, what="the work to run again")
    [line] = read_log(log)
    assert line["attempt"] == 2 and line["pid"] == second.proc.pid
    assert line["end"] < dead_lease  # the dead process's lease was not waited out
    assert second.stop() == 0
    assert history(db, "k") == ["success", "lost"]
    lost = WorkManager(store).history(name="k")[1]
    assert lost.error is not None and "runner process is gone" in lost.error
    store.close()


def test_two_daemons_never_overlap_and_run_each_period_once(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db, log = tmp_path / "s.db", tmp_path / "runs.log"
    names = [f"p{i}" for i in range(6)]
    for name in names:
        add(db, name, log, "--every", "1s", busy=0.3)
    # two slots each: both daemons must take part
    daemons.extend(
        Daemon(db, tmp_path / f"d{i}.err", "--max-concurrent", "2", **FAST) for i in range(2)
    )
    wait_for(lambda: all(sum(1 for r in read_log(log) if r["work"] == n) >= 4 for n in names),
             what="four periods of every work")  # fmt: skip
    for d in daemons:
        assert d.stop() == 0
    runs = read_log(log)
    for name in names:
        mine = sorted((r for r in runs if r["work"] == name), key=lambda r: r["start"])
        for a, b in pairwise(mine):
            assert a["end"] <= b["start"], f"{name} ran twice at once"
        dues = [r["due"] for r in mine]
        assert len(dues) == len(set(dues)), f"{name}: a period ran twice"
    assert len({r["pid"] for r in runs}) == 2  # both daemons took work


def test_downtime_across_three_periods_runs_one_catch_up(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db, log = tmp_path / "s.db", tmp_path / "runs.log"
    add(db, "c", log, "--every", "2s")
    d1 = Daemon(db, tmp_path / "d1.err", **FAST)
    daemons.append(d1)
    wait_for(lambda: len(read_log(log)) >= 1, what="first run")
    assert d1.stop() == 0
    before = len(read_log(log))
    store = SQLiteStore(db)
    [row] = store.find_work(name="c")
    missed_due = row.scheduled_at
    # stay down until three more periods have begun
    wait_for(lambda: time.time() > missed_due + 3 * 2.0 + 0.5, what="downtime")
    d2 = Daemon(db, tmp_path / "d2.err", **FAST)
    daemons.append(d2)
    wait_for(lambda: len(read_log(log)) >= before + 2, what="catch-up and the next period")
    assert d2.stop() == 0
    after = read_log(log)[before:]
    assert after[0]["due"] == pytest.approx(missed_due, abs=1e-5)  # the missed period, once
    gap = after[1]["due"] - after[0]["due"]
    assert gap >= 3 * 2.0  # the periods missed while down were not replayed
    assert gap == pytest.approx(round(gap / 2.0) * 2.0, abs=1e-4)  # still on the cadence
    assert after[1]["start"] >= after[1]["due"]  # never before due
    store.close()


def test_work_add_wakes_a_sleeping_daemon(tmp_path: Path, daemons: list[Daemon]) -> None:
    db, log = tmp_path / "s.db", tmp_path / "runs.log"
    add(db, "far", log, "--delay", "1h")
    d = Daemon(db, tmp_path / "d.err", **FAST)
    daemons.append(d)
    wait_for(lambda: "sleeping: next due" in d.text(), what="the daemon to go to sleep")
    sleeping = d.text()
    assert re.search(
        r"sleeping: next due \d+\.\d+, timeout none", sleeping
    )  # no timeout: no polling
    add(db, "now", log)  # another process: `stayfresh work add`
    wait_for(lambda: any(r["work"] == "now" for r in read_log(log)), what="the new work to run")
    wakes = re.findall(r"woke by (\S+)", d.text())
    assert wakes[0] == "socket"  # the first wake after going to sleep was the control socket
    assert "timeout" not in wakes and "timer" not in wakes
    assert d.stop() == 0
    assert [r["work"] for r in read_log(log)] == ["now"]


def test_sigterm_releases_a_run_that_outlasts_the_grace_period(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db, log, marker = tmp_path / "s.db", tmp_path / "runs.log", tmp_path / "started"
    add(db, "long", log, marker=str(marker), hold=60)
    d = Daemon(db, tmp_path / "d.err", "--grace", "0.2s", **FAST)
    daemons.append(d)
    wait_for(marker.exists, what="the run to start")
    assert d.stop() == 0
    assert history(db, "long") == ["released"]
    store = SQLiteStore(db)
    [row] = store.find_work(name="long")
    assert row.state == "ENQUEUED" and row.run_attempt == 0 and row.lease_owner is None
    store.close()


def test_a_removed_control_folder_is_recreated_and_work_add_still_wakes(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db, log = tmp_path / "s.db", tmp_path / "runs.log"
    add(db, "far", log, "--delay", "1h")
    # a periodic check an hour apart: only an event can bring the socket back in this test
    d = Daemon(db, tmp_path / "d.err", STAYFRESH_CONTROL_CHECK="3600", **FAST)
    daemons.append(d)
    wait_for(lambda: "sleeping: next due" in d.text(), what="the daemon to go to sleep")
    folder = control_dir(db)
    assert [p.suffix for p in folder.iterdir()] == [".sock"]
    subprocess.run(["rm", "-rf", str(folder)], check=False, timeout=30)
    wait_for(lambda: "was removed; recreating it" in d.text(), what="the daemon to notice")
    wait_for(lambda: folder.is_dir() and any(folder.glob("*.sock")), what="the new socket")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [sock] = folder.glob("*.sock")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    mark = len(d.text())
    add(db, "now", log)  # another process: `stayfresh work add`
    wait_for(lambda: any(r["work"] == "now" for r in read_log(log)), what="the new work to run")
    wakes = re.findall(r"woke by (\S+)", d.text()[mark:])
    assert wakes[0] == "socket"  # woken by `work add`, not by a timer or a periodic check
    assert "timeout" not in wakes and "timer" not in wakes
    assert d.stop() == 0
    assert not folder.exists() or not any(folder.glob("*.sock"))  # cleaned up on exit


def test_the_listener_check_recreates_a_removed_socket(tmp_path: Path) -> None:
    """The repair both paths use: after an inotify event, or on the fallback period."""
    db = tmp_path / "s.db"
    listener = SocketListener(db, "abcdef123456")
    try:
        assert listener.check() is False  # nothing to repair
        subprocess.run(["rm", "-rf", str(control_dir(db))], check=True, timeout=30)
        assert SocketWaker(db).notify() == 0  # unreachable now
        assert listener.check() is True
        assert SocketWaker(db).notify() == 1
        assert listener.drain() >= 1
    finally:
        listener.close()


def test_a_frozen_daemon_learns_it_lost_its_lease(
    database: str, tmp_path: Path, daemons: list[Daemon]
) -> None:
    log, marker = tmp_path / "runs.log", tmp_path / "started"
    add(database, "slow", log, marker=str(marker), hold=120)
    a = Daemon(database, tmp_path / "a.err", "--lease", "4s", **FAST)
    daemons.append(a)
    wait_for(marker.exists, what="A's run to start")
    # freeze A between passes (not inside a transaction): right after it went to sleep
    passes = a.text().count("sleeping: next due")
    wait_for(lambda: a.text().count("sleeping: next due") > passes, what="A to renew and sleep")
    a.proc.send_signal(signal.SIGSTOP)
    try:
        store = open_store(database)
        [row] = store.find_work(name="slow")
        frozen_lease = row.lease_until
        assert row.state == "RUNNING" and frozen_lease is not None
        b = Daemon(database, tmp_path / "b.err", "--lease", "4s", **FAST)
        daemons.append(b)
        wait_for(lambda: any(r["pid"] == b.proc.pid for r in read_log(log)), what="B's run")
        [b_line] = read_log(log)
        assert b_line["attempt"] == 2 and b_line["start"] >= frozen_lease  # A was only frozen
        wait_for(lambda: store.find_work(name="slow")[0].state == "SUCCEEDED", what="B's end")
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "recorded as lost" in a.text(), what="A to record its late result")
    [a_line] = [r for r in read_log(log) if r["pid"] == a.proc.pid]
    assert a_line["attempt"] == 1 and a_line["cancelled"] is True  # A's worker was told to stop
    assert "lost its lease (taken over by another runner (now SUCCEEDED))" in a.text()
    runs = WorkManager(store).history(name="slow")
    assert [r.outcome for r in runs] == ["success", "lost"]
    assert runs[0].runner.split(":")[1] == str(b.proc.pid)
    assert runs[1].runner.split(":")[1] == str(a.proc.pid)
    assert runs[1].error is not None and "ended it later with 'success'" in runs[1].error
    [row] = store.find_work(name="slow")
    assert row.state == "SUCCEEDED" and row.output == {"pid": b.proc.pid, "cancelled": False}
    assert a.stop() == 0 and b.stop() == 0
    assert [r.outcome for r in WorkManager(store).history(name="slow")] == ["success", "lost"]
    store.close()


def test_status_names_the_running_daemons_from_their_heartbeats(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Who, where, since when — read from the store, waking nobody; gone after a clean
    stop, and a killed daemon is not counted; `work run` says when nobody will run it."""
    db, log = tmp_path / "s.db", tmp_path / "runs.log"
    add(db, "later", log, "--delay", "1h")
    idle = json.loads(cli(db, "status", "--json").stdout)
    assert idle["daemons"] == []
    assert "no daemon is running to pick them up" in cli(db, "work", "run", "later").stdout
    d = Daemon(db, tmp_path / "d.err")
    daemons.append(d)
    wait_for(lambda: "sleeping: next due" in d.text(), what="the daemon to go to sleep")
    [seen] = json.loads(cli(db, "status", "--json").stdout)["daemons"]
    assert seen["pid"] == d.proc.pid and seen["started_at"] <= seen["last_seen_at"]
    text = cli(db, "status").stdout
    assert "Daemons" in text or "DAEMON HOST" in text
    wakes = d.text().count("woke by")
    check = subprocess.run(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "status", "--check"],
        env=env_for(db), capture_output=True, text=True,
    )  # fmt: skip
    assert "no_daemon" not in check.stdout
    time.sleep(0.5)
    assert d.text().count("woke by") == wakes  # status read the heartbeat; it woke nobody
    assert d.stop() == 0
    assert json.loads(cli(db, "status", "--json").stdout)["daemons"] == []  # forgotten
    killed = Daemon(db, tmp_path / "k.err")
    daemons.append(killed)
    wait_for(lambda: "sleeping: next due" in killed.text(), what="the daemon to go to sleep")
    killed.kill()  # no clean stop: its heartbeat stays, its process is gone
    assert json.loads(cli(db, "status", "--json").stdout)["daemons"] == []
