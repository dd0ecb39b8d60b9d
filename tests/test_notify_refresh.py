"""The two layers, the lock, the full reschedule and telemetry, on a real store with ``now`` given."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stayfresh import jobs, notify
from stayfresh.jobs._notify import DELIVERY_TAG
from stayfresh.notify import NOTIFICATION_REFRESH_TASK, on_app_start, refresh, window_decision
from stayfresh.store import NotifyFreshness, SQLiteStore, Store
from stayfresh.work import Runner, WorkManager

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def add(store: Store, title: str = "Stretch", **kw: object) -> int:
    kw.setdefault("rrule", "FREQ=HOURLY")
    kw.setdefault("start", "2026-01-01 00:00")
    kw.setdefault("tz", "Europe/Berlin")
    return store.add_notify_rule(notify.make_rule(title, now=T0, **kw), now=T0.timestamp()).id  # type: ignore[arg-type]


def layer(store: Store, name: str) -> dict[str, object]:
    return jobs.notify_status(store, now=T0.timestamp())["layers"][name]  # type: ignore[no-any-return]


def fresh(last: float | None, rv: int = 1, wv: int = 1, rules: bool = True) -> NotifyFreshness:
    return NotifyFreshness(
        last_reschedule_at=last, rules_version=rv, window_rules_version=wv, has_rules=rules
    )


def test_refresh_decision() -> None:
    now = T0.timestamp()
    assert window_decision(fresh(None), now)[0]
    assert window_decision(fresh(now - 4 * 3600), now)[0]
    assert not window_decision(fresh(now - 4 * 3600 + 1), now)[0]
    assert window_decision(fresh(now, rv=2), now)[0]  # reminders changed
    assert not window_decision(fresh(None, rules=False), now)[0]  # nothing to schedule
    assert window_decision(fresh(now + 60), now)[0]  # the clock went back
    assert "h ago" in window_decision(fresh(now - 60), now)[1]


def test_foreground_reschedules_every_four_hours_and_is_read_only_between(store: Store) -> None:
    assert on_app_start(store, now=T0).status == "fresh"  # no reminders: nothing, no write
    add(store)
    first = on_app_start(store, now=T0)
    assert (
        first.status == "refreshed" and first.state is not None and first.state.result is not None
    )
    assert first.state.result.scheduled == 49  # hourly, both ends of [now, now + 2 d]
    changes = store._conn().total_changes  # type: ignore[attr-defined]
    for minutes in (1, 60, 239):
        assert on_app_start(store, now=T0 + dt.timedelta(minutes=minutes)).status == "fresh"
    assert store._conn().total_changes == changes  # type: ignore[attr-defined]
    later = on_app_start(store, now=T0 + dt.timedelta(hours=4))
    assert later.status == "refreshed"
    t = layer(store, "foreground")
    assert (t["executions"], t["successes"], t["failures"], t["skips"]) == (2, 2, 0, 0)


def test_reschedule_is_full_and_keeps_overdue_for_the_deliverer(store: Store) -> None:
    a = add(store, "a")
    b = add(store, "b", rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0")
    refresh(store, now=T0)
    store.delete_notify_rule(b)
    later = T0 + dt.timedelta(minutes=90)
    outcome = refresh(store, now=later)
    assert outcome.state is not None and outcome.state.result is not None
    pending = store.list_pending_notifications()
    assert {p.rule_id for p in pending} == {a}
    overdue = [p for p in pending if p.due_at < later.timestamp()]
    assert [dt.datetime.fromtimestamp(p.due_at, UTC) for p in overdue] == [
        T0,
        T0 + dt.timedelta(hours=1),
    ]
    assert outcome.state.result.overdue_kept == 2
    assert max(p.due_at for p in pending) <= (later + dt.timedelta(days=2)).timestamp()


def test_a_failed_plan_changes_nothing(store: Store) -> None:
    add(store)
    refresh(store, now=T0)
    before = store.list_pending_notifications()

    def boom(rules: object) -> list[object]:
        raise RuntimeError("plan failed")

    with pytest.raises(RuntimeError):
        store.reschedule_notifications(boom, now=T0.timestamp() + 60)  # type: ignore[arg-type]
    assert store.list_pending_notifications() == before
    assert store.notify_freshness().last_reschedule_at == T0.timestamp()


class FailingStore(SQLiteStore):
    """A store whose reschedule transaction fails the way a full disk does."""

    def reschedule_notifications(self, *args: object, **kw: object) -> object:  # type: ignore[override]
        raise sqlite3.OperationalError("database or disk is full")


def test_failures_are_counted_and_never_raised(db_path: Path) -> None:
    store = FailingStore(db_path)
    add(store)
    outcome = on_app_start(store, now=T0)
    assert outcome.status == "failed" and "disk is full" in str(outcome.error)
    t = layer(store, "foreground")
    assert (t["executions"], t["failures"], t["last_error"]) == (
        1,
        1,
        f"OperationalError: {outcome.error}",
    )
    store.close()


def test_second_caller_skips_while_the_lock_is_held_in_this_process(store: Store) -> None:
    add(store)
    lock = store.lock("notify", "window")
    holder = threading.Thread(target=lock.acquire)
    holder.start()
    holder.join()
    try:
        assert refresh(store, "background", now=T0).status == "skipped"
        assert on_app_start(store, now=T0).status == "skipped"
    finally:
        lock.release()
    assert layer(store, "background")["skips"] == 1
    assert layer(store, "foreground")["skips"] == 1
    assert refresh(store, "background", now=T0).status == "refreshed"


def test_second_caller_skips_while_another_process_holds_the_lock(
    store: Store, db_path: Path
) -> None:
    add(store)
    code = (
        "import sys; from stayfresh.store import SQLiteStore\n"
        f"lock = SQLiteStore({str(db_path)!r}).lock('notify', 'window'); lock.acquire()\n"
        "print('held', flush=True); sys.stdin.readline()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        assert refresh(store, "manual", now=T0).status == "skipped"
        proc.stdin.close()
        proc.wait(30)
    assert refresh(store, "manual", now=T0).status == "refreshed"


def test_two_processes_race_for_many_rounds_exactly_one_reschedules(
    store: Store, db_path: Path
) -> None:
    from notify_helpers import race_layer

    add(store)
    rounds = 50
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    tried = [ctx.Event() for _ in range(rounds)]
    out = ctx.Queue()
    procs = [
        ctx.Process(target=race_layer, args=(name, str(db_path), rounds, start, tried, out))
        for name in ("foreground", "background")
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(2 * rounds)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    by_round: dict[int, dict[str, str]] = {}
    for r, name, status, _scheduled in results:
        by_round.setdefault(r, {})[name] = status
    winners = {"foreground": 0, "background": 0}
    for r in range(rounds):
        assert sorted(by_round[r].values()) == ["refreshed", "skipped"], (r, by_round[r])
        winners[next(k for k, v in by_round[r].items() if v == "refreshed")] += 1
    fg, bg = layer(store, "foreground"), layer(store, "background")
    assert fg["successes"] + bg["successes"] == rounds  # type: ignore[operator]
    assert fg["skips"] + bg["skips"] == rounds  # type: ignore[operator]
    assert fg["executions"] == bg["executions"] == rounds
    assert len(store.list_pending_notifications()) >= 48  # the window is whole after the race


def test_background_layer_is_periodic_work_that_always_reschedules(store: Store) -> None:
    add(store)
    info = jobs.enable_background(store)
    assert info.name == NOTIFICATION_REFRESH_TASK and info.periodic and info.interval == 3 * 3600
    assert jobs.enable_background(store).id == info.id  # idempotent
    runner = Runner(store, listen=False)
    assert runner.run_pending() >= 1  # the first period runs at once, as WorkManager does
    bg = layer(store, "background")
    assert (bg["executions"], bg["successes"]) == (1, 1)
    [work] = WorkManager(store).by_name(NOTIFICATION_REFRESH_TASK)
    assert work.last_outcome == "success" and work.state.value == "ENQUEUED"
    assert store.find_work(tag=DELIVERY_TAG)  # the deliverer waits for the first occurrence
    assert jobs.disable_background(store) == [info.id]
    assert jobs.background_work(store) is None
    assert (
        on_app_start(store, now=dt.datetime.now(UTC) + dt.timedelta(hours=5)).status == "refreshed"
    )  # foreground goes on


def test_a_reschedule_enqueues_one_delivery_work_for_the_earliest_time(store: Store) -> None:
    jobs.install()  # the composition point: from then on a reschedule schedules delivery
    add(store)
    refresh(store, now=T0)
    refresh(store, now=T0)  # same earliest time: kept, not duplicated
    works = store.find_work(tag=DELIVERY_TAG)
    assert len(works) == 1 and works[0].scheduled_at == T0.timestamp()
    assert works[0].input["db"] == store.location
