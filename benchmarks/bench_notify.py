"""Notification reschedule: 1,000 and 10,000 reminders into the 2-day window.

Measures the full reschedule (one transaction: read rules, expand, replace
the window, record telemetry) on a SQLite file, the pure window computation
alone, and, side by side, what a user would write with plain dateutil
(``rrulestr(...).between(...)`` from each rule's start, zoneinfo placement).

    .venv/bin/python benchmarks/bench_notify.py [--write] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from dateutil import rrule as du_rrule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine_lines, table, write_section

from stayfresh.notify import compute_window, make_rule, reschedule
from stayfresh.notify._rules import _parse
from stayfresh.store import RuleRow, SQLiteStore

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tokyo", "UTC"]
GOAL_S = 0.5


def make_rules(store: SQLiteStore, n: int, seed: int = 7) -> None:
    """A realistic mix: 60% daily, 20% weekly on set days, 10% monthly, 10% one-time;
    starts spread over the last two years (old starts are the expensive case)."""
    rnd = random.Random(seed)
    for i in range(n):
        tz = rnd.choice(ZONES)
        start = NOW - dt.timedelta(days=rnd.randint(0, 730))
        wall = start.astimezone(ZoneInfo(tz)).replace(
            hour=rnd.randint(6, 21), minute=rnd.choice([0, 15, 30, 45]), second=0, microsecond=0
        )
        kind = rnd.random()
        if kind < 0.6:
            rule = make_rule(f"r{i}", rrule="FREQ=DAILY", start=wall, tz=tz, now=NOW)
        elif kind < 0.8:
            rule = make_rule(
                f"r{i}", rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR", start=wall, tz=tz, now=NOW
            )
        elif kind < 0.9:
            rule = make_rule(f"r{i}", rrule="FREQ=MONTHLY", start=wall, tz=tz, now=NOW)
        else:
            at = NOW + dt.timedelta(minutes=rnd.randint(0, 4 * 24 * 60))
            rule = make_rule(f"r{i}", at=at, tz=tz, now=NOW)
        store.add_notify_rule(rule, now=NOW.timestamp())


def plain_dateutil(rules: list[RuleRow], now: dt.datetime, end: dt.datetime) -> int:
    """The obvious code: between() from each rule's start, placed with zoneinfo."""
    count = 0
    for row in rules:
        if row.at is not None:
            count += now.timestamp() <= row.at <= end.timestamp()
            continue
        assert row.rrule is not None and row.dtstart is not None
        zone = ZoneInfo(row.tz)
        rule = du_rrule.rrulestr(row.rrule, dtstart=dt.datetime.fromisoformat(row.dtstart))
        lo = now.astimezone(zone).replace(tzinfo=None) - dt.timedelta(days=1)
        hi = end.astimezone(zone).replace(tzinfo=None) + dt.timedelta(days=1)
        for wall in rule.between(lo, hi, inc=True):
            if now <= wall.replace(tzinfo=zone).astimezone(UTC) <= end:
                count += 1
    return count


def timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def measure(n: int, repeats: int) -> tuple[int, list[float], list[float], list[float], list[float]]:
    """Occurrences, warm reschedules, cold reschedules, pure window, plain dateutil (seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        make_rules(store, n)
        rules = store.list_notify_rules()
        end = NOW + dt.timedelta(days=2)
        occurrences = len(compute_window(rules, NOW).rows)
        assert plain_dateutil(rules, NOW, end) == occurrences

        def warm() -> None:
            reschedule(store, now=NOW, layer="manual")

        def cold() -> None:
            _parse.cache_clear()  # a fresh process: every RRULE parsed again
            reschedule(store, now=NOW, layer="manual")

        full = timed(warm, repeats)
        first = timed(cold, repeats)
        pure = timed(lambda: compute_window(rules, NOW), repeats)
        plain = timed(lambda: plain_dateutil(rules, NOW, end), 1 if n >= 10_000 else repeats)
        store.close()
    return occurrences, full, first, pure, plain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="replace our section of RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    load_start = load_average()
    started = time.time()
    rows: list[list[str]] = []
    verdicts: list[str] = []
    for n in (1_000, 10_000):
        occurrences, full, first, pure, plain = measure(n, repeats)
        med = statistics.median(full)
        rows.append([f"{n:,}", f"{occurrences:,}", f"{med * 1000:,.0f}", f"{min(full) * 1000:,.0f}",
                     f"{statistics.median(first) * 1000:,.0f}",
                     f"{statistics.median(pure) * 1000:,.0f}", f"{statistics.median(plain) * 1000:,.0f}"])  # fmt: skip
        if n == 10_000:
            cold_med = statistics.median(first)
            met = "met" if max(med, cold_med) <= GOAL_S else "**missed**"
            verdicts.append(
                f"- Goal ≤ {GOAL_S} s for 10,000 rules into a 2-day window: {med:.3f} s (median, "
                f"warm), {cold_med:.3f} s (cold: first reschedule of a process) — {met}."
            )
        print(rows[-1], flush=True)
    elapsed = time.time() - started
    body = "\n".join(
        [
            "## Notifications",
            "",
            f"`.venv/bin/python benchmarks/bench_notify.py --write` — {elapsed:.0f} s, "
            f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
            "",
            *machine_lines(["stayfresh", "python-dateutil", "tzdata"]),
            f"- 1-min load average at start / end: {load_start} / {load_average()}",
            "",
            "### Full reschedule of the rolling window",
            "",
            f"Rules: 60% daily, 20% weekly (MO,WE,FR), 10% monthly, 10% one-time; five zones; starts spread "
            f"over the last two years. *Reschedule* = one store transaction (read the rules, expand, delete the "
            f"old window, insert the new one, record telemetry) on a SQLite file in WAL mode, median and best "
            f"of {repeats}. *Cold* = the same with the per-process cache of parsed RRULEs emptied first "
            f"(a CLI command's single reschedule). *Window only* = the pure computation (warm). *Plain dateutil* = `rrulestr(...).between()` "
            f"from each rule's start (what one would write first; same occurrences, checked).",
            "",
            table(
                [
                    "rules",
                    "occurrences in 2 days",
                    "reschedule ms (median)",
                    "best ms",
                    "cold ms (RRULEs parsed)",
                    "window only ms",
                    "plain dateutil ms",
                ],
                rows,
            ),
            "",
            *verdicts,
            "- Why the difference with plain dateutil: `between()` walks every occurrence since the rule's start; "
            "stayfresh computes the common shapes (every n minutes/hours/days/weeks, weekly on set days) as "
            "arithmetic series of wall times and moves other rules' starts forward by whole periods (exact, "
            "never with COUNT) — see `stayfresh/notify/_rules.py`; the property tests hold both paths to a "
            "brute-force expansion.",
        ]
    )
    print(body)
    if args.write:
        write_section("Notifications", body)


if __name__ == "__main__":
    main()
