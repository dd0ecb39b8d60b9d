"""Helpers for the work-engine tests: test workers, daemon processes.

The clock and ``wait_for`` come from :mod:`stayfresh.testing`.

The workers here are imported by name (``work_helpers:record``) in daemon
subprocesses too, which get ``tests/`` on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stayfresh.testing import wait_for
from stayfresh.work import Result, WorkerContext

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


# -- workers ------------------------------------------------------------------------

#: in-process call log of the workers below: (work name or id, input, attempt)
CALLS: list[tuple[str, dict[str, Any], int]] = []
_calls_lock = threading.Lock()


def _log_call(ctx: WorkerContext) -> None:
    with _calls_lock:
        CALLS.append((ctx.name or ctx.work_id, dict(ctx.input), ctx.run_attempt))


def ok(ctx: WorkerContext) -> Result:
    _log_call(ctx)
    return Result.success({"ran": ctx.name, **dict(ctx.input)})


def retry(ctx: WorkerContext) -> Result:
    _log_call(ctx)
    return Result.retry()


def fail(ctx: WorkerContext) -> Result:
    _log_call(ctx)
    return Result.failure({"why": "told to fail"})


def boom(ctx: WorkerContext) -> Result:
    _log_call(ctx)
    raise RuntimeError("boom from a worker")


async def async_ok(ctx: WorkerContext) -> dict[str, Any]:
    _log_call(ctx)
    ctx.set_progress({"step": 1})
    return {"async": True}


def progress_then_wait(ctx: WorkerContext) -> Result:
    """Reports progress, then waits until ``release`` is set in GATE (or cancelled)."""
    _log_call(ctx)
    ctx.set_progress({"percent": 50})
    GATE_STARTED.set()
    while not GATE.wait(0.05):
        if ctx.cancelled:
            return Result.retry()
    return Result.success()


def slow_ignores_cancel(ctx: WorkerContext) -> Result:
    """Runs past any time limit once (first attempt), then succeeds at once."""
    _log_call(ctx)
    if ctx.run_attempt == 1:
        GATE_STARTED.set()
        GATE.wait(30)
    return Result.success({"attempt": ctx.run_attempt})


def until_cancelled(ctx: WorkerContext) -> Result:
    """Waits until told to stop (a minute at most); says whether it was."""
    _log_call(ctx)
    return Result.success({"cancelled": ctx.wait_cancelled(60)})


GATE = threading.Event()
GATE_STARTED = threading.Event()

PREDICATE_VALUE = {"ok": False}


def predicate() -> bool:
    return PREDICATE_VALUE["ok"]


def record(ctx: WorkerContext) -> Result:
    """For daemon processes: append one JSON line per run to ``input["log"]``.

    The line holds start and end times, pid and the period's due time, so a
    test can check that runs of one work never overlap and each period ran
    once. ``input["hold"]`` seconds are spent inside the run (to be killed
    mid-run, or frozen with SIGSTOP until another runner takes the work over);
    ``input["marker"]`` is a file created when the run starts. The line and
    the output say whether the hold ended by cancellation.
    """
    started = time.time()
    marker = ctx.input.get("marker")
    if marker and ctx.run_attempt == 1:
        Path(marker).write_text(str(os.getpid()))
    hold = float(ctx.input.get("hold", 0.0))
    cancelled = False
    if hold and ctx.run_attempt == 1:
        cancelled = ctx.wait_cancelled(hold)
    elif ctx.input.get("busy"):
        time.sleep(float(ctx.input["busy"]))
    line = json.dumps(
        {
            "work": ctx.name,
            "pid": os.getpid(),
            "attempt": ctx.run_attempt,
            "due": ctx.scheduled_at.timestamp(),
            "start": started,
            "end": time.time(),
            "cancelled": cancelled,
        }
    )
    fd = os.open(ctx.input["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    return Result.success({"pid": os.getpid(), "cancelled": cancelled})


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- processes -------------------------------------------------------------------------


def env_for(db: Path | str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO / "src")])
    env["STAYFRESH_DB"] = str(db)
    env.update(extra)
    return env


def cli(db: Path | str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``stayfresh ARGS`` in a subprocess against ``db``."""
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env_for(db, **env), timeout=60)
    assert done.returncode == 0, done.stderr
    return done


class Daemon:
    """``stayfresh -vv daemon`` in a subprocess; stderr goes to a file for assertions."""

    def __init__(self, db: Path | str, log: Path, *args: str, **env: str) -> None:
        self.log = log
        self._err = open(log, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-c",
            "from stayfresh.cli import main; main()",
            "-vv",
            "daemon",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, env=env_for(db, **env), stderr=self._err, stdout=subprocess.DEVNULL
        )
        wait_for(lambda: "started on" in self.text(), what="daemon start", timeout=20)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._err.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        finally:
            self._err.close()
        return code


def sleep_a_while(ctx: WorkerContext) -> Result:
    """Runs ``input.seconds`` (longer than a lease: the lease must be renewed), logged."""
    _log_call(ctx)
    ctx.wait_cancelled(float(ctx.input.get("seconds", 4.0)))
    return Result.success({"ran": ctx.name})
