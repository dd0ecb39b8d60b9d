"""The telemetry counters one execution adds: a pure function, no database."""

from __future__ import annotations

import pytest

from stayfresh.store._fresh import Failure, Outcome, telemetry_counts

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("outcome", "error", "failure", "expected"),
    [
        ("success", "ignored", "other", (1, 0, 0, 0, 0, NOW, None, None, None)),
        ("skip", "ignored", "other", (0, 0, 0, 0, 1, None, None, NOW, None)),
        ("failure", "disk full", "other", (0, 1, 0, 0, 0, None, NOW, None, "disk full")),
        ("failure", None, "transient", (0, 1, 1, 0, 0, None, NOW, None, None)),
        ("failure", "x" * 600, "person", (0, 1, 0, 1, 0, None, NOW, None, "x" * 500)),
    ],
)
def test_an_execution_counts_its_outcome(
    outcome: Outcome, error: str | None, failure: Failure, expected: tuple[object, ...]
) -> None:
    counts = telemetry_counts(outcome, at=NOW, error=error, failure=failure)
    assert tuple(counts.values())[:9] == expected
    assert (counts["latency_count"], counts["latency_sum_ms"], counts["le_10s"]) == (0, 0.0, 0)


@pytest.mark.parametrize(
    ("latency_ms", "buckets"),
    [
        (10.0, (1,) * 10),
        (10.5, (0,) + (1,) * 9),
        (9_999.0, (0,) * 9 + (1,)),
        (10_001.0, (0,) * 10),
    ],
)
def test_a_success_lands_in_every_bucket_at_or_above_its_latency(
    latency_ms: float, buckets: tuple[int, ...]
) -> None:
    counts = telemetry_counts("success", at=NOW, latency_ms=latency_ms)
    assert tuple(v for k, v in counts.items() if k.startswith("le_")) == buckets
    assert (counts["latency_count"], counts["latency_sum_ms"]) == (1, latency_ms)
    assert telemetry_counts("failure", at=NOW, latency_ms=latency_ms)["latency_count"] == 0


def test_an_intent_is_held_elsewhere_while_its_owner_may_still_commit() -> None:
    import os
    import socket
    import subprocess
    import sys

    from stayfresh.store import RefreshIntent

    def intent(owner: str, expires_at: float = NOW + 300) -> RefreshIntent:
        return RefreshIntent(
            account="a", owner=owner, fingerprint="f", version=1, started_at=NOW,
            expires_at=expires_at,
        )  # fmt: skip

    host = socket.gethostname()
    assert intent("other-host:1").held_elsewhere(NOW)
    assert not intent("other-host:1", expires_at=NOW).held_elsewhere(NOW)  # the lease ran out
    assert not intent(f"{host}:{os.getpid()}").held_elsewhere(NOW)  # this process's own
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not intent(f"{host}:{gone.pid}").held_elsewhere(NOW)  # its owner died here
    assert intent(f"{host}:1").held_elsewhere(NOW)  # alive (init), not ours
    assert intent("x:1").spends(None) is False
