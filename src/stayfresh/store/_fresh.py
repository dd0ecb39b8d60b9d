"""The common shape's part of the store: one lock, one telemetry table, durable states.

Every kind of state kept fresh (tokens, the notification window, a user's
own kind) shares these three, keyed by ``(kind, key)``: the cross-process
lock its refreshes take, the counters each layer's executions add to
(``queries/fresh.sql``), and — for kinds with no table of their own — a
versioned JSON state written by compare-and-swap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Literal

from ._contracts import FreshStore, RefreshLock
from ._rows import BUCKET_COLUMNS, LATENCY_BUCKETS_MS, FreshStateRow, RowLike, TelemetryRow
from ._sql import SQLBase, Tx

Outcome = Literal["success", "failure", "skip"]
Failure = Literal["transient", "person", "other"]


def telemetry_counts(
    outcome: Outcome,
    *,
    at: float,
    latency_ms: float | None = None,
    error: str | None = None,
    failure: Failure = "other",
) -> dict[str, Any]:
    """The counters one execution adds (pure): 1 for its outcome, its time, its latency."""
    measured = outcome == "success" and latency_ms is not None
    counts: dict[str, Any] = {
        "successes": int(outcome == "success"),
        "failures": int(outcome == "failure"),
        "transient_failures": int(outcome == "failure" and failure == "transient"),
        "person_failures": int(outcome == "failure" and failure == "person"),
        "skips": int(outcome == "skip"),
        "last_success_at": at if outcome == "success" else None,
        "last_failure_at": at if outcome == "failure" else None,
        "last_skip_at": at if outcome == "skip" else None,
        "last_error": None if outcome != "failure" or error is None else error[:500],
        "latency_count": int(measured),
        "latency_sum_ms": latency_ms if measured else 0.0,
    }
    for column, bound in zip(BUCKET_COLUMNS, LATENCY_BUCKETS_MS, strict=True):
        counts[column] = int(measured and latency_ms is not None and latency_ms <= bound)
    return counts


def telemetry_from_row(row: RowLike) -> TelemetryRow:
    return TelemetryRow(
        kind=row["kind"],
        key=row["key"],
        layer=row["layer"],
        executions=int(row["executions"]),
        successes=int(row["successes"]),
        failures=int(row["failures"]),
        transient_failures=int(row["transient_failures"]),
        person_failures=int(row["person_failures"]),
        skips=int(row["skips"]),
        last_success_at=row["last_success_at"],
        last_failure_at=row["last_failure_at"],
        last_skip_at=row["last_skip_at"],
        last_error=row["last_error"],
        latency_count=int(row["latency_count"]),
        latency_sum_ms=float(row["latency_sum_ms"]),
        buckets=tuple(int(row[c]) for c in BUCKET_COLUMNS),
    )


class FreshSQL(SQLBase, FreshStore):
    """The lock, telemetry and state methods of :class:`Store`."""

    def lock(self, kind: str, key: str) -> RefreshLock:
        return self.named_lock(f"{kind}:{key}")

    def record_fresh(
        self,
        kind: str,
        key: str,
        layer: str,
        outcome: Outcome,
        *,
        at: float,
        latency_ms: float | None = None,
        error: str | None = None,
        failure: Failure = "other",
    ) -> None:
        counts = telemetry_counts(
            outcome, at=at, latency_ms=latency_ms, error=error, failure=failure
        )
        self.transact(lambda tx: tx.run("count_fresh", kind=kind, key=key, layer=layer, **counts))

    def fresh_telemetry(
        self, kind: str | None = None, key: str | None = None
    ) -> list[TelemetryRow]:
        return [telemetry_from_row(r) for r in self.select("fresh_telemetry", kind=kind, key=key)]

    def get_fresh_state(self, kind: str, key: str) -> FreshStateRow | None:
        row = self.select_one("get_fresh_state", kind=kind, key=key)
        if row is None:
            return None
        return FreshStateRow(
            kind=row["kind"],
            key=row["key"],
            value=json.loads(row["value"]),
            version=int(row["version"]),
            updated_at=float(row["updated_at"]),
        )

    def put_fresh_state(
        self, kind: str, key: str, value: Mapping[str, Any], *, expected_version: int | None
    ) -> int | None:
        text = json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
        now = time.time()
        if expected_version is None:
            added = self.transact(
                lambda tx: tx.run("insert_fresh_state", kind=kind, key=key, value=text, now=now)
            )
            return 1 if added else None
        swapped = self.transact(
            lambda tx: tx.run(
                "swap_fresh_state",
                kind=kind,
                key=key,
                value=text,
                now=now,
                expected_version=expected_version,
            )
        )
        return expected_version + 1 if swapped else None

    def forget_fresh(self, kind: str, key: str) -> None:
        def body(tx: Tx) -> None:
            tx.run("forget_fresh", kind=kind, key=key)
            tx.run("forget_fresh_state", kind=kind, key=key)

        self.transact(body)
