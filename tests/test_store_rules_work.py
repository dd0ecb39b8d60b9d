"""The work engine's store rules, as pure functions: no database.

Each table row is one decision the store takes from rows and ``now``; the SQL
that applies them is checked by the contract suites on both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from stayfresh.store import NewWork, RunFinish
from stayfresh.store._work import (
    LOST_DEAD,
    LOST_EXPIRED,
    UniqueDecision,
    cancel_selects_all,
    earliest,
    finish_params,
    finish_wakes,
    lost_runs,
    merge_outputs,
    new_work_params,
    policy_states,
    released_input,
    run_row,
    state_after,
    unique_decision,
    work_row,
)

T0 = 1_800_000_000.0


def new_work(**kw: Any) -> NewWork:
    fields: dict[str, Any] = dict(
        id="w", name=None, worker="m:f", input={"a": 1}, periodic=False, interval=None,
        flex=None, constraints={"z": 1, "b": True}, backoff_policy="exponential",
        backoff_delay=30.0, timeout=60.0, tags=(), scheduled_at=T0,
    )  # fmt: skip
    fields.update(kw)
    return NewWork(**fields)


def finish(**kw: Any) -> RunFinish:
    fields: dict[str, Any] = dict(
        work_id="w", run_id=7, runner_id="r1", ended_at=T0 + 2, outcome="success",
        output=None, error=None, state="SUCCEEDED", scheduled_at=T0, next_run_at=T0,
        run_attempt=1,
    )  # fmt: skip
    fields.update(kw)
    return RunFinish(**fields)


@pytest.mark.parametrize(
    ("periodic", "states"),
    [
        (False, ("ENQUEUED", "RUNNING", "BLOCKED")),
        (True, ("ENQUEUED", "RUNNING", "BLOCKED", "SUCCEEDED", "FAILED")),
    ],
)
def test_policy_states(periodic: bool, states: tuple[str, ...]) -> None:
    assert policy_states(periodic) == states


@pytest.mark.parametrize(
    ("policy", "existing", "decision"),
    [
        (None, ["x"], UniqueDecision("enqueued")),
        ("keep", [], UniqueDecision("enqueued")),
        ("replace", [], UniqueDecision("enqueued")),
        ("keep", ["new", "old"], UniqueDecision("kept", kept=("new", "old"))),
        ("update", ["new", "old"], UniqueDecision("updated", update="new")),
        ("replace", ["new", "old"], UniqueDecision("replaced", cancel=("new", "old"))),
        ("cancel_and_reenqueue", ["x"], UniqueDecision("replaced", cancel=("x",))),
        ("append", ["new", "old"], UniqueDecision("appended", after=("new", "old"))),
    ],
)
def test_unique_decision(policy: Any, existing: list[str], decision: UniqueDecision) -> None:
    assert unique_decision(policy, existing) == decision


def test_unique_decision_refuses_an_unknown_policy() -> None:
    with pytest.raises(ValueError, match="unknown"):
        unique_decision("merge", ["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("states", "state"),
    [
        ([], "ENQUEUED"),
        (["SUCCEEDED", "SUCCEEDED"], "ENQUEUED"),
        (["SUCCEEDED", "RUNNING"], "BLOCKED"),
        (["BLOCKED"], "BLOCKED"),
        (["ENQUEUED", "CANCELLED"], "CANCELLED"),
        (["CANCELLED", "FAILED", "RUNNING"], "FAILED"),
        (["SUCCEEDED", "FAILED"], "FAILED"),
    ],
)
def test_state_after_prerequisites(states: list[str], state: str) -> None:
    assert state_after(states) == state


@pytest.mark.parametrize(
    ("input", "outputs", "merged"),
    [
        ({"a": 1}, [], {"a": 1}),
        ({"a": 1}, [None, '{"b":2}'], {"a": 1, "b": 2}),
        ({"a": 1}, ['{"a":2}', '{"a":3}'], {"a": 3}),  # the later output wins
    ],
)
def test_merge_outputs(input: dict[str, Any], outputs: list[str | None], merged: Any) -> None:
    assert merge_outputs(input, outputs) == merged


@pytest.mark.parametrize(
    ("after", "prereqs", "now", "expected"),
    [
        ((), [], T0 + 5, {"state": "ENQUEUED", "next_run_at": T0, "input": '{"a":1}'}),
        (
            ("p",),
            [{"state": "SUCCEEDED", "output": '{"a":9,"o":1}'}],
            T0 + 5,
            {"state": "ENQUEUED", "next_run_at": T0 + 5, "input": '{"a":9,"o":1}'},
        ),
        (
            ("p",),
            [{"state": "RUNNING", "output": '{"o":1}'}],
            T0 - 5,
            {"state": "BLOCKED", "next_run_at": T0, "input": '{"a":1}', "finished_at": None},
        ),
        (
            ("p", "q"),
            [{"state": "SUCCEEDED", "output": None}, {"state": "FAILED", "output": None}],
            T0 + 5,
            {"state": "FAILED", "input": '{"a":1}', "finished_at": T0 + 5},
        ),
    ],
)
def test_new_work_params(
    after: tuple[str, ...], prereqs: list[dict[str, Any]], now: float, expected: dict[str, Any]
) -> None:
    params = new_work_params(new_work(after=after), after, prereqs, now)
    assert {k: params[k] for k in expected} == expected
    assert params["constraints"] == '{"b":true,"z":1}' and params["now"] == now


@pytest.mark.parametrize(
    ("prereqs", "expected"),
    [
        ([{"state": "SUCCEEDED", "output": '{"b":2}'}], '{"a":1,"b":2}'),
        (
            [{"state": "SUCCEEDED", "output": '{"a":2}'}, {"state": "SUCCEEDED", "output": None}],
            '{"a":2}',
        ),
        ([{"state": "SUCCEEDED", "output": None}, {"state": "RUNNING", "output": None}], None),
    ],
)
def test_released_input(prereqs: list[dict[str, Any]], expected: str | None) -> None:
    assert released_input('{"a":1}', prereqs) == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # PostgreSQL claimed it all in one statement: nothing left to close
        ([{"id": "a", "run_id": 3, "current_run": None, "lease_until": None}], []),
        # an ENQUEUED candidate has no run to close
        ([{"id": "a", "run_id": None, "current_run": None, "lease_until": None}], []),
        (
            [{"id": "a", "run_id": None, "current_run": 4, "lease_until": T0}],
            [{"run_id": 4, "now": T0, "error": LOST_EXPIRED}],
        ),
        (
            [{"id": "a", "run_id": None, "current_run": 4, "lease_until": T0 + 1}],
            [{"run_id": 4, "now": T0, "error": LOST_DEAD}],
        ),
    ],
)
def test_lost_runs(rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert lost_runs(rows, T0) == expected


@pytest.mark.parametrize(
    ("state", "output", "finished_at", "stored_output"),
    [
        ("SUCCEEDED", {"b": 1, "a": 2}, T0 + 2, '{"a":2,"b":1}'),
        ("CANCELLED", None, T0 + 2, None),
        ("ENQUEUED", {}, None, "{}"),
        ("BLOCKED", None, None, None),
    ],
)
def test_finish_params(
    state: str, output: dict[str, Any] | None, finished_at: float | None, stored_output: str | None
) -> None:
    p = finish_params(finish(state=state, output=output))
    assert (p["finished_at"], p["output"], p["state"]) == (finished_at, stored_output, state)


@pytest.mark.parametrize(
    ("state", "unblocked", "wakes"),
    [
        ("ENQUEUED", [], True),
        ("SUCCEEDED", [], False),
        ("SUCCEEDED", ["d"], True),
        ("FAILED", [], False),
        ("CANCELLED", [], False),
    ],
)
def test_finish_wakes(state: str, unblocked: list[str], wakes: bool) -> None:
    assert finish_wakes(state, unblocked) is wakes


@pytest.mark.parametrize(
    ("ids", "name", "tag", "everything", "answer"),
    [
        ((), None, None, False, None),
        ((), None, None, True, True),
        (("a",), None, None, True, False),  # chosen works: "everything" does not widen it
        ((), "n", None, False, False),
        ((), None, "t", True, False),
        ((), "", None, False, False),  # an empty name is still a name
    ],
)
def test_cancel_selects_all(
    ids: tuple[str, ...], name: str | None, tag: str | None, everything: bool, answer: Any
) -> None:
    assert cancel_selects_all(ids, name, tag, everything) is answer


@pytest.mark.parametrize(
    ("times", "answer"),
    [((None, None), None), ((5.0, None), 5.0), ((None, 3), 3.0), ((7.0, 2.0), 2.0)],
)
def test_earliest(times: tuple[float | None, ...], answer: float | None) -> None:
    assert earliest(*times) == answer


def _stored(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(
        id="w", name=None, worker="m:f", input="{}", periodic=0, interval=None, flex=None,
        constraints="{}", backoff_policy="fixed", backoff_delay=1, timeout=2, state="ENQUEUED",
        run_attempt=0, scheduled_at=T0, next_run_at=T0, run_now=1, lease_owner=None,
        lease_until=None, current_run=None, output=None, progress=None, last_outcome=None,
        last_error=None, last_run_at=None, created_at=T0, updated_at=T0, finished_at=None,
    )  # fmt: skip
    row.update(kw)
    return row


@pytest.mark.parametrize(
    ("tags", "deps", "want_tags", "want_deps"),
    [
        (["b", "a"], ["q", "p"], ("b", "a"), ("q", "p")),  # arrays: the query's order
        ('["b","a"]', '["q","p"]', ("a", "b"), ("p", "q")),  # JSON text: sorted
        ("[]", [], (), ()),
    ],
)
def test_work_row_reads_both_list_spellings(
    tags: Any, deps: Any, want_tags: tuple[str, ...], want_deps: tuple[str, ...]
) -> None:
    w = work_row(_stored(tags=tags, deps=deps))
    assert (w.tags, w.prerequisites, w.run_now, w.periodic) == (want_tags, want_deps, True, False)


def test_run_row() -> None:
    r = run_row(
        dict(id=3, work_id="w", attempt=2, runner_id="r", scheduled_at=T0, started_at=T0 + 1,
             ended_at=None, outcome="running", output='{"x":1}', error=None)
    )  # fmt: skip
    assert (r.id, r.attempt, r.output, r.ended_at) == (3, 2, {"x": 1}, None)
