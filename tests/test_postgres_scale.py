"""Scale-out on one real PostgreSQL: many daemons, one schedule; many hosts, one refresh.

1. Four ``stayfresh daemon`` processes share 200 periodic works (5 s interval,
   lowered by ``STAYFRESH_MIN_INTERVAL``) for about a minute while a chaos
   loop SIGKILLs a random daemon every few seconds and restarts it. The
   workers keep their own log (``pg_scale_helpers``): a start row and an end
   row per execution. Every period of every work must have ended exactly
   once; a second execution of a period is allowed only when the first was
   killed (a start with no end, by a daemon that was SIGKILLed, recorded
   ``lost`` in the store's history); no two executions of one work overlap;
   and no period is skipped.
2. Sixteen processes on two simulated hosts (two process groups, each with
   its own HOME, temp and data folders: nothing shared but the database and
   the network) ensure one stale token against the real oidc-provider with
   refresh-token rotation → exactly one refresh grant.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from oidc_server import OIDCServerFactory
from pg_scale_helpers import SCALE_LOG_DDL, TOKEN_CHILD
from pg_server import PGServer
from stayfresh.store import open_store
from stayfresh.tokens import TokenSet, add_account
from stayfresh.work import WorkManager, WorkRequest, next_period_due

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
UTC = dt.UTC

WORKS = 200
INTERVAL = 5.0
LEASE = 2.0
#: ~12 kills at a random daemon every 2-5 s; the suite's longest test, so kept to 45 s
CHAOS_SECONDS = 45.0


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), str(SRC), env.get("PYTHONPATH", "")]),
        STAYFRESH_MIN_INTERVAL="1",
        SCALE_LOG_URL=url,
        **extra,
    )
    return env


class Daemons:
    """Four daemon processes; kill and restart them, remembering when each died."""

    def __init__(self, url: str, logs: Path, count: int = 4) -> None:
        self.url = url
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: dict[int, float] = {}  # pid -> time of SIGKILL
        self.spawned = 0
        self.files: list[Any] = []
        for _ in range(count):
            self.procs.append(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.spawned += 1
        log = open(self.logs / f"daemon-{self.spawned}.log", "wb")  # noqa: SIM115
        self.files.append(log)
        cmd = [sys.executable, "-m", "stayfresh", "--db", self.url, "daemon",
               "--lease", f"{LEASE}s", "--grace", "5s", "--max-concurrent", "8"]  # fmt: skip
        return subprocess.Popen(cmd, env=_env(self.url), stdout=log, stderr=log)

    def kill_and_restart(self, index: int, pause: float) -> None:
        proc = self.procs[index]
        proc.send_signal(signal.SIGKILL)
        self.killed[proc.pid] = time.time()
        proc.wait()
        time.sleep(pause)
        self.procs[index] = self._spawn()

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.files:
            log.close()


def test_four_daemons_many_kills_every_period_once(pg_server: PGServer, tmp_path: Path) -> None:
    url = pg_server.create_database()
    # daemons start together on an empty database: one migrates, the others wait
    daemons = Daemons(url, tmp_path)
    try:
        store = open_store(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCALE_LOG_DDL)
        os.environ["STAYFRESH_MIN_INTERVAL"] = "1"
        try:
            manager = WorkManager(store)
            started = time.time()
            for i in range(WORKS):
                manager.enqueue(
                    WorkRequest.periodic_every("pg_scale_helpers:logged", INTERVAL),
                    name=f"p{i:03d}",
                )
        finally:
            del os.environ["STAYFRESH_MIN_INTERVAL"]
        rng = random.Random(6)
        kills = 0
        while time.time() - started < CHAOS_SECONDS:
            time.sleep(rng.uniform(2.0, 5.0))
            daemons.kill_and_restart(rng.randrange(4), pause=rng.uniform(0.0, 2.0))
            kills += 1
        stopped = time.time()
    finally:
        daemons.stop()

    for log in tmp_path.glob("daemon-*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"

    works = {w.id: w for w in store.find_work()}
    assert len(works) == WORKS
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT work_id, scheduled_at, pid, event, at, attempt FROM scale_log ORDER BY id"
        ).fetchall()
    starts: dict[tuple[str, float, int, int], float] = {}
    ends: dict[tuple[str, float, int, int], float] = {}
    for work_id, scheduled_at, pid, event, at, attempt in rows:
        (starts if event == "start" else ends)[(work_id, scheduled_at, pid, attempt)] = at
    assert set(ends) <= set(starts)

    history = store.work_runs(list(works), limit=100_000)
    lost = {(r.work_id, round(r.scheduled_at, 3), int(r.runner_id.split(":")[1])) for r in history
            if r.outcome == "lost"}  # fmt: skip
    ended_at = {(r.work_id, round(r.scheduled_at, 3)): r.ended_at for r in history
                if r.outcome == "success" and r.ended_at is not None}  # fmt: skip
    per_work: dict[str, list[tuple[float, float, float, int]]] = collections.defaultdict(list)
    for key, began in starts.items():
        work_id, scheduled_at, pid, _attempt = key
        finished = ends.get(key)
        if finished is None:
            # no end: the daemon must have been SIGKILLed during the run
            assert pid in daemons.killed, f"execution {key} has no end and was not killed"
            finished = daemons.killed[pid]
        per_work[work_id].append((began, finished, scheduled_at, pid))

    periods_checked = reruns = 0
    for work_id, executions in per_work.items():
        executions.sort()
        # none concurrently
        for (_, end_a, _, _), (start_b, _, _, _) in itertools.pairwise(executions):
            assert start_b >= end_a, f"{work_id}: overlapping executions {executions}"
        by_period: dict[float, list[tuple[float, int]]] = collections.defaultdict(list)
        for began, _, scheduled_at, pid in executions:
            by_period[scheduled_at].append((began, pid))
        # each period ran once; an earlier execution of a period is allowed only when its
        # daemon was SIGKILLed before recording it, and the store recorded that run as lost
        for scheduled_at, runs in by_period.items():
            for began, pid in sorted(runs)[:-1]:
                reruns += 1
                assert daemons.killed.get(pid, 0) >= began, (
                    f"{work_id} period {scheduled_at} ran twice without a kill: {runs}"
                )
                assert (work_id, round(scheduled_at, 3), pid) in lost, (
                    f"{work_id} period {scheduled_at}: killed attempt not recorded as lost"
                )
        # no period skipped: each period follows the last on the grid as the engine's rule
        # says (next_period_due: the first grid point after the run ended, so a run that
        # started late and ended past the next grid point was itself the one catch-up
        # run), except right after a killed attempt (its re-run waited for the lease)
        done = sorted(by_period)
        for a, b in itertools.pairwise(done):
            if len(by_period[a]) > 1:
                continue
            ended = ended_at.get((work_id, round(a, 3)))
            expected = a + INTERVAL if ended is None else next_period_due(a, INTERVAL, ended)
            assert b == pytest.approx(expected, abs=0.01), (
                f"{work_id}: skipped a period between {a} and {b} (run of {a} ended {ended})"
            )
        assert done[-1] >= stopped - 3 * INTERVAL, f"{work_id}: stopped running at {done[-1]}"
        periods_checked += len(done)

    assert kills >= 10 and len(lost) >= reruns
    assert periods_checked >= WORKS * (CHAOS_SECONDS / INTERVAL - 2)
    store.close()
    print(f"\n{kills} kills, {periods_checked} periods, {reruns} re-runs, {len(lost)} lost")


def test_sixteen_processes_on_two_hosts_one_refresh(
    pg_url: str, oidc_server_factory: OIDCServerFactory, tmp_path: Path
) -> None:
    server = oidc_server_factory(access_ttl=600, rotate=True, refresh_delay_ms=400)
    issued = server.obtain_tokens()
    store = open_store(pg_url)
    now = dt.datetime.now(UTC)
    add_account(
        store,
        "shared",
        "oauth2",
        {"token_url": server.token_url, "client_id": server.client_id,
         "client_secret": server.client_secret},
        TokenSet(
            access_token=issued["access_token"], refresh_token=issued["refresh_token"],
            expires_at=now - dt.timedelta(seconds=1), obtained_at=now - dt.timedelta(seconds=601),
        ),
    )  # fmt: skip
    server.reset_stats()
    go = tmp_path / "go"
    children: list[subprocess.Popen[str]] = []
    for host in ("host-a", "host-b"):
        home = tmp_path / host
        home.mkdir()
        env = _env(pg_url, HOME=str(home), TMPDIR=str(home), XDG_DATA_HOME=str(home / "data"),
                   XDG_RUNTIME_DIR=str(home / "run"))  # fmt: skip
        group = 0
        for _ in range(8):
            child = subprocess.Popen(
                [sys.executable, "-c", TOKEN_CHILD, pg_url, str(go)], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=group,
            )  # fmt: skip
            group = group or child.pid  # the host's first child leads its process group
            children.append(child)
    groups = {os.getpgid(c.pid) for c in children}
    assert len(groups) == 2
    time.sleep(1.5)  # let every child import and wait at the barrier
    go.touch()
    outputs = [child.communicate(timeout=120) for child in children]
    results: list[dict[str, Any]] = []
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        results.append(json.loads(out))
    stats = server.stats()
    assert stats["refresh_grants"] == 1, stats
    assert stats["refresh_failure"] == 0, stats
    tokens = {r["token"] for r in results}
    assert len(tokens) == 1 and tokens != {issued["access_token"]}
    row = store.get_account("shared")
    assert (
        row is not None and row.version == 2 and row.tokens.refresh_token != issued["refresh_token"]
    )
    store.close()
