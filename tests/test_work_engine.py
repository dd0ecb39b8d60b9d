"""Engine semantics on a real SQLite store with a fake clock (no sleeping)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import work_helpers as wh
from stayfresh.errors import ConfigError
from stayfresh.store import SQLiteStore, Store
from stayfresh.testing import FakeClock
from stayfresh.work import (
    Constraints,
    Result,
    Runner,
    WorkManager,
    WorkRequest,
    WorkState,
    register_worker,
)

ENV = {"STAYFRESH_MIN_INTERVAL": "1"}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    wh.CALLS.clear()
    wh.GATE.clear()
    wh.GATE_STARTED.clear()
    wh.PREDICATE_VALUE["ok"] = False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def wm(store: Store, clock: FakeClock) -> WorkManager:
    return WorkManager(store, clock=clock, environ={})


@pytest.fixture
def runner(store: Store, clock: FakeClock) -> Runner:
    return Runner(store, clock=clock, listen=False, environ={}, overrides={})


def names() -> list[str]:
    return [c[0] for c in wh.CALLS]


def test_one_time_success_output_and_history(wm: WorkManager, runner: Runner) -> None:
    info = wm.enqueue(WorkRequest(worker="work_helpers:ok", input={"x": 1}), name="a")
    assert info.state is WorkState.ENQUEUED and info.run_attempt == 0
    assert runner.run_pending() == 1
    done = wm.by_name("a")[0]
    assert done.state is WorkState.SUCCEEDED
    assert done.output == {"ran": "a", "x": 1}
    assert done.next_run_at is None
    [run] = wm.history(name="a")
    assert (run.attempt, run.outcome, run.output) == (1, "success", {"ran": "a", "x": 1})
    assert runner.run_pending() == 0  # finished work never runs again


def test_initial_delay(wm: WorkManager, runner: Runner, clock: FakeClock) -> None:
    wm.enqueue(WorkRequest(worker="work_helpers:ok", delay="1m"), name="later")
    assert runner.run_pending() == 0
    clock.advance(59)
    assert runner.run_pending() == 0
    clock.advance(1)
    assert runner.run_pending() == 1


def test_periodic_runs_first_period_at_once_then_every_interval(
    wm: WorkManager, runner: Runner, clock: FakeClock
) -> None:
    start = clock.now
    info = wm.enqueue(WorkRequest(worker="work_helpers:ok", every="15m"), name="p")
    assert info.next_run_at is not None and info.next_run_at.timestamp() == start
    assert runner.run_pending() == 1
    again = wm.by_name("p")[0]
    assert again.state is WorkState.ENQUEUED  # periodic goes back to ENQUEUED
    assert again.run_attempt == 0
    assert again.next_run_at is not None and again.next_run_at.timestamp() == start + 900
    clock.advance(899)
    assert runner.run_pending() == 0
    clock.advance(1)
    assert runner.run_pending() == 1


def test_periodic_minimum_interval_is_enforced(store: Store, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="at least 15m, not 1m"):  # refused, never raised silently
        WorkManager(store, clock=clock, environ={}).enqueue(
            WorkRequest(worker="noop", every=60), name="fast"
        )
    assert store.find_work(name="fast") == []
    lowered = WorkManager(store, clock=clock, environ=ENV).enqueue(
        WorkRequest(worker="noop", every=2), name="faster"
    )
    assert lowered.interval == 2


def test_missed_periods_run_once_then_keep_cadence(
    wm: WorkManager, runner: Runner, clock: FakeClock
) -> None:
    start = clock.now
    wm.enqueue(WorkRequest(worker="work_helpers:ok", every="15m"), name="p")
    assert runner.run_pending() == 1
    clock.advance(3 * 900 + 100)  # the runner was down for three periods
    assert runner.run_pending() == 1  # one catch-up run, not three
    nxt = wm.by_name("p")[0].next_run_at
    assert nxt is not None and nxt.timestamp() == start + 4 * 900  # back on the cadence


def test_retry_uses_exponential_backoff(wm: WorkManager, runner: Runner, clock: FakeClock) -> None:
    t0 = clock.now
    wm.enqueue(WorkRequest(worker="work_helpers:retry"), name="r")
    expected = [30, 60, 120, 240]
    for attempt, delay in enumerate(expected, start=1):
        assert runner.run_pending() == 1
        info = wm.by_name("r")[0]
        assert info.state is WorkState.ENQUEUED
        assert info.run_attempt == attempt
        assert info.next_run_at is not None and info.next_run_at.timestamp() == clock.now + delay
        clock.advance(delay - 1)
        assert runner.run_pending() == 0  # never before due
        clock.advance(1)
    assert [c[2] for c in wh.CALLS] == [1, 2, 3, 4]
    assert clock.now == t0 + sum(expected)


def test_linear_backoff(wm: WorkManager, runner: Runner, clock: FakeClock) -> None:
    wm.enqueue(
        WorkRequest(worker="work_helpers:retry", backoff="linear", backoff_delay="20s"), name="r"
    )
    runner.run_pending()
    clock.advance(20)
    runner.run_pending()
    info = wm.by_name("r")[0]
    assert info.next_run_at is not None and info.next_run_at.timestamp() == clock.now + 40


def test_exception_fails_one_time_but_retries_periodic(
    wm: WorkManager, runner: Runner, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    wm.enqueue(WorkRequest(worker="work_helpers:boom"), name="once")
    wm.enqueue(WorkRequest(worker="work_helpers:boom", every="15m"), name="per")
    assert runner.run_pending() == 2
    once, per = wm.by_name("once")[0], wm.by_name("per")[0]
    assert once.state is WorkState.FAILED
    assert once.last_error is not None and "RuntimeError: boom from a worker" in once.last_error
    assert "Traceback" in once.last_error
    assert per.state is WorkState.ENQUEUED and per.run_attempt == 1
    assert per.next_run_at is not None and per.next_run_at.timestamp() == clock.now + 30
    assert "boom from a worker" in caplog.text  # logged with its traceback


def test_failure_result_and_periodic_failure(
    wm: WorkManager, runner: Runner, clock: FakeClock
) -> None:
    wm.enqueue(WorkRequest(worker="work_helpers:fail"), name="once")
    wm.enqueue(WorkRequest(worker="work_helpers:fail", every="1h"), name="per")
    runner.run_pending()
    assert wm.by_name("once")[0].state is WorkState.FAILED
    assert wm.by_name("once")[0].output == {"why": "told to fail"}
    per = wm.by_name("per")[0]
    assert per.state is WorkState.ENQUEUED  # periodic work never ends in FAILED
    assert per.next_run_at is not None and per.next_run_at.timestamp() == clock.now + 3600


def test_async_worker_and_progress(wm: WorkManager, runner: Runner) -> None:
    wm.enqueue(WorkRequest(worker="work_helpers:async_ok"), name="a")
    runner.run_pending()
    info = wm.by_name("a")[0]
    assert info.state is WorkState.SUCCEEDED and info.output == {"async": True}


def test_unknown_worker_fails_with_message(wm: WorkManager, runner: Runner) -> None:
    wm.enqueue(WorkRequest(worker="no_such_module_xyz:func"), name="bad")
    runner.run_pending()
    info = wm.by_name("bad")[0]
    assert info.state is WorkState.FAILED
    assert info.last_error is not None and "cannot load worker" in info.last_error


def test_registered_worker_name(wm: WorkManager, runner: Runner) -> None:
    @register_worker("test-double")
    def double(ctx: object) -> Result:
        return Result.success({"n": 2 * int(getattr(ctx, "input")["n"])})  # noqa: B009

    wm.enqueue(WorkRequest(worker="test-double", input={"n": 21}), name="d")
    runner.run_pending()
    assert wm.by_name("d")[0].output == {"n": 42}


# -- unique work -----------------------------------------------------------------------


def test_keep_policy(wm: WorkManager) -> None:
    a = wm.enqueue(WorkRequest(worker="noop", input={"v": 1}), name="u")
    b = wm.enqueue(WorkRequest(worker="noop", input={"v": 2}), name="u", policy="keep")
    assert a.id == b.id and b.input == {"v": 1}
    assert len(wm.by_name("u")) == 1


def test_replace_policy_cancels_old(wm: WorkManager) -> None:
    a = wm.enqueue(WorkRequest(worker="noop", input={"v": 1}), name="u")
    b = wm.enqueue(WorkRequest(worker="noop", input={"v": 2}), name="u", policy="replace")
    assert a.id != b.id
    states = {i.id: i.state for i in wm.by_name("u")}
    assert states == {a.id: WorkState.CANCELLED, b.id: WorkState.ENQUEUED}


def test_keep_after_finish_enqueues_again(wm: WorkManager, runner: Runner) -> None:
    a = wm.enqueue(WorkRequest(worker="noop"), name="u")
    runner.run_pending()
    b = wm.enqueue(WorkRequest(worker="noop"), name="u", policy="keep")
    assert a.id != b.id and b.state is WorkState.ENQUEUED


def test_append_policy_chains_after_existing(wm: WorkManager, runner: Runner) -> None:
    a = wm.enqueue(WorkRequest(worker="work_helpers:ok", input={"first": 1}), name="u")
    b = wm.enqueue(WorkRequest(worker="work_helpers:ok"), name="u", policy="append")
    assert b.state is WorkState.BLOCKED and b.prerequisites == (a.id,)
    runner.run_pending()
    assert wm.get(b.id).state is WorkState.SUCCEEDED  # type: ignore[union-attr]
    assert wm.get(b.id).input == {"ran": "u", "first": 1}  # type: ignore[union-attr]


def test_update_policy_keeps_id_and_schedule(
    wm: WorkManager, clock: FakeClock, runner: Runner
) -> None:
    a = wm.enqueue(WorkRequest(worker="work_helpers:ok", every="1h"), name="p")
    runner.run_pending()
    before = wm.get(a.id)
    clock.advance(10)
    b = wm.enqueue(
        WorkRequest(worker="work_helpers:ok", every="2h", input={"new": True}, tags=("t",)),
        name="p",
        policy="update",
    )
    assert b.id == a.id
    assert b.interval == 7200 and b.input == {"new": True} and b.tags == ("t",)
    assert before is not None and b.next_run_at == before.next_run_at


def test_periodic_cancel_and_reenqueue(wm: WorkManager) -> None:
    a = wm.enqueue(WorkRequest(worker="noop", every="1h"), name="p")
    b = wm.enqueue(WorkRequest(worker="noop", every="1h"), name="p", policy="cancel_and_reenqueue")
    assert a.id != b.id
    assert wm.get(a.id).state is WorkState.CANCELLED  # type: ignore[union-attr]
    c = wm.enqueue(
        WorkRequest(worker="noop", every="1h"), name="p", policy="replace"
    )  # CLI spelling
    assert c.id != b.id


def test_policy_mismatch_is_refused(wm: WorkManager) -> None:
    with pytest.raises(ConfigError):
        wm.enqueue(WorkRequest(worker="noop", every="1h"), name="p", policy="append")
    with pytest.raises(ConfigError):
        wm.enqueue(WorkRequest(worker="noop"), policy="keep")


# -- chains -----------------------------------------------------------------------------


def test_chain_passes_output_and_blocks(wm: WorkManager, runner: Runner) -> None:
    a, b, c = wm.enqueue_chain(
        [
            WorkRequest(worker="work_helpers:ok", input={"a": 1}),
            WorkRequest(worker="work_helpers:ok", input={"b": 2}),
            WorkRequest(worker="work_helpers:ok"),
        ],
        name="ch",
    )
    assert (a.state, b.state, c.state) == (WorkState.ENQUEUED, WorkState.BLOCKED, WorkState.BLOCKED)
    assert runner.run_pending() == 3
    assert wm.get(c.id).input == {"ran": "ch", "a": 1, "b": 2}  # type: ignore[union-attr]
    assert all(wm.get(i.id).state is WorkState.SUCCEEDED for i in (a, b, c))  # type: ignore[union-attr]


def test_chain_failure_fails_the_rest(wm: WorkManager, runner: Runner) -> None:
    a, b, c = wm.enqueue_chain(
        [
            WorkRequest(worker="work_helpers:fail"),
            WorkRequest(worker="noop"),
            WorkRequest(worker="noop"),
        ]
    )
    runner.run_pending()
    assert [wm.get(i.id).state for i in (a, b, c)] == [WorkState.FAILED] * 3  # type: ignore[union-attr]
    assert names() == [a.id]  # b and c never ran


def test_chain_cancel_cancels_the_rest(wm: WorkManager, runner: Runner) -> None:
    a, b = wm.enqueue_chain([WorkRequest(worker="noop"), WorkRequest(worker="noop")], name="ch")
    assert set(wm.cancel(work_id=a.id)) == {a.id, b.id}
    assert wm.get(b.id).state is WorkState.CANCELLED  # type: ignore[union-attr]
    assert runner.run_pending() == 0
    late = wm.enqueue(WorkRequest(worker="noop"), after=[a.id])
    assert late.state is WorkState.CANCELLED  # appending to a cancelled work cancels it


def test_periodic_cannot_be_chained(wm: WorkManager) -> None:
    with pytest.raises(ConfigError):
        wm.enqueue_chain([WorkRequest(worker="noop", every="1h"), WorkRequest(worker="noop")])


# -- cancel -----------------------------------------------------------------------------


def test_cancel_by_name_id_prefix_tag_and_all(wm: WorkManager, runner: Runner) -> None:
    a = wm.enqueue(WorkRequest(worker="noop", tags=("x",)), name="a")
    b = wm.enqueue(WorkRequest(worker="noop", tags=("x", "y")), name="b")
    c = wm.enqueue(WorkRequest(worker="noop", every="1h"), name="c")
    d = wm.enqueue(WorkRequest(worker="noop"), name="d")
    assert wm.cancel(tag="y") == [b.id]
    assert wm.cancel(name="a") == [a.id]
    assert wm.cancel(work_id=d.id[:8]) == [d.id]
    assert wm.cancel(everything=True) == [c.id]
    assert runner.run_pending() == 0
    assert {i.state for i in wm.list_work()} == {WorkState.CANCELLED}
    assert wm.cancel(everything=True) == []


def test_cancel_running_work_stops_it(store: Store, clock: FakeClock) -> None:
    """A RUNNING work that is cancelled loses its lease; the poke makes its runner stop it."""
    wm = WorkManager(store, clock=clock, environ={})
    runner = Runner(store, clock=clock, environ={}, overrides={})  # listens on the control socket
    info = wm.enqueue(WorkRequest(worker="work_helpers:progress_then_wait"), name="w")
    runner.start()
    try:
        wh.wait_for(wh.GATE_STARTED.is_set, what="worker start")
        wh.wait_for(lambda: wm.get(info.id).progress == {"percent": 50}, what="progress")  # type: ignore[union-attr]
        assert wm.get(info.id).state is WorkState.RUNNING  # type: ignore[union-attr]
        wm.cancel(name="w")  # pokes the runner through the control socket
        wh.wait_for(lambda: not runner._runs, what="the run to stop")
    finally:
        runner.stop(grace=5)
    final = wm.get(info.id)
    assert final is not None and final.state is WorkState.CANCELLED
    [run] = wm.history(work_id=info.id)
    assert run.outcome == "cancelled"


def test_run_now_ignores_schedule_and_constraints(wm: WorkManager, runner: Runner) -> None:
    wm.enqueue(
        WorkRequest(
            worker="work_helpers:ok",
            delay="1h",
            constraints=Constraints(predicates=("work_helpers:predicate",)),
        ),
        name="n",
    )
    assert runner.run_pending() == 0
    assert wm.run_now(name="n")
    assert runner.run_pending() == 1


# -- constraints ----------------------------------------------------------------------------


def test_unmet_predicate_keeps_work_enqueued(wm: WorkManager, runner: Runner) -> None:
    wm.enqueue(
        WorkRequest(
            worker="work_helpers:ok",
            constraints=Constraints(predicates=("work_helpers:predicate",)),
        ),
        name="c",
    )
    wm.enqueue(WorkRequest(worker="work_helpers:ok"), name="free")
    assert runner.run_pending() == 1  # the unconstrained one only
    assert wm.by_name("c")[0].state is WorkState.ENQUEUED
    assert runner._watcher is not None  # watching while work waits on a constraint
    wh.PREDICATE_VALUE["ok"] = True
    assert runner.run_pending() == 1
    assert wm.by_name("c")[0].state is WorkState.SUCCEEDED
    assert runner._watcher is None  # nothing waits any more: stop watching
    assert names() == ["free", "c"]


def test_network_override_none_blocks_network_work(store: Store, clock: FakeClock) -> None:
    wm = WorkManager(store, clock=clock, environ={})
    offline = Runner(store, clock=clock, listen=False, environ={}, overrides={"network": "none"})
    wm.enqueue(WorkRequest(worker="noop", constraints=Constraints(network="connected")), name="net")
    assert offline.run_pending() == 0
    online = Runner(store, clock=clock, listen=False, environ={}, overrides={"network": "metered"})
    assert online.run_pending() == 1
    wm.enqueue(
        WorkRequest(worker="noop", constraints=Constraints(network="unmetered")), name="wifi"
    )
    assert online.run_pending() == 0
    offline._manage_watcher(False, None)
    online._manage_watcher(False, None)


# -- leases, claiming, history ----------------------------------------------------------------


def test_two_runners_never_claim_the_same_work(
    store: Store, clock: FakeClock, db_path: Path
) -> None:
    """Claiming is one write transaction: concurrent claimers split the work, never share it."""
    wm = WorkManager(store, clock=clock, environ={})
    ids = {wm.enqueue(WorkRequest(worker="noop"), name=f"w{i}").id for i in range(200)}
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def claim(runner_id: str) -> None:
        s = SQLiteStore(db_path)
        barrier.wait()
        got: list[str] = []
        while True:
            rows = s.due_work(clock.now, limit=7)
            if not rows:
                break
            got += [
                c.work.id
                for c in s.claim_work(
                    [r.id for r in rows], runner_id=runner_id, now=clock.now, lease_seconds=60
                )
            ]
        claimed[runner_id] = got

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for got in claimed.values() for i in got]
    assert sorted(every) == sorted(ids)  # all claimed, none twice


def test_expired_lease_is_reclaimed_and_old_run_marked_lost(store: Store, clock: FakeClock) -> None:
    wm = WorkManager(store, clock=clock, environ={})
    info = wm.enqueue(WorkRequest(worker="work_helpers:ok"), name="l")
    [dead] = store.claim_work([info.id], runner_id="dead", now=clock.now, lease_seconds=60)
    runner = Runner(store, clock=clock, listen=False, environ={}, overrides={})
    assert runner.run_pending() == 0  # lease still valid: nobody else may run it
    assert store.next_wake_time(clock.now, runner_id=runner.runner_id) == clock.now + 60
    clock.advance(60)
    assert runner.run_pending() == 1
    final = wm.get(info.id)
    assert final is not None and final.state is WorkState.SUCCEEDED and final.run_attempt == 2
    outcomes = [r.outcome for r in wm.history(work_id=info.id)]
    assert outcomes == ["success", "lost"]
    # the dead runner's late report changes nothing
    from stayfresh.work import plan_finish

    store.finish_runs(
        [plan_finish(dead, runner_id="dead", outcome="failure", now=clock.now)], keep_runs=10
    )
    assert wm.get(info.id).state is WorkState.SUCCEEDED  # type: ignore[union-attr]


def test_a_run_checks_its_fencing_token_before_a_side_effect(store: Store, clock: FakeClock) -> None:
    """``ctx.lease_valid()``: the stored work still names this run, with a live lease."""
    from stayfresh.work import WorkerContext

    wm = WorkManager(store, clock=clock, environ={})
    info = wm.enqueue(WorkRequest(worker="work_helpers:ok"), name="f")
    [first] = store.claim_work([info.id], runner_id="r1", now=clock.now, lease_seconds=60)
    ctx = WorkerContext(
        work_id=info.id, name="f", input={}, run_attempt=1, tags=(), scheduled_at=clock.now,
        store=store, run_id=first.run_id, clock=clock,
    )  # fmt: skip
    assert ctx.run_id == first.run_id and ctx.lease_valid()
    clock.advance(61)
    assert not ctx.lease_valid()  # its lease ran out: another runner may own it now
    [second] = store.claim_work([info.id], runner_id="r2", now=clock.now, lease_seconds=60)
    assert second.run_id != first.run_id and not ctx.lease_valid()  # taken over
    ctx.lease_lost()
    assert ctx.cancelled and not ctx.lease_valid()


def test_history_is_bounded(store: Store, clock: FakeClock) -> None:
    wm = WorkManager(store, clock=clock, environ={})
    runner = Runner(store, clock=clock, listen=False, environ={}, overrides={}, keep_runs=5)
    wm.enqueue(WorkRequest(worker="noop", every="15m"), name="h")
    for _ in range(12):
        runner.run_pending()
        clock.advance(900)
    runs = wm.history(name="h")
    assert len(runs) == 5
    assert [r.started_at.timestamp() for r in runs] == sorted(
        (r.started_at.timestamp() for r in runs), reverse=True
    )


def test_prune_forgets_old_finished_one_time_work(
    wm: WorkManager, runner: Runner, clock: FakeClock
) -> None:
    wm.enqueue(WorkRequest(worker="noop"), name="old")
    wm.enqueue(WorkRequest(worker="noop", every="1h"), name="per")
    runner.run_pending()
    clock.advance(8 * 86400)
    assert wm.prune() == 1
    assert [i.name for i in wm.list_work()] == ["per"]


def test_time_limit_cancels_and_retries(store: Store) -> None:
    """A run past its time limit is cancelled; the work is retried after its backoff."""
    wm = WorkManager(store, environ=ENV)
    runner = Runner(store, listen=False, environ=ENV, overrides={})
    info = wm.enqueue(
        WorkRequest(worker="work_helpers:progress_then_wait", timeout=0.2, backoff_delay=1),
        name="t",
    )
    runner.start()
    try:
        wh.wait_for(
            lambda: any(r.outcome == "timeout" for r in wm.history(work_id=info.id)), what="timeout"
        )
        [run] = wm.history(work_id=info.id)
        assert run.error is not None and "time limit of 0.2s exceeded" in run.error
        after = wm.get(info.id)
        assert after is not None and after.state is WorkState.ENQUEUED and after.run_attempt == 1
        wh.GATE.set()  # the retry may now succeed
        wh.wait_for(lambda: wm.get(info.id).state is WorkState.SUCCEEDED, what="retry")  # type: ignore[union-attr]
    finally:
        runner.stop(grace=5)
    assert [r.outcome for r in wm.history(work_id=info.id)] == ["success", "timeout"]


def test_worker_ignoring_cancel_is_not_run_twice_at_once(store: Store) -> None:
    """After a time limit, the retry waits until the stuck thread has returned."""
    wm = WorkManager(store, environ=ENV)
    runner = Runner(store, listen=False, environ=ENV, overrides={})
    info = wm.enqueue(
        WorkRequest(worker="work_helpers:slow_ignores_cancel", timeout=0.1, backoff_delay=0.1),
        name="s",
    )
    runner.start()
    try:
        wh.wait_for(wh.GATE_STARTED.is_set, what="first attempt")
        wh.wait_for(
            lambda: all(r.claim.work.id != info.id or r.timed_out for r in runner._runs.values()),
            what="time limit",
        )
        # still RUNNING while the stuck thread has not returned: no second attempt yet
        assert wm.get(info.id).state is WorkState.RUNNING  # type: ignore[union-attr]
        assert [c[2] for c in wh.CALLS] == [1]
        wh.GATE.set()
        wh.wait_for(lambda: wm.get(info.id).state is WorkState.SUCCEEDED, what="retry")  # type: ignore[union-attr]
    finally:
        runner.stop(grace=5)
    assert [c[2] for c in wh.CALLS] == [1, 2]


def test_graceful_stop_releases_unfinished_runs(store: Store) -> None:
    wm = WorkManager(store, environ=ENV)
    runner = Runner(store, listen=False, environ=ENV, overrides={})
    info = wm.enqueue(WorkRequest(worker="work_helpers:progress_then_wait"), name="g")
    runner.start()
    wh.wait_for(wh.GATE_STARTED.is_set, what="start")
    runner.stop(grace=0.1)
    after = wm.get(info.id)
    assert after is not None and after.state is WorkState.ENQUEUED
    assert after.run_attempt == 0  # a released run does not count as an attempt
    assert [r.outcome for r in wm.history(work_id=info.id)] == ["released"]


def test_builtin_worker_names_resolve_without_importing_jobs() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from stayfresh.work import resolve_worker\n"
        "assert 'stayfresh.jobs' not in sys.modules\n"
        "for name in ('stayfresh.token-refresh', 'stayfresh.library-sync', 'stayfresh.download'):\n"
        "    assert callable(resolve_worker(name)), name\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
