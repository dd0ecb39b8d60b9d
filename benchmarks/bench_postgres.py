"""PostgreSQL backend: claim throughput with 1, 2 and 4 daemons; single-flight refresh cost.

Run ``.venv/bin/python benchmarks/bench_postgres.py [--write] [--works N]``.
A throw-away PostgreSQL server is started as in the tests (``tests/pg_server.py``:
``initdb`` + ``pg_ctl`` on a temporary folder, fsync off — the figures measure
stayfresh, not the disk). The same runs against SQLite stand beside them.

1. Claim throughput: N ``stayfresh daemon`` processes (8 concurrent runs each)
   wait idle on one database; ``--works`` one-time works whose worker returns
   at once are enqueued in one transaction. Works started per second is the
   count divided by the time between the first and the last start in the
   store's run history. Every work must succeed exactly once.
2. Single-flight cost: a forced refresh (``ensure_valid_token(force=True)``)
   against a local token endpoint answering at once — it takes the
   cross-process lock, re-reads, compare-and-swaps and records metrics — and
   the lock alone (``acquire(0)`` + ``release``), per backend.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    load_average,
    machine_lines,
    median,
    percentile,
    table,
    use_test_helpers,
    write_section,
)

UTC = dt.UTC
TITLE = "PostgreSQL"


def _daemons(db: str, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO / "src")])
    procs = []
    for i in range(count):
        log = open(logs / f"daemon-{count}-{i}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "stayfresh", "--db", db, "daemon", "--max-concurrent", "8"],
                env=env,
                stdout=log,
                stderr=log,
            )
        )
        log.close()
    return procs


def claim_throughput(db: str, daemons: int, works: int, logs: Path) -> tuple[float, float]:
    """(works started per second, seconds from enqueue to the last success)."""
    from stayfresh.store import NewWork, open_store

    store = open_store(db)
    procs = _daemons(db, daemons, logs)
    try:
        time.sleep(3.0)  # let them start, migrate, and go idle
        now = time.time()
        batch = [
            NewWork(
                id=uuid.uuid4().hex,
                name=None,
                worker="work_helpers:ok",
                input={},
                periodic=False,
                interval=None,
                flex=None,
                constraints={},
                backoff_policy="exponential",
                backoff_delay=30.0,
                timeout=60.0,
                tags=("bench",),
                scheduled_at=now,
            )
            for _ in range(works)
        ]
        started = time.time()
        store.enqueue_work(batch, policy=None, now=now)
        from stayfresh.work import WorkManager

        WorkManager(store).waker.notify()  # SQLite: the control sockets; PG: already NOTIFYed
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len(store.find_work(tag="bench", states=["SUCCEEDED"])) == works:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("works did not finish in 5 min")
        done = time.time() - started
        runs = store.work_runs([w.id for w in batch], limit=works * 2)
        assert len(runs) == works, f"{len(runs)} runs for {works} works"
        first = min(r.started_at for r in runs)
        last = max(r.started_at for r in runs)
        return works / max(last - first, 1e-9), done
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        store.close()


def refresh_costs(db: str, token_url: str, n: int) -> dict[str, list[float]]:
    """Milliseconds per forced refresh and per lock round trip on the store at ``db``."""
    from stayfresh.store import open_store
    from stayfresh.tokens import Keeper, TokenSet, add_account

    store = open_store(db)
    now = dt.datetime.now(UTC)
    add_account(
        store, "bench", "oauth2",
        {"token_url": token_url, "client_id": "c", "client_secret": "s"},
        TokenSet(access_token="at", refresh_token="rt", expires_at=now + dt.timedelta(hours=1),
                 obtained_at=now),
    )  # fmt: skip
    keeper = Keeper(store)
    lock = store.refresh_lock("bench")

    def lock_once() -> None:
        assert lock.acquire(0)
        lock.release()

    def timed(fn: Callable[[], Any], count: int) -> list[float]:
        fn()  # warm up (pool connections, HTTP keep-alive)
        return [timeit.timeit(fn, number=1) * 1000 for _ in range(count)]

    result = {
        "forced refresh": timed(lambda: keeper.ensure_valid_token("bench", force=True), n),
        "lock acquire(0) + release": timed(lock_once, n * 5),
    }
    keeper.close()
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--works", type=int, default=2000)
    parser.add_argument("--refreshes", type=int, default=300)
    args = parser.parse_args()
    use_test_helpers()
    from fake_token_server import FakeTokenServer, Seen, token_reply
    from pg_server import PGServer

    t0 = time.monotonic()
    load_start = load_average()
    server = PGServer().start()
    counter = itertools.count()

    def handler(_seen: Seen) -> Any:
        i = next(counter)
        return token_reply(access=f"at-{i}", refresh=f"rt-{i}", expires_in=3600)

    tokens = FakeTokenServer(handler).start()
    rows: list[list[str]] = []
    cost_rows: list[list[str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            logs = Path(tmp)
            for backend in ("postgresql", "sqlite"):
                for count in (1, 2, 4):
                    db = (
                        server.create_database()
                        if backend == "postgresql"
                        else str(logs / f"claims-{count}.db")
                    )
                    rate, done = claim_throughput(db, count, args.works, logs)
                    print(
                        f"{backend} {count} daemon(s): {rate:,.0f} works/s, all done in {done:.1f}s"
                    )
                    rows.append([backend, str(count), f"{rate:,.0f}", f"{done:.1f} s"])
            for backend in ("postgresql", "sqlite"):
                db = server.create_database() if backend == "postgresql" else str(logs / "r.db")
                for what, values in refresh_costs(db, tokens.token_url, args.refreshes).items():
                    cost_rows.append([
                        backend, what, f"{median(values):.3f} ms",
                        f"{percentile(values, 95):.3f} ms",
                    ])  # fmt: skip
                    print(cost_rows[-1])
    finally:
        tokens.stop()
        server.stop()
    import psycopg

    pg_version = f"{server.bin.parent.name} (Debian server binaries, fsync off)"
    body = "\n".join(
        [
            f"## {TITLE}",
            "",
            f"`.venv/bin/python benchmarks/bench_postgres.py --write` — full run, "
            f"{time.monotonic() - t0:.0f} s, {dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
            "",
            *machine_lines(
                ["stayfresh", "psycopg", "psycopg-pool", "psycopg-binary"],
                [
                    ("PostgreSQL", pg_version),
                    ("libpq", str(psycopg.pq.version())),
                    ("1-min load average at start / end", f"{load_start} / {load_average()}"),
                ],
            ),
            "",
            f"### Claim throughput ({args.works:,} one-time works, no-op worker)",
            "",
            "Separate `stayfresh daemon` processes (`--max-concurrent 8`) idle on one database;"
            " the works are enqueued in one transaction (which wakes them: NOTIFY on PostgreSQL,"
            " the control sockets on SQLite). *Started/s* = works / (last start - first start)"
            " from the run history; every work ran exactly once. The daemons and the server"
            " share the machine's CPUs, so more daemons than cores compete with the database.",
            "",
            table(["backend", "daemons", "started/s", "enqueue → all succeeded"], rows),
            "",
            f"### Single-flight refresh cost ({args.refreshes} forced refreshes)",
            "",
            "`ensure_valid_token(force=True)` against a local endpoint that answers at once"
            " (`tests/fake_token_server.py`): cross-process lock (advisory lock on PostgreSQL,"
            " flock on SQLite), re-read, HTTP round trip, compare-and-swap commit, metrics write."
            " The lock row is the lock alone, taken and given back.",
            "",
            table(["backend", "what", "median", "p95"], cost_rows),
        ]
    )
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
