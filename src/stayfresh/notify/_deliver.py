"""Delivery: send what is due, record it so that it is never sent twice.

Each (occurrence, sink) goes through a small state machine in the store:

    pending ──claim──▶ sending ──▶ sent
                          │  └────▶ failed ──(retry within grace)──▶ sending
                          └─(claim ran out: the sender crashed)──▶ see below
    pending ──(due more than `grace` ago)──▶ missed

The claim (``sending``) is committed *before* the send and the result
(``sent``) *after* it. A crash between the two leaves a ``sending`` row
whose claim runs out; nobody can know whether the message left. The sink's
choice decides, and both are tested:

- **at-most-once** (the default): the row becomes ``unknown`` and is never
  resent. A notification may be lost in a crash, never duplicated. Right for
  people-facing channels (a phone buzzing twice is worse than, very rarely,
  not at all) and for any sink that cannot deduplicate.
- **at-least-once** (``--at-least-once``): the row is claimed again and
  resent while within the grace period. Nothing is lost; a crash at the
  wrong moment sends twice. Right for sinks that deduplicate on their side
  or machine consumers (webhooks that tolerate repeats).

Occurrences missed while the machine was off are delivered late within the
grace period (default 1 h) and recorded as ``missed`` after it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping

from .._retry import backoff_delay
from ..store import DeliveryRow, Store
from ._config import NotifyConfig
from ._sinks import Sink, SinkError, sinks_of

log = logging.getLogger(__name__)

#: first retry of a failed send; doubles per attempt, within the grace period only
RETRY_DELAY = 30.0


def retry_time(claim: DeliveryRow, now: float, grace: float) -> float | None:
    """When to try a failed send again, or None once the grace period is over (pure)."""
    at = now + backoff_delay(claim.attempts, initial=RETRY_DELAY, floor=0.0, cap=float("inf"))
    return at if at <= claim.due_at + grace else None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    """What one :func:`deliver_due` pass did."""

    sent: int = 0
    failed: int = 0
    missed: int = 0
    unknown: int = 0
    gave_up: int = 0
    lost_claims: int = 0
    next_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def deliver_due(
    store: Store,
    *,
    now: float | None = None,
    sinks: Mapping[int, Sink] | None = None,
    config: NotifyConfig | None = None,
) -> DeliveryReport:
    """Send everything due at ``now`` through the sinks and record each result.

    ``now`` (POSIX seconds) defaults to the wall clock; ``sinks`` to the
    configured ones (the implicit log sink when there are none).
    """
    cfg = config or NotifyConfig.load(store)
    at = time.time() if now is None else now
    chosen = sinks if sinks is not None else sinks_of(store.list_notify_sinks())
    outcome = store.claim_notifications(
        now=at,
        grace=cfg.grace.total_seconds(),
        lease=cfg.send_lease.total_seconds(),
        sinks={sink_id: sink.at_least_once for sink_id, sink in chosen.items()},
    )
    for row in outcome.missed:
        log.warning(
            "missed: reminder %d due %s for sink %d (%.0f min late, grace %s)",
            row.rule_id, _iso(row.due_at), row.sink_id, (at - row.due_at) / 60, cfg.grace,
        )  # fmt: skip
    for row in outcome.unknown:
        log.warning(
            "unknown: reminder %d due %s for sink %d was being sent when its sender died; "
            "not resent (at-most-once sink)",
            row.rule_id, _iso(row.due_at), row.sink_id,
        )  # fmt: skip
    for row in outcome.gave_up:
        log.warning(
            "gave up: reminder %d due %s for sink %d: %s",
            row.rule_id, _iso(row.due_at), row.sink_id, row.error,
        )  # fmt: skip
    sent = failed = lost = 0
    for claim in outcome.claims:
        sink = chosen[claim.sink_id]
        late = at - claim.due_at
        log.info(
            "sending reminder %d due %s to %r (attempt %d%s)",
            claim.rule_id, _iso(claim.due_at), sink, claim.attempts,
            f", {late / 60:.1f} min late" if late >= 60 else "",
        )  # fmt: skip
        error: str | None = None
        try:
            sink.send(claim.title, claim.body)
        except SinkError as exc:
            error = str(exc)
        except Exception as exc:  # a sink bug must not stop the other deliveries
            log.exception("sink %r raised", sink)
            error = f"{type(exc).__name__}: {exc}"[:300]
        finished_at = at if now is not None else time.time()
        retry_at = (
            None if error is None else retry_time(claim, finished_at, cfg.grace.total_seconds())
        )
        kept = store.finish_notification(
            claim, ok=error is None, at=finished_at, error=error, retry_at=retry_at
        )
        if not kept:
            lost += 1
            log.warning(
                "reminder %d: our claim was taken over before the result was recorded",
                claim.rule_id,
            )
        elif error is None:
            sent += 1
            log.info("sent reminder %d due %s to %r", claim.rule_id, _iso(claim.due_at), sink)
        else:
            failed += 1
            log.warning(
                "failed to send reminder %d to %r: %s; %s",
                claim.rule_id, sink, error,
                f"retry at {_iso(retry_at)}" if retry_at else "grace period over, giving up",
            )  # fmt: skip
    next_at = store.next_notification_time()
    return DeliveryReport(
        sent=sent, failed=failed, missed=len(outcome.missed), unknown=len(outcome.unknown),
        gave_up=len(outcome.gave_up), lost_claims=lost, next_at=next_at,
    )  # fmt: skip
