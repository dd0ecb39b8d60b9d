"""The notification store's decisions, without a database (``stayfresh.store._notify``).

Which state a due occurrence's delivery starts in, what a claim does with a
stale delivery, how a finished send and a layer's run are recorded, what a
reschedule plan may hold. The same functions run inside both backends'
transactions; ``test_store_contract_notify.py`` checks them there.
"""

from __future__ import annotations

import dataclasses

import pytest

from stayfresh.store import ClaimOutcome, DeliveryRow, PendingRow
from stayfresh.store._notify import (
    GRACE_OVER,
    NOT_RESENT,
    SINK_REMOVED,
    Bucket,
    append_error,
    check_plan,
    claim_outcome,
    finished_state,
    new_deliveries,
    settle_stale,
    window_end,
)
from stayfresh.store._rows import DeliveryState

NOW = 1_000_000.0
GRACE = 3600.0
LEASE = 120.0


def pending(rule_id: int, due_at: float) -> PendingRow:
    return PendingRow(rule_id=rule_id, due_at=due_at, title=f"t{rule_id}", body="b")


def delivery(
    state: DeliveryState = "sending",
    *,
    sink_id: int = 1,
    due_at: float = NOW - 60,
    attempts: int = 1,
    error: str | None = None,
) -> DeliveryRow:
    return DeliveryRow(
        rule_id=7, due_at=due_at, sink_id=sink_id, title="t", body="b", state=state,
        attempts=attempts, claimed_until=NOW - 1 if state == "sending" else None,
        next_attempt_at=NOW - 1 if state == "failed" else None, updated_at=NOW - 500, error=error,
    )  # fmt: skip


# -- a reschedule plan -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dues", "ok"),
    [
        ([], True),
        ([NOW, NOW + 1], True),  # due exactly now is allowed
        ([NOW + 5, NOW - 0.001], False),
        ([NOW - 3600], False),
    ],
)
def test_a_plan_holds_only_occurrences_due_at_or_after_now(dues: list[float], ok: bool) -> None:
    rows = [pending(1, d) for d in dues]
    if ok:
        check_plan(rows, NOW)
    else:
        with pytest.raises(ValueError, match="at or after now"):
            check_plan(rows, NOW)


@pytest.mark.parametrize(
    ("dues", "end"), [([], None), ([NOW + 3], NOW + 3), ([NOW + 9, NOW + 2, NOW + 5], NOW + 9)]
)
def test_the_window_ends_at_its_last_occurrence(dues: list[float], end: float | None) -> None:
    assert window_end([pending(i, d) for i, d in enumerate(dues)]) == end


# -- new deliveries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due_at", "state", "attempts", "claimed_until"),
    [
        (NOW, "sending", 1, NOW + LEASE),  # on time
        (NOW - GRACE, "sending", 1, NOW + LEASE),  # late, exactly at the end of the grace period
        (NOW - GRACE - 0.5, "missed", 0, None),  # more than grace ago
        (NOW - 10 * GRACE, "missed", 0, None),
    ],
)
def test_a_due_occurrence_is_claimed_or_missed(
    due_at: float, state: str, attempts: int, claimed_until: float | None
) -> None:
    (row,) = new_deliveries([pending(3, due_at)], [9], now=NOW, grace=GRACE, lease=LEASE)
    assert (row.rule_id, row.due_at, row.sink_id, row.title, row.body) == (3, due_at, 9, "t3", "b")
    assert (row.state, row.attempts, row.claimed_until) == (state, attempts, claimed_until)
    assert (row.next_attempt_at, row.updated_at, row.error) == (None, NOW, None)


def test_new_deliveries_go_earliest_first_then_by_rule_then_in_the_sinks_order() -> None:
    due = [pending(2, NOW - 5), pending(1, NOW - 5), pending(0, NOW - 1)]
    rows = new_deliveries(due, {5: True, 3: False}, now=NOW, grace=GRACE, lease=LEASE)
    assert [(r.rule_id, r.sink_id) for r in rows] == [
        (1, 5),
        (1, 3),
        (2, 5),
        (2, 3),
        (0, 5),
        (0, 3),
    ]
    assert new_deliveries(due, [], now=NOW, grace=GRACE, lease=LEASE) == []


# -- stale deliveries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "sinks", "bucket", "state", "error"),
    [
        # the sink is gone: given up, whatever else holds
        (delivery("sending"), {2: True}, "gave_up", "failed", SINK_REMOVED),
        (delivery("failed", error="boom"), {}, "gave_up", "failed", f"boom; {SINK_REMOVED}"),
        # an interrupted at-most-once send: unknown, even within grace
        (delivery("sending"), {1: False}, "unknown", "unknown", NOT_RESENT),
        (delivery("sending", due_at=NOW - 2 * GRACE), {1: False}, "unknown", "unknown", NOT_RESENT),
        # a failed at-most-once send was never in doubt: retried within grace
        (delivery("failed", error="boom"), {1: False}, "claims", "sending", "boom"),
        # at-least-once: claimed again within grace, given up after it
        (delivery("sending"), {1: True}, "claims", "sending", None),
        (delivery("sending", due_at=NOW - GRACE), {1: True}, "claims", "sending", None),
        (delivery("sending", due_at=NOW - GRACE - 1), {1: True}, "gave_up", "failed", GRACE_OVER),
        (delivery("failed", due_at=NOW - GRACE - 1, error="x"), {1: True}, "gave_up", "failed",
         f"x; {GRACE_OVER}"),
    ],
)  # fmt: skip
def test_what_a_claim_does_with_a_stale_delivery(
    row: DeliveryRow, sinks: dict[int, bool], bucket: Bucket, state: str, error: str | None
) -> None:
    got_bucket, got = settle_stale(row, sinks, now=NOW, grace=GRACE, lease=LEASE)
    assert (got_bucket, got.state, got.error, got.updated_at) == (bucket, state, error, NOW)
    assert (got.rule_id, got.due_at, got.sink_id, got.title) == (
        row.rule_id, row.due_at, row.sink_id, row.title,
    )  # fmt: skip
    if bucket == "claims":
        assert (got.attempts, got.claimed_until, got.next_attempt_at) == (
            row.attempts + 1, NOW + LEASE, None,
        )  # fmt: skip
    else:
        assert (got.attempts, got.claimed_until) == (row.attempts, None)
    if bucket == "gave_up":
        assert got.next_attempt_at is None


@pytest.mark.parametrize(
    ("error", "why", "expected"),
    [(None, "gone", "gone"), ("boom", "gone", "boom; gone"), ("", "gone", "; gone")],
)
def test_giving_up_appends_the_reason_to_the_last_error(
    error: str | None, why: str, expected: str
) -> None:
    assert append_error(error, why) == expected


def test_the_claim_report_keeps_the_order_and_each_rows_last_state() -> None:
    a = delivery("sending", sink_id=1)
    b = delivery("missed", sink_id=2)
    c = delivery("unknown", sink_id=3)
    a_later = dataclasses.replace(a, attempts=2)  # the same row, touched again
    report = claim_outcome([("claims", a), ("missed", b), ("unknown", c), ("claims", a_later)])
    assert report == ClaimOutcome(claims=[a_later, a_later], missed=[b], unknown=[c], gave_up=[])
    assert claim_outcome([]) == ClaimOutcome(claims=[], missed=[], unknown=[], gave_up=[])


# -- finishing and telemetry ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ok", "retry_at", "expected"),
    [
        (True, None, ("sent", None)),
        (True, NOW + 30, ("sent", None)),  # a retry time means nothing for a success
        (False, NOW + 30, ("failed", NOW + 30)),
        (False, None, ("failed", None)),  # past the grace period: no retry
    ],
)
def test_a_finished_send(
    ok: bool, retry_at: float | None, expected: tuple[str, float | None]
) -> None:
    assert finished_state(ok, retry_at) == expected
