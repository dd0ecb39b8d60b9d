"""Faults of runs: a foreground download killed, interrupted or blocked; a runner suspended.

A real ``stayfresh download`` subprocess fetches a file from a local HTTP
server that stalls on purpose after the first part (so the process can be
SIGKILLed or Ctrl-C'd mid-transfer); the account is a generic JSON-source
one whose ``download_url`` points at that server. Waits are hang guards
only. Also the rule behind the takeover (which lease owners are provably
dead), and a runner whose wall clock jumped past its lease while its
monotonic clock stood still (a suspended laptop), with a fake clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2
from stayfresh.jobs import enqueue_download
from stayfresh.store import SQLiteStore
from stayfresh.testing import FakeClock, LocalHTTPServer, Request, Response, wait_for
from stayfresh.work import Runner, WorkManager, WorkRequest
from stayfresh.work._owner import local_owner_id, owner_is_dead

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and Linux signals")

ITEM = "book-1"
SIZE = 700_000
#: more than the downloader's 256 KiB chunk, so a chunk reaches the disk before the stall
FIRST = 300_000


def body(start: int, end: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(start, end))


class StallingFiles(LocalHTTPServer):
    """Serves ``/files/<id>.bin`` with Range; while ``stall`` is set, stops after FIRST bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = threading.Event()
        self.stall.set()
        self.ranges: list[str | None] = []
        self.start()

    def handle(self, request: Request) -> Response:
        wanted = request.headers.get("range")
        self.ranges.append(wanted)
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted else 0
        headers = {"Content-Length": str(SIZE - start)}
        if wanted:
            headers["Content-Range"] = f"bytes {start}-{SIZE - 1}/{SIZE}"
        return Response(206 if wanted else 200, headers=headers, stream=self._body(start))

    def _body(self, start: int) -> Iterator[bytes]:
        if self.stall.is_set():
            yield body(start, max(start, FIRST))
            self.stopping.wait(120)  # the client is gone by now; never complete this response
            return
        yield body(start, SIZE)


@pytest.fixture
def files() -> Iterator[StallingFiles]:
    server = StallingFiles()
    yield server
    server.stop()


@pytest.fixture
def account(store: SQLiteStore, files: StallingFiles) -> str:
    """An account with a token good for two hours whose files come from ``files``."""
    add_oauth2(store, "me", "http://127.0.0.1:9/token", expires_in=7200)
    row = store.get_account("me")
    assert row is not None
    library = {"url": f"{files.url}/library", "download_url": f"{files.url}/files/{{item_id}}.bin"}
    store.update_config("me", {**row.config, "library_source": "json", "library": library})
    return "me"


def download(db: Path, dest: Path, err: Path) -> subprocess.Popen[bytes]:
    """``stayfresh download me ITEM`` in a subprocess; stderr to ``err``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()", "--db", str(db)]
    with open(err, "ab") as stderr:
        return subprocess.Popen(
            [*cmd, "download", "me", ITEM, "--dest", str(dest)],
            env=env, stdout=subprocess.PIPE, stderr=stderr,
        )  # fmt: skip


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait for ``proc`` to end (a generous hang guard); its exit code and stdout."""
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise
    return proc.returncode, out.decode()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` if it still runs, reap it and close its pipe."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


@pytest.mark.slow  # a download subprocess killed or interrupted mid-transfer
def test_a_download_run_again_after_sigkill_takes_over_at_once(
    store: SQLiteStore, db_path: Path, account: str, files: StallingFiles, tmp_path: Path
) -> None:
    part = tmp_path / f".{ITEM}.bin.part"
    first = download(db_path, tmp_path, tmp_path / "first.err")
    try:
        wait_for(lambda: part.exists() and part.stat().st_size > 0, what="the first bytes")
        [row] = store.find_work(name=f"download:me:{ITEM}")
        assert row.state == "RUNNING" and row.lease_owner is not None
        assert row.lease_owner.split(":")[1] == str(first.pid)
        lease_until = row.lease_until
        assert lease_until is not None
    finally:
        kill(first)
    kept = part.stat().st_size
    assert 0 < kept < SIZE
    files.stall.clear()
    code, out = finish(download(db_path, tmp_path, tmp_path / "second.err"))
    err = (tmp_path / "second.err").read_text()
    assert code == 0, err
    assert "saved" in out and "waiting for" not in err
    assert (tmp_path / f"{ITEM}.bin").read_bytes() == body(0, SIZE)
    assert files.ranges == [None, f"bytes={kept}-"]  # resumed where the killed one stopped
    runs = WorkManager(store).history(name=f"download:me:{ITEM}")
    assert [r.outcome for r in runs] == ["success", "lost"]
    assert runs[1].error is not None and "runner process is gone" in runs[1].error
    assert runs[1].ended_at is not None and runs[1].ended_at.timestamp() < lease_until


@pytest.mark.slow  # a download subprocess killed or interrupted mid-transfer
def test_a_download_held_by_another_host_waits_visibly_then_takes_over(
    store: SQLiteStore, db_path: Path, account: str, files: StallingFiles, tmp_path: Path
) -> None:
    files.stall.clear()
    work_id = enqueue_download(WorkManager(store), "me", ITEM, tmp_path)
    other = "otherhost:4242:1.cafe0000:abc123"  # not this machine: its lease must run out
    [claim] = store.claim_work([work_id], runner_id=other, now=time.time(), lease_seconds=600)
    err = tmp_path / "err"
    proc = download(db_path, tmp_path, err)
    try:
        wait_for(lambda: "waiting for" in err.read_text(), what="the command to say it waits")
        assert proc.poll() is None
        # the other host stops renewing: its lease runs out (now)
        store.renew_leases([work_id], runner_id=other, now=time.time(), lease_seconds=0)
        code, _ = finish(proc)
    finally:
        kill(proc)
    text = err.read_text()
    assert code == 0, text
    assert f"waiting for {other} (lease until " in text
    assert (tmp_path / f"{ITEM}.bin").read_bytes() == body(0, SIZE)
    runs = WorkManager(store).history(work_id=work_id)
    assert [r.outcome for r in runs] == ["success", "lost"]
    assert runs[1].runner == other and runs[1].attempt == claim.work.run_attempt
    assert runs[1].error is not None and "stopped renewing its lease" in runs[1].error


@pytest.mark.slow  # a download subprocess killed or interrupted mid-transfer
def test_ctrl_c_stops_a_download_keeps_the_partial_file_and_exits_130(
    store: SQLiteStore, db_path: Path, account: str, files: StallingFiles, tmp_path: Path
) -> None:
    part = tmp_path / f".{ITEM}.bin.part"
    proc = download(db_path, tmp_path, tmp_path / "err")
    try:
        wait_for(lambda: part.exists() and part.stat().st_size > 0, what="the first bytes")
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends; the server is stalled
        code, _ = finish(proc)
    finally:
        kill(proc)
    text = (tmp_path / "err").read_text()
    assert code == 130, text
    kept = part.stat().st_size
    assert 0 < kept < SIZE and not (tmp_path / f"{ITEM}.bin").exists()
    assert f"interrupted: kept the partial file {part} ({kept} bytes)" in text
    [row] = store.find_work(name=f"download:me:{ITEM}")
    assert row.state == "ENQUEUED" and row.run_attempt == 0  # released: the attempt did not count
    files.stall.clear()
    code, _ = finish(download(db_path, tmp_path, tmp_path / "again.err"))
    assert code == 0, (tmp_path / "again.err").read_text()
    assert files.ranges[-1] == f"bytes={kept}-"
    assert (tmp_path / f"{ITEM}.bin").read_bytes() == body(0, SIZE)


def _child_owner() -> tuple[subprocess.Popen[str], str]:
    """A real other process of this machine and the lease owner id it would use."""
    code = "from stayfresh.work._owner import local_owner_id; import sys, time;"
    code += " print(local_owner_id('t'), flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_only_a_local_process_that_is_provably_gone_counts_as_dead() -> None:
    proc, owner = _child_owner()
    host, pid, where, token = owner.split(":")
    assert int(pid) == proc.pid and token == "t"
    try:
        assert not owner_is_dead(owner)  # alive
        start, _, ident = where.partition(".")
        # the same pid with another start time: the pid was reused by another process
        assert owner_is_dead(f"{host}:{pid}:{int(start) + 1}.{ident}:t")
        # another machine (or boot, or pid namespace): cannot be proven, wait for the lease
        assert not owner_is_dead(f"{host}:{pid}:{start}.00000000:t")
        assert not owner_is_dead(f"elsewhere:{pid}:{int(start) + 1}.{ident}:t")
        assert not owner_is_dead("some-custom-runner-id")
        assert not owner_is_dead(local_owner_id("me"))  # this very process
    finally:
        proc.communicate(timeout=30)
    assert owner_is_dead(owner)  # gone


def test_a_runner_resumed_after_a_suspend_learns_at_once_that_its_lease_was_taken(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(time.time())
    work = WorkManager(store, clock=clock).enqueue(
        WorkRequest(worker="work_helpers:until_cancelled")
    )
    runner = Runner(store, clock=clock, lease_seconds=600, listen=False).start()
    try:
        wait_for(lambda: store.get_work(work.id).state == "RUNNING", what="the run")  # type: ignore[union-attr]
        # the machine slept an hour: by the wall clock the lease ran out and another runner
        # took the work over; the monotonic clock (the renewal timer) did not move
        clock.advance(7200)
        [taken] = store.claim_work([work.id], runner_id="other", now=clock(), lease_seconds=60)
        runner.wake()  # the first wake-up after resume (the wall timer fires on resume)
        wait_for(lambda: "recorded as lost" in caplog.text, what="the late result")
    finally:
        runner.stop(grace=5)
    assert "lost its lease (taken over by other)" in caplog.text
    mine, lost = WorkManager(store).history(work_id=work.id)
    assert mine.runner == "other" and mine.ended_at is None  # the new run is untouched
    assert lost.outcome == "lost" and lost.output == {"cancelled": True}  # told to stop
    assert lost.error is not None and "ended it later with 'success'" in lost.error
    row = store.get_work(work.id)
    assert row is not None and row.state == "RUNNING" and row.lease_owner == "other"
    assert row.current_run == taken.run_id
