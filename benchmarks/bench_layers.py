"""The notification layers end to end: a manual refresh and the foreground's not-needed path.

A manual refresh goes through the lock, the reschedule and the telemetry write;
the foreground layer, when the window is fresh, is one read. Run from a tree's
root with ``PYTHONPATH=<tree>/src`` to compare two versions side by side.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_notify import NOW, make_rules

from stayfresh import notify
from stayfresh.store import SQLiteStore


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def measure(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        make_rules(store, n)
        notify.refresh(store, "manual", now=NOW)
        full = timed(lambda: notify.refresh(store, "manual", now=NOW), 7)
        later = NOW + dt.timedelta(minutes=5)
        foreground = timed(lambda: notify.on_app_start(store, now=later), 200)
        print(
            f"{n:,} rules: manual refresh median {statistics.median(full) * 1000:.1f} ms "
            f"(best {min(full) * 1000:.1f}); foreground not needed median "
            f"{statistics.median(foreground) * 1e6:.0f} us"
        )
        store.close()


def main() -> None:
    for n in (1_000, 10_000):
        measure(n)


if __name__ == "__main__":
    main()
