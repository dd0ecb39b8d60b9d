"""``notify status``: telemetry per layer, the window, the background work, deliveries."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

from ..notify import NotifyConfig
from ..store import Store
from ._notify import background_work, pending_delivery_works

#: how ``notify status`` names the layers of the window's telemetry (layer 1 is "foreground")
LAYERS = {"foreground": "use", "background": "background", "manual": "manual"}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _since(ts: float | None, now: float) -> float | None:
    return None if ts is None else round(now - ts, 3)


def notify_status(store: Store, *, now: float) -> dict[str, Any]:
    """Everything ``notify status`` shows, as JSON-ready data (times in ISO 8601 UTC)."""
    fresh = store.notify_freshness()
    telemetry = {row.layer: row for row in store.fresh_telemetry("notify", "window")}
    layers: dict[str, Any] = {}
    for label, layer in LAYERS.items():
        row = telemetry.get(layer)
        layers[label] = {
            "executions": row.executions if row else 0,
            "successes": row.successes if row else 0,
            "failures": row.failures if row else 0,
            "skips": row.skips if row else 0,
            "last_success_at": _iso(row.last_success_at if row else None),
            "seconds_since_last_success": _since(row.last_success_at if row else None, now),
            "last_failure_at": _iso(row.last_failure_at if row else None),
            "last_error": row.last_error if row else None,
        }
    pending = store.list_pending_notifications()
    states = collections.Counter(d.state for d in store.list_notification_deliveries(limit=10_000))
    background = background_work(store)
    return {
        "rules": len(store.list_notify_rules()),
        "rules_changed_since_reschedule": fresh.rules_version != fresh.window_rules_version,
        "last_reschedule_at": _iso(fresh.last_reschedule_at),
        "seconds_since_last_reschedule": _since(fresh.last_reschedule_at, now),
        "pending": len(pending),
        "next_due_at": _iso(pending[0].due_at if pending else None),
        "next_delivery_at": _iso(store.next_notification_time()),
        "deliveries": dict(sorted(states.items())),
        "layers": layers,
        "background": {
            "enabled": background is not None,
            "state": background.state.value if background else None,
            "interval_seconds": background.interval if background else None,
            "next_run_at": background.next_run_at.isoformat()
            if background and background.next_run_at
            else None,
            "last_outcome": background.last_outcome if background else None,
        },
        "delivery_works": [
            {**w, "next_run_at": w["next_run_at"].isoformat() if w["next_run_at"] else None}
            for w in pending_delivery_works(store)
        ],
        "config": NotifyConfig.load(store).to_json(),
        "sinks": len(store.list_notify_sinks()),
    }
