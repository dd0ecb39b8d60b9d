"""Prometheus metrics of one database, and the daemon's ``/metrics`` and ``/healthz``.

Read from the store at each scrape by a ``prometheus_client`` collector, so
every process (a daemon, ``stayfresh metrics``) reports the same figures: the
store is where the counters live. Names follow Prometheus conventions
(``stayfresh_`` prefix, ``_total`` counters, base units). Nothing here is secret:
accounts are named, tokens never appear. Needs ``pip install 'stayfresh[metrics]'``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..store import Store
from ..tokens import describe_all
from ..work import WorkManager, WorkState
from ..work.internal import waker_for
from ._status import collect_status, health_problems

log = logging.getLogger(__name__)


def _seconds(iso: str | None) -> float | None:
    return None if iso is None else dt.datetime.fromisoformat(iso).timestamp()


class StoreCollector(Collector):
    """Accounts, works, the notification layers and the live daemons of ``store``."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        yield from self._accounts(now)
        yield from self._works(now)
        yield from self._notify(now)
        daemons = GaugeMetricFamily(
            "stayfresh_daemons", "Daemons that answered a wake-up for this database."
        )
        daemons.add_metric([], waker_for(self.store).notify())
        yield daemons

    def _accounts(self, now: float) -> Iterator[Metric]:
        refreshes = CounterMetricFamily(
            "stayfresh_account_refreshes", "Token refreshes, by layer.", labels=["account", "layer"]
        )
        failures = CounterMetricFamily(
            "stayfresh_account_refresh_failures", "Failed refreshes.", labels=["account"]
        )
        latency = GaugeMetricFamily(
            "stayfresh_account_refresh_latency_seconds",
            "Refresh latency over recent refreshes, by statistic.",
            labels=["account", "stat"],
        )
        expiry = GaugeMetricFamily(
            "stayfresh_account_token_expiry_seconds",
            "Seconds until the access token expires (negative: expired).",
            labels=["account"],
        )
        needs_login = GaugeMetricFamily(
            "stayfresh_account_needs_login", "1 when the account needs a new sign-in.",
            labels=["account"],
        )  # fmt: skip
        for account in describe_all(self.store, now=now):
            name, metrics = account["name"], account["metrics"]
            refreshes.add_metric([name, "jit"], metrics["jit_refreshes"])
            refreshes.add_metric([name, "background"], metrics["background_refreshes"])
            failures.add_metric([name], metrics["failures"])
            for stat in ("avg", "p95"):
                value = metrics[f"{stat}_latency_ms"]
                if value is not None:
                    latency.add_metric([name, stat], value / 1000)
            expires_at = _seconds(account["expires_at"])
            if expires_at is not None:
                expiry.add_metric([name], expires_at - now)
            needs_login.add_metric([name], 1 if account["status"] == "needs_login" else 0)
        yield from (refreshes, failures, latency, expiry, needs_login)

    def _works(self, now: float) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "stayfresh_work_state", "1 for the state each work is in.", labels=["work", "state"]
        )
        attempt = GaugeMetricFamily(
            "stayfresh_work_attempt", "The work's current attempt number.", labels=["work"]
        )
        lateness = GaugeMetricFamily(
            "stayfresh_work_lateness_seconds",
            "How long a due work has waited to start (0 when not yet due).",
            labels=["work"],
        )
        outcome = GaugeMetricFamily(
            "stayfresh_work_last_outcome", "1 for the outcome of the work's last run.",
            labels=["work", "outcome"],
        )  # fmt: skip
        for info in WorkManager(self.store).list_work():
            if info.state is WorkState.CANCELLED:
                continue
            name = info.name or info.id
            state.add_metric([name, info.state.value], 1)
            attempt.add_metric([name], info.run_attempt)
            if info.state is WorkState.ENQUEUED and info.next_run_at is not None:
                lateness.add_metric([name], max(0.0, now - info.next_run_at.timestamp()))
            if info.last_outcome:
                outcome.add_metric([name, info.last_outcome], 1)
        yield from (state, attempt, lateness, outcome)

    def _notify(self, now: float) -> Iterator[Metric]:
        families = {
            key: CounterMetricFamily(
                f"stayfresh_notify_{key}",
                f"Notification refresh {key}, by layer.",
                labels=["layer"],
            )
            for key in ("executions", "successes", "failures", "skips")
        }
        since = GaugeMetricFamily(
            "stayfresh_notify_seconds_since_success",
            "Seconds since the layer's last successful reschedule.",
            labels=["layer"],
        )
        for row in self.store.notify_telemetry():
            for key, family in families.items():
                family.add_metric([row.layer], getattr(row, key))
            if row.last_success_at is not None:
                since.add_metric([row.layer], now - row.last_success_at)
        yield from (*families.values(), since)


def registry_for(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


def metrics_text(store: Store) -> str:
    """The Prometheus text exposition of ``store``, once (``stayfresh metrics``)."""
    return generate_latest(registry_for(store)).decode()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: " + format, *args)


def serve_metrics(store: Store, host: str, port: int) -> WSGIServer:
    """Serve ``/metrics`` and ``/healthz`` (the ``status --check`` verdict) in a thread.

    ``/healthz`` answers 200 ``ok`` when nothing needs a person, else 503 with
    one line per problem. Returns the server (``server_port`` is the port
    really bound; ``shutdown()`` stops it).
    """
    metrics_app = make_wsgi_app(registry_for(store))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            problems = health_problems(store, status=collect_status(store))
            lines = [f"{p.kind}: {p.message}" for p in problems] or ["ok"]
            status = "503 Service Unavailable" if problems else "200 OK"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [("\n".join(lines) + "\n").encode()]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="stayfresh-metrics", daemon=True)
    thread.start()
    return server
