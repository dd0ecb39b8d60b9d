"""Prometheus metrics of one database, and the daemon's ``/metrics`` and ``/healthz``.

Read from the store at each scrape by a ``prometheus_client`` collector, so
every process (a daemon, ``stayfresh metrics``) reports the same figures: the
store is where the counters live. Names follow Prometheus conventions
(``stayfresh_`` prefix, ``_total`` counters, base units). Nothing here is secret:
accounts are named, tokens never appear. Needs ``pip install 'stayfresh[metrics]'``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..store import LATENCY_BUCKETS_MS, Store
from ..work import WorkManager, WorkState
from ..work.internal import live_daemons
from ._status import collect_status, health_problems

log = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Accounts, works, the notification layers and the live daemons of ``store``."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        yield from self._accounts(now)
        yield from self._works(now)
        yield from self._fresh(now)
        daemons = GaugeMetricFamily(
            "stayfresh_daemons", "Daemons running on this database (from their heartbeats)."
        )
        daemons.add_metric([], len(live_daemons(self.store, now)))
        yield daemons

    def _accounts(self, now: float) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "stayfresh_account_token_expiry_seconds",
            "Seconds until the access token expires (negative: expired).",
            labels=["account"],
        )
        needs_login = GaugeMetricFamily(
            "stayfresh_account_needs_login", "1 when the account needs a new sign-in.",
            labels=["account"],
        )  # fmt: skip
        for row in self.store.list_accounts():
            if row.tokens.expires_at is not None:
                expiry.add_metric([row.name], row.tokens.expires_at - now)
            needs_login.add_metric([row.name], 1 if row.status == "needs_login" else 0)
        yield from (expiry, needs_login)

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
        runs = CounterMetricFamily(
            "stayfresh_work_runs", "Ended runs of the work, by outcome.", labels=["work", "outcome"]
        )
        counts = self.store.run_counts()
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
            for ended, count in sorted(counts.get(info.id, {}).items()):
                runs.add_metric([name, ended], count)
        yield from (state, attempt, lateness, outcome, runs)

    def _fresh(self, now: float) -> Iterator[Metric]:
        """Every state kept fresh (tokens, the notification window, users' kinds), by layer."""
        labels = ["kind", "key", "layer"]
        counters = {
            field: CounterMetricFamily(f"stayfresh_refresh_{name}", text, labels=labels)
            for field, name, text in (
                ("executions", "executions", "Executions of a refresh layer."),
                ("successes", "successes", "Successful refreshes."),
                ("skips", "skips", "Executions that found another caller refreshing."),
            )
        }
        failures = CounterMetricFamily(
            "stayfresh_refresh_failures",
            "Failed refreshes, by reason: transient (retried), needs_person, other.",
            labels=[*labels, "reason"],
        )
        latency = HistogramMetricFamily(
            "stayfresh_refresh_latency_seconds", "Time a successful refresh took.", labels=labels
        )
        since = GaugeMetricFamily(
            "stayfresh_refresh_seconds_since_success",
            "Seconds since the layer's last successful refresh.",
            labels=labels,
        )
        for row in self.store.fresh_telemetry():
            values = [row.kind, row.key, row.layer]
            for field, family in counters.items():
                family.add_metric(values, getattr(row, field))
            other = row.failures - row.transient_failures - row.person_failures
            for reason, count in (("transient", row.transient_failures),
                                  ("needs_person", row.person_failures), ("other", other)):  # fmt: skip
                failures.add_metric([*values, reason], count)
            buckets = [
                (f"{b / 1000:g}", c) for b, c in zip(LATENCY_BUCKETS_MS, row.buckets, strict=True)
            ]
            latency.add_metric(
                values, [*buckets, ("+Inf", row.latency_count)], row.latency_sum_ms / 1000
            )
            if row.last_success_at is not None:
                since.add_metric(values, now - row.last_success_at)
        yield from (*counters.values(), failures, latency, since)


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
