"""The common core (:mod:`stayfresh.fresh`) on its own, with a counter kind, on both backends.

Share mode (N callers, one refresh, all get its result; a failure shared; the
cooldown), skip mode (a second caller returns at once, never queued), the valid
path (no store read), real processes racing through the store's lock, and the
background layer (a periodic work refreshing the state while nobody calls).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fresh_helpers import COUNTER, Counter, SkipCounter, ensure_in_process
from stayfresh.errors import TransientError
from stayfresh.fresh import Fresh, background_check, drop_fresh, keep_fresh, use_fresh
from stayfresh.store import Store
from stayfresh.testing import FakeClock, temporary_store, wait_for
from stayfresh.work import Runner, WorkManager
from store_backends import Opener

T0 = 1_700_000_000.0


def blocking_source(started: threading.Event, release: threading.Event) -> Callable[..., None]:
    calls: list[int] = []

    def source(key: str, n: int) -> None:
        calls.append(n)
        started.set()
        assert release.wait(30), "never released"

    source.calls = calls  # type: ignore[attr-defined]
    return source


def in_threads(count: int, fn: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_the_valid_path_reads_nothing(any_store: Store) -> None:
    clock = FakeClock(T0)
    kind = Counter(ttl=60)
    fresh = Fresh(kind, any_store, clock=clock)
    first = fresh.ensure("k")
    assert (first.status, first.state.value["n"]) == ("refreshed", 1)  # type: ignore[union-attr]
    loads = kind.loads
    for _ in range(100):
        assert fresh.ensure("k").status == "fresh"
    assert kind.loads == loads  # answered from memory
    clock.advance(61)
    again = fresh.ensure("k")
    assert (again.status, again.state.value["n"]) == ("refreshed", 2)  # type: ignore[union-attr]
    (row,) = any_store.fresh_telemetry("counter", "k")
    assert (row.layer, row.executions, row.successes, row.latency_count) == ("use", 2, 2, 2)


def test_share_mode_n_callers_one_refresh_all_get_its_result(any_store: Store) -> None:
    started, release = threading.Event(), threading.Event()
    source = blocking_source(started, release)
    kind = Counter(source=source)
    fresh = Fresh(kind, any_store, clock=FakeClock(T0))
    leader = threading.Thread(target=lambda: fresh.ensure("k"))
    leader.start()
    assert started.wait(30)
    waiters: list[Any] = []
    threads = [threading.Thread(target=lambda: waiters.append(fresh.ensure("k"))) for _ in range(8)]
    for t in threads:
        t.start()
    # every caller has read the stale state while the refresh is in flight: each one
    # joins the flight, or (read but not yet joined when it lands) the lock's re-read
    wait_for(lambda: kind.loads >= 2 + 8, 10)  # the leader read it twice: before the lock, after
    release.set()
    for t in [leader, *threads]:
        t.join(30)
    assert source.calls == [1]  # type: ignore[attr-defined]
    assert sorted({w.status for w in waiters}) == ["joined"]
    assert {w.state.value["n"] for w in waiters} == {1}


def test_share_mode_a_failure_is_shared_then_cooled_down(any_store: Store) -> None:
    clock = FakeClock(T0)
    calls: list[int] = []

    def failing(key: str, n: int) -> None:
        calls.append(n)
        raise TransientError("upstream 503")

    fresh = Fresh(Counter(source=failing), any_store, clock=clock, cooldown=30)
    outcomes = in_threads(6, lambda: fresh.ensure("k"))
    assert len(calls) == 1  # one attempt, shared by all
    assert {o.status for o in outcomes} == {"failed"}
    assert all(isinstance(o.error, TransientError) and not o.usable for o in outcomes)
    with pytest.raises(TransientError, match="upstream 503"):
        fresh.get("k")  # nothing usable to fall back on: the shared error
    assert len(calls) == 1  # still cooling down
    clock.advance(31)
    assert fresh.ensure("k").status == "failed" and len(calls) == 2  # tried again
    (row,) = any_store.fresh_telemetry("counter", "k")
    assert (row.failures, row.transient_failures, row.last_error) == (
        2, 2, "TransientError: upstream 503",
    )  # fmt: skip


def test_a_usable_old_state_is_kept_while_refreshes_fail(any_store: Store) -> None:
    clock = FakeClock(T0)
    kind = Counter(ttl=60)
    fresh = Fresh(kind, any_store, clock=clock, cooldown=0)
    first = fresh.get("k")
    kind.source = lambda key, n: (_ for _ in ()).throw(TransientError("down"))
    clock.advance(30)  # stale 40 s ahead, still usable until its end (T0 + 60)
    failed = fresh.ensure("k", within=40)
    assert failed.status == "failed" and failed.usable
    assert fresh.get("k", within=40) == first  # the old state, with a warning
    with pytest.raises(TransientError):  # forced: the caller knows it is bad
        fresh.get("k", within=40, force=True)
    clock.advance(31)  # past its end: nothing usable left
    with pytest.raises(TransientError):
        fresh.get("k")
    assert not fresh.ensure("k").usable


def test_skip_mode_a_second_caller_returns_at_once(any_store: Store, reopen: Opener) -> None:
    started, release = threading.Event(), threading.Event()
    source = blocking_source(started, release)
    fresh = Fresh(SkipCounter(source=source), any_store, clock=FakeClock(T0))
    leader = threading.Thread(target=lambda: fresh.ensure("k"))
    leader.start()
    assert started.wait(30)
    second = fresh.ensure("k")  # the same process: never queued behind the flight
    assert second.status == "skipped" and leader.is_alive()
    other = Fresh(SkipCounter(source=source), reopen(), clock=FakeClock(T0))
    third = other.ensure("k")  # another store ("process"): the lock is held
    assert third.status == "skipped" and leader.is_alive()
    release.set()
    leader.join(30)
    assert source.calls == [1]  # type: ignore[attr-defined]
    (row,) = any_store.fresh_telemetry("skip-counter", "k")
    assert (row.successes, row.skips) == (1, 1)  # the lock's skip is counted


def test_async_callers_share_the_same_flight(any_store: Store) -> None:
    fresh = Fresh(Counter(), any_store, clock=FakeClock(T0))

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(fresh.aensure("k") for _ in range(10))))

    outcomes = asyncio.run(main())
    assert sorted(o.status for o in outcomes).count("refreshed") == 1
    assert {o.state.value["n"] for o in outcomes} == {1}


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_real_processes_refresh_once(
    backend_name: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = (
        str(tmp_path / "fresh.db")
        if backend_name == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    log = tmp_path / "refreshes.log"
    monkeypatch.setenv("FRESH_LOG", str(log))
    with temporary_store(location if backend_name == "postgres" else None) as store:
        if backend_name == "sqlite":
            store.close()
            from stayfresh.store import open_store

            store = open_store(location)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=ensure_in_process, args=(location, "shared", start, out))
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert len(log.read_text().splitlines()) == 1  # one refresh among four processes
        assert sorted(status for status, _ in results) == [
            "joined",
            "joined",
            "joined",
            "refreshed",
        ]
        assert {n for _, n in results} == {1}
        (row,) = store.fresh_telemetry("counter", "shared")
        assert row.successes == 1
        store.close()


def test_the_background_layer_refreshes_while_nobody_calls(any_store: Store) -> None:
    clock = FakeClock()  # now: keep_fresh enqueues on the real clock
    fresh = Fresh(COUNTER, any_store, clock=clock)
    use_fresh(fresh)  # the worker uses this one (its clock)
    try:
        check_background(any_store, fresh, clock)
    finally:
        drop_fresh(fresh)


def check_background(any_store: Store, fresh: Fresh[Any], clock: FakeClock) -> None:
    info = keep_fresh(any_store, "fresh_helpers:COUNTER", "bg", every=3600)
    assert info.name == "fresh:counter:bg" and info.periodic
    assert keep_fresh(any_store, "fresh_helpers:COUNTER", "bg", every=3600).id == info.id
    runner = Runner(any_store, clock=clock, listen=False)
    clock.advance(1)  # past the moment keep_fresh enqueued it
    assert runner.run_pending() == 1  # the first period runs at once
    state = any_store.get_fresh_state("counter", "bg")
    assert state is not None and state.value["n"] == 1
    [work] = WorkManager(any_store).by_name("fresh:counter:bg")
    assert work.last_outcome == "success"
    (row,) = any_store.fresh_telemetry("counter", "bg")
    assert (row.layer, row.successes) == ("background", 1)
    clock.advance(3600)  # the state went stale meanwhile; the next period refreshes it
    assert runner.run_pending() == 1
    assert any_store.get_fresh_state("counter", "bg").value["n"] == 2  # type: ignore[union-attr]
    assert background_check(fresh, "bg").status == "fresh"  # the same ensure, answered from memory
