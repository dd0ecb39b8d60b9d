"""The notifications part of the store contract, on both backends (SQLite and PostgreSQL).

Beyond ``test_store_contract.py``'s one walk through the window and a single
claim: the reschedule's replace-the-window rules (overdue rows kept, rows of
gone or disabled rules dropped, a failing plan changing nothing), every
branch of the delivery state machine (claimed, missed, retried, unknown,
given up for the grace period or a removed sink), the telemetry counters and
the small reads. Each test goes through the public methods only; ``reopen``
opens a second, independent store on the same database ("another process").
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from stayfresh.store import (
    ClaimOutcome,
    DeliveryRow,
    NewRule,
    PendingRow,
    RuleRow,
    SQLiteStore,
    Store,
)
from store_backends import Opener

T0 = 1_800_000_000.0


def one_time(title: str = "t", *, at: float = T0, enabled: bool = True) -> NewRule:
    return NewRule(title=title, body=f"{title} body", at=at, rrule=None, dtstart=None, tz="UTC",
                   enabled=enabled)  # fmt: skip


def rows(*occurrences: tuple[int, float]) -> Callable[[Sequence[RuleRow]], list[PendingRow]]:
    """A plan that ignores the rules and schedules ``(rule_id, due_at)`` pairs."""
    return lambda _rules: [
        PendingRow(rule_id=r, due_at=d, title=f"r{r}", body="b") for r, d in occurrences
    ]


def pending(store: Store) -> list[tuple[int, float]]:
    return [(p.rule_id, p.due_at) for p in store.list_pending_notifications()]


def key(d: DeliveryRow) -> tuple[int, float, int, str]:
    return (d.rule_id, d.due_at, d.sink_id, d.state)


# -- rules -----------------------------------------------------------------------------


def test_rules_round_trip_and_each_change_bumps_the_version(any_store: Store) -> None:
    recurring = NewRule(title="r", body="", at=None, rrule="FREQ=DAILY",
                        dtstart="2026-01-01T08:00:00", tz="Europe/Berlin")  # fmt: skip
    a = any_store.add_notify_rule(recurring, now=T0)
    b = any_store.add_notify_rule(one_time("off", at=T0 + 5, enabled=False), now=T0 + 1)
    assert (a.rrule, a.dtstart, a.tz, a.at, a.enabled, a.created_at) == (
        "FREQ=DAILY", "2026-01-01T08:00:00", "Europe/Berlin", None, True, T0,
    )  # fmt: skip
    assert (b.at, b.enabled, b.body) == (T0 + 5, False, "off body")
    assert any_store.get_notify_rule(a.id) == a and any_store.get_notify_rule(b.id) == b
    assert any_store.get_notify_rule(b.id + 100) is None
    assert any_store.list_notify_rules() == [a, b]
    assert any_store.notify_freshness().rules_version == 2
    assert any_store.delete_notify_rule(a.id)
    assert any_store.notify_freshness().rules_version == 3
    assert not any_store.delete_notify_rule(a.id)
    assert any_store.notify_freshness().rules_version == 3
    fresh = any_store.notify_freshness()
    assert (fresh.has_rules, fresh.last_reschedule_at) == (False, None)  # only a disabled rule


def test_a_rule_is_updated_in_place_and_the_window_goes_stale(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("old", at=T0 + 5), now=T0)
    version = any_store.notify_freshness().rules_version
    changed = NewRule(title="new", body="nb", at=None, rrule="FREQ=HOURLY",
                      dtstart="2026-01-01T08:00:00", tz="UTC", enabled=False)  # fmt: skip
    b = any_store.update_notify_rule(a.id, changed)
    assert b is not None and (b.id, b.created_at) == (a.id, a.created_at)
    assert (b.title, b.body, b.at, b.rrule, b.dtstart, b.tz, b.enabled) == (
        "new", "nb", None, "FREQ=HOURLY", "2026-01-01T08:00:00", "UTC", False,
    )  # fmt: skip
    assert any_store.get_notify_rule(a.id) == b
    assert any_store.notify_freshness().rules_version == version + 1
    assert any_store.update_notify_rule(a.id + 100, changed) is None
    assert any_store.notify_freshness().rules_version == version + 1  # nothing changed


def test_a_snooze_is_kept_with_the_rule_and_makes_the_window_stale(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("nap", at=T0 + 5), now=T0)
    version = any_store.notify_freshness().rules_version
    snoozed = any_store.snooze_notify_rule(a.id, T0 + 3600)
    assert snoozed is not None and snoozed.snoozed_until == T0 + 3600
    assert any_store.get_notify_rule(a.id) == snoozed
    assert any_store.list_notify_rules() == [snoozed]
    assert any_store.notify_freshness().rules_version == version + 1
    cleared = any_store.snooze_notify_rule(a.id, None)
    assert cleared is not None and cleared.snoozed_until is None
    assert any_store.snooze_notify_rule(a.id + 100, T0) is None


# -- the window ------------------------------------------------------------------------


def test_reschedule_replaces_the_future_keeps_the_overdue_and_drops_dead_rules(
    any_store: Store,
) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    b = any_store.add_notify_rule(one_time("b"), now=T0).id
    off = any_store.add_notify_rule(one_time("off", enabled=False), now=T0).id
    seen: list[list[int]] = []

    def plan(rules: Sequence[RuleRow]) -> list[PendingRow]:
        seen.append([r.id for r in rules])
        return rows((a, T0 + 10), (a, T0 + 20), (b, T0 + 30), (off, T0 + 40))(rules)

    first = any_store.reschedule_notifications(plan, now=T0)
    assert seen == [[a, b]]  # enabled rules only, by id
    assert (first.rules, first.cancelled, first.scheduled, first.overdue_kept,
            first.rules_version) == (2, 0, 4, 0, 3)  # fmt: skip
    assert pending(any_store) == [(a, T0 + 10), (a, T0 + 20), (b, T0 + 30), (off, T0 + 40)]
    assert (
        any_store.list_pending_notifications(limit=2) == any_store.list_pending_notifications()[:2]
    )

    # later: what is due from now on is replaced; the overdue (a, T0+10) stays for the
    # deliverer; the disabled rule's row goes even though it is in the future
    second = any_store.reschedule_notifications(rows((a, T0 + 25)), now=T0 + 15)
    assert (second.cancelled, second.scheduled, second.overdue_kept) == (3, 1, 1)
    assert pending(any_store) == [(a, T0 + 10), (a, T0 + 25)]
    fresh = any_store.notify_freshness()
    assert (fresh.last_reschedule_at, fresh.window_rules_version, fresh.has_rules) == (
        T0 + 15, 3, True,
    )  # fmt: skip

    # an overdue row of a disabled (or vanished) rule is dropped too
    any_store.reschedule_notifications(rows((off, T0 + 30)), now=T0 + 30)
    third = any_store.reschedule_notifications(rows(), now=T0 + 31)
    assert (third.cancelled, third.overdue_kept) == (1, 2)
    assert pending(any_store) == [(a, T0 + 10), (a, T0 + 25)]

    # deleting a rule drops its pending rows at once
    assert any_store.delete_notify_rule(a)
    assert pending(any_store) == []


def test_a_failing_plan_changes_nothing(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0)
    before = (pending(any_store), any_store.notify_freshness(), any_store.fresh_telemetry())

    def boom(_rules: Sequence[RuleRow]) -> list[PendingRow]:
        raise RuntimeError("plan failed")

    with pytest.raises(RuntimeError, match="plan failed"):
        any_store.reschedule_notifications(boom, now=T0 + 1)
    with pytest.raises(ValueError, match="at or after now"):
        any_store.reschedule_notifications(rows((a, T0 + 1.5)), now=T0 + 2)
    assert (
        pending(any_store),
        any_store.notify_freshness(),
        any_store.fresh_telemetry(),
    ) == before


def test_an_empty_plan_and_the_next_time(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    result = any_store.reschedule_notifications(rows(), now=T0)
    assert (result.rules, result.scheduled, result.cancelled) == (1, 0, 0)
    assert any_store.next_notification_time() is None
    any_store.reschedule_notifications(rows((a, T0 + 7), (a, T0 + 3)), now=T0)
    assert any_store.next_notification_time() == T0 + 3


# -- telemetry -------------------------------------------------------------------------


# -- sinks -----------------------------------------------------------------------------


def test_sinks_round_trip(any_store: Store) -> None:
    a = any_store.add_notify_sink("apprise", "json://x/y", at_least_once=True, now=T0)
    b = any_store.add_notify_sink("log", None, at_least_once=False, now=T0 + 1)
    assert (a.kind, a.target, a.at_least_once, a.created_at) == ("apprise", "json://x/y", True, T0)
    assert (b.target, b.at_least_once) == (None, False)
    assert any_store.list_notify_sinks() == [a, b]
    assert any_store.delete_notify_sink(a.id) and not any_store.delete_notify_sink(a.id)
    assert any_store.list_notify_sinks() == [b]


# -- delivery --------------------------------------------------------------------------


def test_claim_delivers_on_time_records_missed_and_empties_the_window(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    b = any_store.add_notify_rule(one_time("b"), now=T0).id
    any_store.reschedule_notifications(
        rows((b, T0 - 1000), (a, T0 + 10), (b, T0 + 10), (a, T0 + 500)), now=T0 - 2000,
    )  # fmt: skip
    out = any_store.claim_notifications(now=T0 + 11, grace=60, lease=30, sinks={2: True, 1: False})
    # by due time, then rule, then the order of the sinks given
    assert [key(c) for c in out.claims] == [
        (a, T0 + 10, 2, "sending"), (a, T0 + 10, 1, "sending"),
        (b, T0 + 10, 2, "sending"), (b, T0 + 10, 1, "sending"),
    ]  # fmt: skip
    claim = out.claims[0]
    assert (claim.attempts, claim.claimed_until, claim.next_attempt_at, claim.updated_at,
            claim.title, claim.body, claim.error) == (1, T0 + 41, None, T0 + 11, f"r{a}", "b", None)  # fmt: skip
    assert [key(m) for m in out.missed] == [
        (b, T0 - 1000, 2, "missed"),
        (b, T0 - 1000, 1, "missed"),
    ]
    assert (out.missed[0].attempts, out.missed[0].claimed_until) == (0, None)
    assert out.unknown == [] and out.gave_up == []
    assert pending(any_store) == [(a, T0 + 500)]
    assert any_store.next_notification_time() == T0 + 41  # the claims' expiry comes first
    for c in out.claims:
        assert any_store.finish_notification(c, ok=True, at=T0 + 12)
    assert any_store.next_notification_time() == T0 + 500
    assert [d.state for d in any_store.list_notification_deliveries(limit=2)] == ["sent"] * 2
    newest = any_store.list_notification_deliveries()
    assert [(d.updated_at, d.due_at) for d in newest] == [(T0 + 12, T0 + 10)] * 4 + [
        (T0 + 11, T0 - 1000)
    ] * 2


def test_the_primary_key_decides_a_second_claim_of_the_same_occurrence(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0)
    (claim,) = any_store.claim_notifications(
        now=T0 + 10, grace=60, lease=30, sinks={1: False}
    ).claims
    # the same occurrence scheduled again (a reschedule with an earlier clock)
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0 + 5)
    again = any_store.claim_notifications(
        now=T0 + 10, grace=60, lease=30, sinks={1: False, 2: False}
    )
    assert [key(c) for c in again.claims] == [(a, T0 + 10, 2, "sending")]  # only the new sink
    assert pending(any_store) == []
    assert any_store.finish_notification(claim, ok=True, at=T0 + 11)


def test_failed_sends_are_retried_then_given_up_after_the_grace_period(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0)
    (claim,) = any_store.claim_notifications(
        now=T0 + 10, grace=60, lease=30, sinks={1: True}
    ).claims
    assert any_store.finish_notification(
        claim, ok=False, at=T0 + 11, error="boom", retry_at=T0 + 20
    )
    (failed,) = any_store.list_notification_deliveries()
    assert (failed.state, failed.next_attempt_at, failed.claimed_until, failed.error,
            failed.attempts) == ("failed", T0 + 20, None, "boom", 1)  # fmt: skip
    assert any_store.next_notification_time() == T0 + 20
    early = any_store.claim_notifications(now=T0 + 19, grace=60, lease=30, sinks={1: True})
    assert early.claims == []
    (retry,) = any_store.claim_notifications(
        now=T0 + 20, grace=60, lease=30, sinks={1: True}
    ).claims
    assert (retry.state, retry.attempts, retry.claimed_until, retry.next_attempt_at,
            retry.updated_at, retry.error) == ("sending", 2, T0 + 50, None, T0 + 20, "boom")  # fmt: skip
    assert not any_store.finish_notification(claim, ok=True, at=T0 + 21)  # an old attempt
    # the retry's sender dies; at-least-once: claimed again within grace …
    (third,) = any_store.claim_notifications(
        now=T0 + 51, grace=60, lease=30, sinks={1: True}
    ).claims
    assert (third.attempts, third.claimed_until) == (3, T0 + 81)
    # … and given up after it, the reason appended to the last error
    out = any_store.claim_notifications(now=T0 + 82, grace=60, lease=30, sinks={1: True})
    assert out.claims == [] and [key(g) for g in out.gave_up] == [(a, T0 + 10, 1, "failed")]
    gave_up = out.gave_up[0]
    assert (gave_up.error, gave_up.claimed_until, gave_up.next_attempt_at, gave_up.attempts,
            gave_up.updated_at) == ("boom; grace period over", None, None, 3, T0 + 82)  # fmt: skip
    assert any_store.next_notification_time() is None
    assert not any_store.finish_notification(third, ok=True, at=T0 + 83)


def test_an_interrupted_at_most_once_send_is_unknown_and_never_resent(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0)
    first = any_store.claim_notifications(
        now=T0 + 10, grace=600, lease=30, sinks={1: False, 2: True}
    )
    assert len(first.claims) == 2  # both senders die
    assert any_store.claim_notifications(now=T0 + 40, grace=600, lease=30,
                                         sinks={1: False, 2: True}).claims == []  # fmt: skip
    out = any_store.claim_notifications(now=T0 + 41, grace=600, lease=30, sinks={1: False, 2: True})
    assert [key(u) for u in out.unknown] == [(a, T0 + 10, 1, "unknown")]
    assert [key(c) for c in out.claims] == [(a, T0 + 10, 2, "sending")]
    unknown = out.unknown[0]
    assert (unknown.claimed_until, unknown.updated_at, unknown.attempts) == (None, T0 + 41, 1)
    assert unknown.error == "interrupted while sending; not resent (at-most-once sink)"
    assert out.claims[0].attempts == 2
    later = any_store.claim_notifications(now=T0 + 500, grace=600, lease=30, sinks={1: False})
    assert later.claims == [] and later.unknown == []  # unknown is final
    assert [key(g) for g in later.gave_up] == [(a, T0 + 10, 2, "failed")]  # sink 2 gone
    assert later.gave_up[0].error == "the sink was removed"


def test_rows_of_a_removed_sink_are_given_up(any_store: Store) -> None:
    a = any_store.add_notify_rule(one_time("a"), now=T0).id
    any_store.reschedule_notifications(rows((a, T0 + 10)), now=T0)
    (claim,) = any_store.claim_notifications(
        now=T0 + 10, grace=60, lease=30, sinks={1: True}
    ).claims
    assert any_store.finish_notification(claim, ok=False, at=T0 + 10, retry_at=T0 + 15)
    assert any_store.claim_notifications(now=T0 + 14, grace=60, lease=30, sinks={}).gave_up == []
    out = any_store.claim_notifications(now=T0 + 15, grace=60, lease=30, sinks={})
    assert [(g.state, g.error) for g in out.gave_up] == [("failed", "the sink was removed")]
    nothing = ClaimOutcome(claims=[], missed=[], unknown=[], gave_up=[])
    assert (
        any_store.claim_notifications(now=T0 + 16, grace=60, lease=30, sinks={1: True}) == nothing
    )


def test_concurrent_claimers_claim_each_delivery_once(any_store: Store, reopen: Opener) -> None:
    ids = [any_store.add_notify_rule(one_time(f"r{i}"), now=T0).id for i in range(8)]
    any_store.reschedule_notifications(
        rows(*[(r, T0 + 10 + i % 3) for i, r in enumerate(ids)]), now=T0
    )
    stores = [reopen() for _ in range(4)]
    sinks = {1: False, 2: True}
    with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
        outcomes = list(
            pool.map(
                lambda s: s.claim_notifications(now=T0 + 20, grace=60, lease=30, sinks=sinks),
                stores,
            )
        )
    claimed = [(c.rule_id, c.due_at, c.sink_id) for o in outcomes for c in o.claims]
    assert len(claimed) == len(set(claimed)) == len(ids) * len(sinks)
    assert pending(any_store) == []


def test_the_scheduling_lock_is_one_object_per_store(any_store: Store) -> None:
    lock = any_store.lock("notify", "window")
    assert any_store.lock("notify", "window") is lock
    assert lock.acquire(0)
    lock.release()


def test_the_sqlite_scheduling_lock_file(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db")
    lock = store.lock("notify", "window")
    assert lock.acquire(0)
    try:
        assert [f.suffix for f in (tmp_path / "n.db.locks").iterdir()] == [".lock"]
    finally:
        lock.release()
        store.close()
