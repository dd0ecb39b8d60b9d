"""The common shape's part of the store contract, on both backends: lock, telemetry, states.

One lock per (kind, key) in both modes (``acquire(0)`` skips, a timeout
waits), one telemetry row per (kind, key, layer) counting every outcome with
its latency histogram, and a versioned JSON state written by compare-and-swap.
"""

from __future__ import annotations

import pytest

from stayfresh.store import LATENCY_BUCKETS_MS, Store, TelemetryRow, TokenRow
from store_backends import Opener

T0 = 1_700_000_000.0


def row(store: Store, kind: str, key: str, layer: str) -> TelemetryRow:
    (found,) = [r for r in store.fresh_telemetry(kind, key) if r.layer == layer]
    return found


def test_every_outcome_is_counted_per_kind_key_and_layer(any_store: Store) -> None:
    any_store.record_fresh("notify", "window", "use", "failure", at=T0 + 1, error="disk full")
    any_store.record_fresh("notify", "window", "use", "skip", at=T0 + 2)
    any_store.record_fresh("notify", "window", "use", "success", at=T0 + 3, latency_ms=7.0)
    any_store.record_fresh("notify", "window", "background", "skip", at=T0 + 4)
    any_store.record_fresh("token", "a", "use", "failure", at=T0 + 5, failure="transient")
    any_store.record_fresh("token", "a", "use", "failure", at=T0 + 6, failure="person")
    fg = row(any_store, "notify", "window", "use")
    assert (fg.executions, fg.successes, fg.failures, fg.skips) == (3, 1, 1, 1)
    assert (fg.last_success_at, fg.last_failure_at, fg.last_skip_at) == (T0 + 3, T0 + 1, T0 + 2)
    assert fg.last_error == "disk full"  # a later success or skip keeps it
    bg = row(any_store, "notify", "window", "background")
    assert (bg.executions, bg.skips, bg.successes, bg.last_success_at) == (1, 1, 0, None)
    token = row(any_store, "token", "a", "use")
    assert (token.failures, token.transient_failures, token.person_failures) == (2, 1, 1)
    assert token.last_error is None  # the last failure had no message
    assert [(r.kind, r.key, r.layer) for r in any_store.fresh_telemetry()] == [
        ("notify", "window", "background"), ("notify", "window", "use"), ("token", "a", "use"),
    ]  # fmt: skip
    assert any_store.fresh_telemetry("token", "b") == []


def test_latency_is_a_cumulative_histogram(any_store: Store) -> None:
    for ms in (1.0, 20.0, 20.0, 400.0, 60_000.0):
        any_store.record_fresh("http", "u", "use", "success", at=T0, latency_ms=ms)
    any_store.record_fresh("http", "u", "use", "success", at=T0)  # not measured
    r = row(any_store, "http", "u", "use")
    assert (r.successes, r.latency_count) == (6, 5)
    assert r.latency_sum_ms == pytest.approx(60_441.0)
    assert dict(zip(LATENCY_BUCKETS_MS, r.buckets, strict=True)) == {
        10.0: 1, 25.0: 3, 50.0: 3, 100.0: 3, 250.0: 3, 500.0: 4, 1000.0: 4, 2500.0: 4,
        5000.0: 4, 10000.0: 4,
    }  # fmt: skip
    assert (r.latency_ms(0.5), r.latency_ms(0.8), r.latency_ms(0.95)) == (25.0, 500.0, float("inf"))
    assert row(any_store, "http", "u", "use").latency_ms(0.5) == 25.0
    any_store.record_fresh("http", "v", "use", "skip", at=T0)
    assert row(any_store, "http", "v", "use").latency_ms(0.5) is None


def test_total_sums_layers(any_store: Store) -> None:
    any_store.record_fresh("token", "a", "use", "success", at=T0 + 1, latency_ms=5.0)
    any_store.record_fresh("token", "a", "background", "success", at=T0 + 2, latency_ms=30.0)
    any_store.record_fresh("token", "a", "background", "failure", at=T0 + 3, error="late")
    total = TelemetryRow.total(any_store.fresh_telemetry("token", "a"), kind="token", key="a")
    assert (total.executions, total.successes, total.failures) == (3, 2, 1)
    assert (total.last_success_at, total.last_failure_at, total.last_error) == (
        T0 + 2,
        T0 + 3,
        "late",
    )
    assert total.buckets[:3] == (1, 1, 2) and total.latency_count == 2
    empty = TelemetryRow.total([], kind="token", key="b")
    assert (empty.executions, empty.latency_ms(0.5), empty.buckets) == (0, None, (0,) * 10)


def test_states_are_written_by_compare_and_swap(any_store: Store, reopen: Opener) -> None:
    assert any_store.get_fresh_state("http", "u") is None
    assert any_store.put_fresh_state("http", "u", {"etag": "1"}, expected_version=None) == 1
    assert any_store.put_fresh_state("http", "u", {"etag": "x"}, expected_version=None) is None
    other = reopen()
    assert other.put_fresh_state("http", "u", {"etag": "2"}, expected_version=1) == 2
    assert any_store.put_fresh_state("http", "u", {"etag": "3"}, expected_version=1) is None
    state = any_store.get_fresh_state("http", "u")
    assert state is not None and (state.value, state.version) == ({"etag": "2"}, 2)
    any_store.record_fresh("http", "u", "use", "success", at=T0)
    any_store.forget_fresh("http", "u")
    assert any_store.get_fresh_state("http", "u") is None
    assert any_store.fresh_telemetry("http", "u") == []


def test_deleting_an_account_deletes_its_telemetry(any_store: Store) -> None:
    any_store.create_account("a", "oauth2", {}, TokenRow(access_token="A", refresh_token="R"))
    any_store.record_fresh("token", "a", "use", "success", at=T0)
    any_store.record_fresh("token", "b", "use", "success", at=T0)
    assert any_store.delete_account("a")
    assert [r.key for r in any_store.fresh_telemetry("token")] == ["b"]


def test_the_lock_is_per_kind_and_key_in_both_modes(any_store: Store, reopen: Opener) -> None:
    lock = any_store.lock("http", "https://example.test/jwks")
    assert any_store.lock("http", "https://example.test/jwks") is lock  # one object per store
    assert lock.acquire(0)
    other = reopen()
    try:
        assert not other.lock("http", "https://example.test/jwks").acquire(0)  # skip mode
        assert not other.lock("http", "https://example.test/jwks").acquire(0.3)  # waited
        assert other.lock("token", "https://example.test/jwks").acquire(0)  # another kind
        other.lock("token", "https://example.test/jwks").release()
    finally:
        lock.release()
    assert other.lock("http", "https://example.test/jwks").acquire(5)  # share mode: taken
    other.lock("http", "https://example.test/jwks").release()
