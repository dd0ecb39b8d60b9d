"""More of the work store's contract, on both backends (SQLite and PostgreSQL).

What :mod:`test_store_contract` leaves open and the single-source rewrite of
the work store could change unseen: list order of tags and prerequisites,
filters that combine, outputs merged at insert time, why a taken-over run was
lost, late results, what a cancel chooses. Same fixtures: PostgreSQL is the
real server of ``pg_server`` (failing, not skipped, in CI).
"""

from __future__ import annotations

import pytest

from stayfresh.store import Store
from stayfresh.store._work import LOST_DEAD, LOST_EXPIRED
from test_store_contract import T0, finish, new_work


@pytest.fixture
def store(any_store: Store) -> Store:
    """A store on a fresh database of each backend (``any_store``: tests/store_backends.py)."""
    return any_store


def test_tags_and_prerequisites_come_back_sorted_and_unique(store: Store) -> None:
    store.enqueue_work([new_work("p2"), new_work("p1"), new_work("p3")], policy=None, now=T0)
    store.enqueue_work(
        [new_work("w", tags=("zeta", "alpha", "mid", "alpha"), after=("p3", "p1", "p2", "p1"))],
        policy=None,
        now=T0,
    )
    w = store.get_work("w")
    assert w is not None
    assert (w.tags, w.prerequisites) == (("alpha", "mid", "zeta"), ("p1", "p2", "p3"))
    (found,) = store.find_work(tag="mid")
    assert found.tags == w.tags and found.prerequisites == w.prerequisites
    due = store.due_work(T0, limit=10)
    assert [d.id for d in due] == ["p2", "p1", "p3"]  # due at once, in insertion order
    assert all(d.tags == () and d.prerequisites == () for d in due)


def test_find_work_filters_combine(store: Store) -> None:
    store.enqueue_work([new_work("a_1", name="n", tags=("t",))], policy=None, now=T0)
    store.enqueue_work([new_work("a_2", name="n")], policy=None, now=T0 + 1)
    store.enqueue_work([new_work("ax3", name="m", tags=("t",))], policy=None, now=T0 + 2)
    (claim,) = store.claim_work(["a_1"], runner_id="r1", now=T0, lease_seconds=30)
    assert [w.id for w in store.find_work(name="n", states=["ENQUEUED"])] == ["a_2"]
    assert [w.id for w in store.find_work(tag="t", name="m")] == ["ax3"]
    assert [w.id for w in store.find_work(tag="t", states=["RUNNING"])] == ["a_1"]
    # a prefix is literal: "_" is no wildcard
    assert [w.id for w in store.find_work(id_prefix="a_")] == ["a_2", "a_1"]
    assert [w.id for w in store.find_work(id_prefix="a_", limit=1)] == ["a_2"]
    assert store.find_work(name="n", tag="missing") == []
    assert store.find_work(states=[]) == []
    assert [w.id for w in store.find_work()] == ["ax3", "a_2", "a_1"]
    assert claim.work.id == "a_1"


def test_prerequisites_that_already_succeeded_merge_their_outputs_at_insert(
    store: Store,
) -> None:
    store.enqueue_work([new_work("first"), new_work("second")], policy=None, now=T0)
    for wid, output in (("second", {"k": "second", "s": 1}), ("first", {"k": "first", "f": 1})):
        (c,) = store.claim_work([wid], runner_id="r1", now=T0, lease_seconds=30)
        store.finish_runs([finish(wid, c.run_id, output=output)], keep_runs=10)
    store.enqueue_work(
        [new_work("d", input={"k": "own", "i": 1}, after=("second", "first"))],
        policy=None,
        now=T0 + 50,
    )
    d = store.get_work("d")
    assert d is not None and d.state == "ENQUEUED" and d.next_run_at == T0 + 50
    # in insertion order of the prerequisites: the later inserted output wins
    assert d.input == {"k": "second", "i": 1, "s": 1, "f": 1}


@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
def test_a_work_after_an_ended_prerequisite_starts_ended(store: Store, outcome: str) -> None:
    store.enqueue_work([new_work("p")], policy=None, now=T0)
    (c,) = store.claim_work(["p"], runner_id="r1", now=T0, lease_seconds=30)
    store.finish_runs([finish("p", c.run_id, state=outcome)], keep_runs=10)
    store.enqueue_work([new_work("d", after=("p",))], policy=None, now=T0 + 5)
    d = store.get_work("d")
    assert d is not None and (d.state, d.finished_at) == (outcome, T0 + 5)
    assert store.due_work(T0 + 10, limit=10) == []


def test_update_policy_takes_one_work_even_without_an_existing_one(store: Store) -> None:
    with pytest.raises(ValueError, match="single work"):
        store.enqueue_work(
            [new_work("a", name="u"), new_work("b", name="u")], policy="update", now=T0
        )
    assert store.find_work() == []
    done = store.enqueue_work([new_work("a", name="u", tags=("x",))], policy="update", now=T0)
    assert (done.action, done.ids) == ("enqueued", ("a",))
    again = store.enqueue_work([new_work("b", name="u", tags=("y",))], policy="update", now=T0)
    a = store.get_work("a")
    assert (again.action, again.ids) == ("updated", ("a",)) and a is not None and a.tags == ("y",)


def test_periodic_keep_looks_at_finished_periods_too(store: Store) -> None:
    periodic = {"periodic": True, "interval": 60.0, "flex": 60.0}
    store.enqueue_work([new_work("p", name="per", **periodic)], policy="keep", now=T0)
    (c,) = store.claim_work(["p"], runner_id="r1", now=T0, lease_seconds=30)
    store.finish_runs([finish("p", c.run_id, state="FAILED")], keep_runs=10)
    kept = store.enqueue_work([new_work("q", name="per", **periodic)], policy="keep", now=T0)
    assert (kept.action, kept.ids) == ("kept", ("p",))
    # a one-time work of the same name ignores the FAILED one
    fresh = store.enqueue_work([new_work("o", name="per")], policy="keep", now=T0)
    assert fresh.action == "enqueued"
    # periodic work is cancellable after a FAILED period
    assert store.cancel_work(ids=["p"], now=T0 + 1) == ["p"]


def test_take_over_says_why_the_run_was_lost(store: Store) -> None:
    store.enqueue_work([new_work("exp"), new_work("dead")], policy=None, now=T0)
    first = store.claim_work(["exp", "dead"], runner_id="r1", now=T0, lease_seconds=10)
    assert [w.id for w in store.due_work(T0 + 5, limit=10, dead_owners=["r1"])] == ["exp", "dead"]
    assert store.due_work(T0 + 5, limit=10, dead_owners=["other"]) == []
    taken = store.claim_work(
        ["exp", "dead"], runner_id="r2", now=T0 + 5, lease_seconds=10, dead_owners=["r1"]
    )
    assert sorted(c.work.id for c in taken) == ["dead", "exp"]
    assert store.claim_work(["exp"], runner_id="r3", now=T0 + 14, lease_seconds=10) == []
    again = store.claim_work(["exp", "dead", "nope"], runner_id="r3", now=T0 + 15, lease_seconds=10)
    assert [c.work.id for c in again] == ["dead", "exp"]  # in run-id order, opened by work id
    assert again[0].run_id < again[1].run_id
    runs = {(r.work_id, r.runner_id): r for r in store.work_runs(["exp", "dead"], limit=100)}
    assert runs[("exp", "r1")].error == LOST_DEAD and runs[("dead", "r1")].error == LOST_DEAD
    assert runs[("exp", "r2")].error == LOST_EXPIRED and runs[("exp", "r2")].outcome == "lost"
    assert runs[("exp", "r1")].ended_at == T0 + 5 and runs[("exp", "r2")].ended_at == T0 + 15
    assert runs[("exp", "r3")].outcome == "running" and runs[("exp", "r3")].attempt == 3
    assert {c.run_id for c in first} == {runs[(w, "r1")].id for w in ("exp", "dead")}


def test_a_late_result_is_noted_on_the_lost_run(store: Store) -> None:
    store.enqueue_work([new_work("w")], policy=None, now=T0)
    (c1,) = store.claim_work(["w"], runner_id="r1", now=T0, lease_seconds=10)
    (c2,) = store.claim_work(["w"], runner_id="r2", now=T0 + 10, lease_seconds=10)
    late = finish("w", c1.run_id, output={"late": 1}, outcome="success", ended_at=T0 + 12)
    assert store.finish_runs([late], keep_runs=10) == []
    lost = {r.id: r for r in store.work_runs(["w"])}[c1.run_id]
    assert lost.outcome == "lost" and lost.ended_at == T0 + 10
    assert lost.error is not None and lost.error.startswith(LOST_EXPIRED)
    assert "'success'" in lost.error and "result discarded" in lost.error
    assert lost.output == {"late": 1}
    w = store.get_work("w")
    assert w is not None and (w.state, w.current_run, w.output) == ("RUNNING", c2.run_id, None)


def test_finishing_many_at_once_reports_every_change(store: Store) -> None:
    store.enqueue_work([new_work("b"), new_work("a"), new_work("c")], policy=None, now=T0)
    store.enqueue_work([new_work("d", after=("a", "b"))], policy=None, now=T0)
    claims = {
        c.work.id: c
        for c in store.claim_work(["a", "b", "c"], runner_id="r1", now=T0, lease_seconds=30)
    }
    changed = store.finish_runs(
        [
            finish("c", claims["c"].run_id, state="ENQUEUED", next_run_at=T0 + 60, run_attempt=1),
            finish("b", claims["b"].run_id, output={"b": 1, "k": "b"}),
            finish("a", claims["a"].run_id, output={"a": 1, "k": "a"}, ended_at=T0 + 3),
        ],
        keep_runs=10,
    )
    assert sorted(changed) == ["a", "b", "c", "d"]
    d = store.get_work("d")
    # outputs merged in the order the prerequisites finished (b at T0 + 2, then a); due
    # from the finish that completed them (finishes are applied in work-id order)
    assert d is not None and d.state == "ENQUEUED" and d.next_run_at == T0 + 2
    assert d.input == {"a": 1, "b": 1, "k": "a"}
    assert store.next_wake_time(T0 + 5, runner_id="r1") == T0 + 60


def test_cancel_choices_are_alternatives(store: Store) -> None:
    store.enqueue_work(
        [new_work("i"), new_work("n", name="nm"), new_work("t", tags=("tg",))], policy=None, now=T0
    )
    store.enqueue_work([new_work("x")], policy=None, now=T0)
    cancelled = store.cancel_work(ids=["i"], name="nm", tag="tg", everything=True, now=T0 + 1)
    assert sorted(cancelled) == ["i", "n", "t"]  # "everything" does not widen a choice
    x = store.get_work("x")
    assert x is not None and x.state == "ENQUEUED"
    i = store.get_work("i")
    assert i is not None and (i.state, i.finished_at) == ("CANCELLED", T0 + 1)


def test_run_now_and_renew_ignore_what_they_cannot_change(store: Store) -> None:
    store.enqueue_work([new_work("e", scheduled_at=T0 + 100), new_work("r")], policy=None, now=T0)
    store.claim_work(["r"], runner_id="r1", now=T0, lease_seconds=10)
    assert store.run_work_now(["r", "e", "nope"], now=T0 + 1) == ["e"]
    e = store.get_work("e")
    assert e is not None and (e.next_run_at, e.run_now) == (T0 + 1, True)
    assert store.renew_leases(["r", "e", "nope"], runner_id="r1", now=T0 + 2, lease_seconds=10) == {
        "r"
    }
    r = store.get_work("r")
    assert r is not None and r.lease_until == T0 + 12
    (claim,) = store.claim_work(["e"], runner_id="r1", now=T0 + 2, lease_seconds=10)
    assert claim.work.run_now is False and claim.work.progress is None


def test_a_claim_that_waited_for_the_database_gets_a_whole_lease(any_store: Store) -> None:
    """The lease runs from when the rows are ours: a claim that waited longer than a
    second (here another connection holds the table) does not commit a lease that has
    already run out, or another runner would take the work over while it runs."""
    import threading
    import time

    from stayfresh.store import PostgresStore, SQLiteStore

    any_store.enqueue_work([new_work("w")], policy=None, now=T0)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        if isinstance(any_store, SQLiteStore):
            import sqlite3

            conn = sqlite3.connect(any_store.path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(10)
            conn.execute("ROLLBACK")
            conn.close()
        else:
            import psycopg

            assert isinstance(any_store, PostgresStore)
            with psycopg.connect(any_store.url, autocommit=True) as conn, conn.transaction():
                conn.execute("LOCK TABLE work IN ACCESS EXCLUSIVE MODE")
                held.set()
                release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threading.Timer(2.0, release.set).start()
    started = time.monotonic()
    (claim,) = any_store.claim_work(["w"], runner_id="r1", now=T0, lease_seconds=1.0)
    waited = time.monotonic() - started
    holder.join(10)
    assert waited >= 1.5
    assert claim.work.lease_until is not None
    assert claim.work.lease_until >= T0 + waited - 0.5 + 1.0  # not T0 + 1: already over


def test_daemon_heartbeats(any_store: Store) -> None:
    any_store.beat("h1:10:0.x:a", host="h1", pid=10, started_at=T0, now=T0 + 5)
    any_store.beat("h2:20:0.x:b", host="h2", pid=20, started_at=T0 + 1, now=T0 + 6)
    any_store.beat("h1:10:0.x:a", host="h1", pid=10, started_at=T0, now=T0 + 65)  # again
    rows = any_store.daemons(seen_since=T0 + 60)
    assert [(r.host, r.pid, r.started_at, r.last_seen_at) for r in rows] == [
        ("h1", 10, T0, T0 + 65)
    ]
    assert [r.id for r in any_store.daemons(seen_since=0.0)] == ["h1:10:0.x:a", "h2:20:0.x:b"]
    any_store.forget_daemon("h1:10:0.x:a")
    assert [r.id for r in any_store.daemons(seen_since=0.0)] == ["h2:20:0.x:b"]
    any_store.beat("h3:30:0.x:c", host="h3", pid=30, started_at=T0, now=T0 + 86_500)
    assert [r.id for r in any_store.daemons(seen_since=0.0)] == ["h3:30:0.x:c"]  # a day old: gone
