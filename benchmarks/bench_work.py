"""Work engine benchmarks: idle cost, restart catch-up, firing delay, start-up, RSS.

    .venv/bin/python benchmarks/bench_work.py [--quick] [--write]

Compared in the same run with a Huey consumer and an APScheduler 3
BackgroundScheduler (``pip install huey 'apscheduler<4' sqlalchemy``; the
APScheduler restart test needs SQLAlchemy for a persistent job store).
Every program runs as its own process; wake-ups are voluntary context
switches summed over all its threads (``/proc/PID/task/*/status``), CPU is
user+system time of the process. ``--write`` replaces the ``## Work engine``
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from _common import REPO, load_average, machine_lines, percentile, table, write_section

from stayfresh.store import NewWork, SQLiteStore
from stayfresh.work import Result, WorkerContext, WorkManager, WorkRequest

SECTION = "Work engine"
BENCH = Path(__file__).resolve().parent


def stamp(ctx: WorkerContext) -> Result:
    """Benchmark worker: its output is the time it was called (firing delay = this - due)."""
    return Result.success({"called": time.time()})


# -- processes -------------------------------------------------------------------------------


def env(db: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    e["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(REPO / "src")])
    e["STAYFRESH_DB"] = str(db)
    e.update(extra)
    return e


def daemon(db: Path, *args: str, **extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = db.with_suffix(f".{uuid.uuid4().hex[:6]}.err")
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()", "-vv", "daemon", *args]
    with open(log, "wb") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, env=env(db, **extra), stderr=err, stdout=subprocess.DEVNULL)
    return proc, log


def wait_for(cond: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError(what)
        time.sleep(0.01)
    return time.monotonic() - start


def ctx_switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def idle_sample(pid: int, window: float) -> dict[str, float]:
    proc = psutil.Process(pid)
    c0, t0 = ctx_switches(pid), proc.cpu_times()
    time.sleep(window)
    c1, t1 = ctx_switches(pid), proc.cpu_times()
    per_min = 60.0 / window
    return {
        "wakeups_per_min": (c1 - c0) * per_min,
        "cpu_ms_per_min": ((t1.user + t1.system) - (t0.user + t0.system)) * 1000 * per_min,
        "rss_mb": proc.memory_info().rss / 2**20,
        "threads": proc.num_threads(),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- idle cost ----------------------------------------------------------------------------------

HUEY_SCRIPT = """
import sys
from huey import SqliteHuey, crontab
from huey.consumer import Consumer
huey = SqliteHuey(filename=sys.argv[1])
def make(i):
    @huey.periodic_task(crontab(minute=str(i % 60)), name=f"job{i}")
    def job():
        pass
for i in range(1000):
    make(i)
Consumer(huey, workers=1, periodic=True).run()
"""

APS_IDLE_SCRIPT = """
import threading
from apscheduler.schedulers.background import BackgroundScheduler
def job():
    pass
s = BackgroundScheduler()
for i in range(1000):
    s.add_job(job, "interval", hours=1, id=f"j{i}")
s.start()
print("ready", flush=True)
threading.Event().wait()
"""


def bench_idle(tmp: Path, window: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    db = tmp / "idle.db"
    store = SQLiteStore(db)
    wm = WorkManager(store)
    for i in range(1000):
        wm.enqueue(WorkRequest(worker="noop", every=3600, delay=3600 - i), name=f"hourly{i}")
    proc, log = daemon(db)
    wait_for(lambda: "sleeping: next due" in log.read_text(), 30, "stayfresh daemon asleep")
    time.sleep(1.0)
    results["stayfresh"] = idle_sample(proc.pid, window)
    # still woken at once by another process: `work add` → run
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "from stayfresh.cli import main; main()", "work", "add",
                    "poke", "--worker", "noop"], env=env(db), check=True, capture_output=True)  # fmt: skip
    wait_for(lambda: any(w.last_outcome for w in wm.by_name("poke")), 30, "poke ran")
    [poke] = wm.by_name("poke")
    runs = wm.history(name="poke")
    results["wake_ms"] = (runs[0].started_at.timestamp() - poke.created_at.timestamp()) * 1000
    results["add_cli_ms"] = (time.time() - t0) * 1000
    stop(proc)
    store.close()

    hscript = tmp / "huey_idle.py"
    hscript.write_text(HUEY_SCRIPT)
    hp = subprocess.Popen([sys.executable, str(hscript), str(tmp / "huey.db")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(3.0)
    results["huey"] = idle_sample(hp.pid, window)
    stop(hp)

    ascript = tmp / "aps_idle.py"
    ascript.write_text(APS_IDLE_SCRIPT)
    ap = subprocess.Popen(
        [sys.executable, str(ascript)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert ap.stdout is not None
    ap.stdout.readline()
    time.sleep(1.0)
    results["apscheduler"] = idle_sample(ap.pid, window)
    stop(ap)
    return results


# -- restart catch-up ---------------------------------------------------------------------------

APS_RESTART_SCRIPT = """
import sys, time, threading
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
LOG = sys.argv[2]
def job():
    with open(LOG, "a") as f:
        f.write(f"{time.time()}\\n")
s = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url="sqlite:///" + sys.argv[1])})
s.start()
if not s.get_job("tick"):
    s.add_job(job, "interval", seconds=float(sys.argv[3]), id="tick")
print("ready", flush=True)
threading.Event().wait()
"""


def bench_restart(tmp: Path, trials: int, interval: float = 2.0) -> dict[str, list[int]]:
    """Stop across 3+ periods, restart at a random phase; count runs of missed periods."""
    out: dict[str, list[int]] = {"stayfresh": [], "apscheduler": []}
    rng = random.Random(7)
    offsets = [rng.uniform(0, interval) for _ in range(trials)]
    fast = {"STAYFRESH_MIN_INTERVAL": "1"}
    for n, offset in enumerate(offsets):
        db = tmp / f"restart{n}.db"
        store = SQLiteStore(db)
        wm = WorkManager(store, environ=fast)
        info = wm.enqueue(WorkRequest(worker="noop", every=interval), name="tick")
        proc, _ = daemon(db, **fast)
        wait_for(lambda: bool(wm.history(name="tick")), 30, "first run")  # noqa: B023
        stop(proc)
        row = store.get_work(info.id)
        assert row is not None
        time.sleep(max(0.0, row.scheduled_at + 3 * interval + offset - time.time()))
        restart = time.time()
        proc, _ = daemon(db, **fast)
        time.sleep(interval + 1.0)
        stop(proc)
        runs = store.work_runs([info.id])
        out["stayfresh"].append(
            sum(1 for r in runs if r.started_at >= restart and r.scheduled_at < restart)
        )
        store.close()

    script = tmp / "aps_restart.py"
    script.write_text(APS_RESTART_SCRIPT)
    for n, offset in enumerate(offsets):
        adb, alog = tmp / f"aps{n}.sqlite", tmp / f"aps{n}.log"
        cmd = [sys.executable, str(script), str(adb), str(alog), str(interval)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wait_for(lambda: alog.exists() and alog.read_text().strip() != "", 30, "aps first run")  # noqa: B023
        stop(p)
        first = float(alog.read_text().split()[0])
        time.sleep(max(0.0, first + 3 * interval + offset - time.time()))
        restart = time.time()
        # the grid point after the restart: runs before it are catch-up runs
        next_grid = first + (int((restart - first) / interval) + 1) * interval
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(interval + 1.0)
        stop(p)
        times = [float(x) for x in alog.read_text().split()]
        out["apscheduler"].append(sum(1 for t in times if restart <= t < next_grid - 0.05))
    return out


# -- 10,000 due in one window; start-up with 100,000 ------------------------------------------------


def new_work(now: float, due: float, i: int, worker: str) -> NewWork:
    return NewWork(id=str(uuid.uuid4()), name=f"w{i}", worker=worker, input={}, periodic=True,
                   interval=3600.0, flex=3600.0, constraints={}, backoff_policy="exponential",
                   backoff_delay=30.0, timeout=600.0, tags=(), scheduled_at=due)  # fmt: skip


def bench_burst(tmp: Path, count: int, window: float, enqueue_sample: int) -> dict[str, Any]:
    db = tmp / "burst.db"
    store = SQLiteStore(db)
    wm = WorkManager(store)
    t0 = time.perf_counter()
    for i in range(enqueue_sample):
        wm.enqueue(WorkRequest(worker="bench_work:stamp", every=3600, delay=7200), name=f"e{i}")
    enqueue_rate = enqueue_sample / (time.perf_counter() - t0)
    wm.cancel(everything=True)
    start_at = time.time() + 8.0
    rows = [
        new_work(time.time(), start_at + window * i / count, i, "bench_work:stamp")
        for i in range(count)
    ]
    t0 = time.perf_counter()
    for k in range(0, count, 1000):
        store.enqueue_work(rows[k : k + 1000], policy=None, now=time.time())
    batch_rate = count / (time.perf_counter() - t0)
    proc, _ = daemon(db, "--max-concurrent", "16")
    raw = sqlite3.connect(db)  # the figures are read straight from the run history
    raw.row_factory = sqlite3.Row
    deadline = start_at + window + 120
    while time.time() < deadline:
        done = raw.execute("SELECT COUNT(*) FROM work_runs WHERE ended_at IS NOT NULL").fetchone()[0]
        if done >= count:
            break
        time.sleep(0.5)
    cpu = psutil.Process(proc.pid).cpu_times()
    stop(proc)
    delays = []
    for r in raw.execute(
        "SELECT scheduled_at, started_at, output FROM work_runs WHERE ended_at IS NOT NULL"
    ):
        called = json.loads(r["output"])["called"]
        delays.append((called - r["scheduled_at"]) * 1000)
    claim = [
        (r[1] - r[0]) * 1000 for r in raw.execute("SELECT scheduled_at, started_at FROM work_runs")
    ]
    raw.close()
    store.close()
    return {
        "ran": len(delays), "count": count, "window": window, "enqueue_per_s": enqueue_rate,
        "batch_per_s": batch_rate, "p50": percentile(delays, 50), "p99": percentile(delays, 99),
        "max": max(delays) if delays else float("nan"), "claim_p99": percentile(claim, 99),
        "cpu_s": cpu.user + cpu.system,
    }  # fmt: skip


def bench_startup(tmp: Path, count: int) -> dict[str, float]:
    db = tmp / "startup.db"
    store = SQLiteStore(db)
    now = time.time()
    rows = [new_work(now, now + 3600 + i * 0.01, i, "noop") for i in range(count)]
    for k in range(0, count, 5000):
        store.enqueue_work(rows[k : k + 5000], policy=None, now=now)
    store.close()
    size_mb = db.stat().st_size / 2**20
    t0 = time.monotonic()
    proc, log = daemon(db)
    ready = wait_for(lambda: "sleeping: next due" in log.read_text(), 60, "daemon ready")
    took = time.monotonic() - t0
    assert ready >= 0
    time.sleep(1.0)
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    stop(proc)
    return {"startup_s": took, "rss_mb": rss, "db_mb": size_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer trials")
    parser.add_argument(
        "--write", action="store_true", help=f"replace '## {SECTION}' in RESULTS.md"
    )
    args = parser.parse_args()
    quick = args.quick
    started = time.time()
    load0 = load_average()
    window = 20.0 if quick else 60.0
    with tempfile.TemporaryDirectory(prefix="bench-work-") as d:
        tmp = Path(d)
        print("idle cost …", flush=True)
        idle = bench_idle(tmp, window)
        print(json.dumps(idle, indent=1), flush=True)
        print("restart catch-up …", flush=True)
        restart = bench_restart(tmp, 3 if quick else 6)
        print(restart, flush=True)
        print("burst …", flush=True)
        burst = bench_burst(tmp, 10_000, 20.0 if quick else 60.0, 500 if quick else 2000)
        print(burst, flush=True)
        print("start-up …", flush=True)
        startup = bench_startup(tmp, 100_000)
        print(startup, flush=True)
    body = report(idle, restart, burst, startup, quick, window, time.time() - started, load0)
    print(body)
    if args.write:
        write_section(SECTION, body)


def report(idle: dict[str, Any], restart: dict[str, list[int]], burst: dict[str, Any],
           startup: dict[str, float], quick: bool, window: float, took: float, load0: str) -> str:  # fmt: skip
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {SECTION}",
        "",
        f"`.venv/bin/python benchmarks/bench_work.py{' --quick' if quick else ''} --write` — "
        f"{'quick' if quick else 'full'} run, {took:.0f} s, {when}.",
        "",
        *machine_lines(
            ["stayfresh", "huey", "apscheduler", "sqlalchemy", "psutil"],
            [("1-min load average at start / end", f"{load0} / {load_average()}")],
        ),
        "",
        f"### Idle cost (1,000 hourly works, {window:.0f} s window, scaled to a minute)",
        "",
        "Voluntary context switches of all threads (each is a wake-up) and CPU time, sampled from",
        "`/proc` while nothing is due. Each program runs alone as its own process.",
        "",
    ]
    rows = []
    for name, label in (("stayfresh", "stayfresh daemon"), ("huey", "Huey consumer (SqliteHuey, 1 worker)"),
                        ("apscheduler", "APScheduler 3 BackgroundScheduler (memory store)")):  # fmt: skip
        r = idle[name]
        rows.append(
            [
                label,
                f"{r['wakeups_per_min']:.0f}",
                f"{r['cpu_ms_per_min']:.1f}",
                f"{r['rss_mb']:.1f}",
                str(int(r["threads"])),
            ]
        )
    lines += [
        table(["program", "wake-ups / idle min", "CPU ms / idle min", "RSS MB", "threads"], rows),
        "",
    ]
    lines += [
        f"Woken from another process: `stayfresh work add` → the daemon started the new work "
        f"{idle['wake_ms']:.0f} ms after it was stored (the whole `work add` command, Python "
        f"start-up included, took {idle['add_cli_ms']:.0f} ms). APScheduler 3 cannot be woken "
        "from another process; Huey's consumer polls.",
        "",
        "### Restart across three missed periods",
        "",
        "Interval 2 s (`STAYFRESH_MIN_INTERVAL=1`); the program is stopped after a run and",
        "restarted 3 periods + a random phase later (same phases for both). Counted: runs of",
        "missed periods after the restart (the goal is exactly 1). APScheduler 3 uses a",
        "SQLAlchemy SQLite job store and default settings (misfire_grace_time 1 s, coalesce).",
        "",
        table(
            ["program", "catch-up runs per restart"],
            [
                ["stayfresh", ", ".join(map(str, restart["stayfresh"]))],
                ["APScheduler 3", ", ".join(map(str, restart["apscheduler"]))],
            ],
        ),
        "",
        f"### {burst['count']:,} periodic works due within {burst['window']:.0f} s",
        "",
        "Due times spread evenly over the window; `stayfresh daemon --max-concurrent 16`; the",
        "worker returns the time it was called. Firing delay = call time - due time.",
        "",
        table(
            ["measure", "value"],
            [
                ["runs completed", f"{burst['ran']:,} / {burst['count']:,}"],
                ["firing delay p50", f"{burst['p50']:.1f} ms"],
                ["firing delay p99", f"{burst['p99']:.1f} ms"],
                ["firing delay max", f"{burst['max']:.1f} ms"],
                ["claim delay p99 (claimed - due)", f"{burst['claim_p99']:.1f} ms"],
                ["daemon CPU for the burst", f"{burst['cpu_s']:.1f} s"],
                [
                    "enqueue throughput, `WorkManager.enqueue` (one transaction each)",
                    f"{burst['enqueue_per_s']:,.0f} /s",
                ],
                [
                    "enqueue throughput, `store.enqueue_work` batches of 1,000",
                    f"{burst['batch_per_s']:,.0f} /s",
                ],
            ],
        ),
        "",
        "### Start-up with 100,000 stored works",
        "",
        table(
            ["measure", "value"],
            [
                [
                    "daemon start to first sleep (process start included)",
                    f"{startup['startup_s']:.2f} s",
                ],
                ["RSS after start-up", f"{startup['rss_mb']:.1f} MB"],
                ["database size", f"{startup['db_mb']:.0f} MB"],
            ],
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
