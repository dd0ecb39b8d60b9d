"""Delivery with ``now`` given: on time, late within grace, missed, retries, crashes, Apprise.

The Apprise sink posts to a real HTTP server on 127.0.0.1 (``json://``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

from notify_helpers import webhook
from stayfresh import notify
from stayfresh.errors import ConfigError
from stayfresh.notify import NotifyConfig, Sink, deliver_due, refresh, sink_for
from stayfresh.notify._sinks import SinkError
from stayfresh.store import SinkRow, Store

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
H = 3600.0


class Recorder(Sink):
    """A sink that remembers what it was given and can be told to fail."""

    def __init__(
        self, sink_id: int = 1, *, at_least_once: bool = False, fail: bool = False
    ) -> None:
        super().__init__(
            SinkRow(id=sink_id, kind="log", target=None, at_least_once=at_least_once, created_at=0)
        )
        self.sent: list[str] = []
        self.fail = fail

    def send(self, title: str, body: str) -> None:
        if self.fail:
            raise SinkError("told to fail")
        self.sent.append(title)


def hourly(store: Store, title: str = "tick") -> int:
    rule = notify.make_rule(title, rrule="FREQ=HOURLY", start="2026-01-01 00:00", tz="UTC", now=T0)
    return store.add_notify_rule(rule, now=T0.timestamp()).id


def states(store: Store) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in store.list_notification_deliveries(limit=1000):
        out[d.state] = out.get(d.state, 0) + 1
    return out


def test_on_time_once_and_never_twice(store: Store) -> None:
    hourly(store)
    refresh(store, now=T0)
    sink = Recorder()
    report = deliver_due(store, now=T0.timestamp(), sinks={1: sink})
    assert (report.sent, sink.sent) == (1, ["tick"])
    assert report.next_at == T0.timestamp() + H
    refresh(store, now=T0)  # the window is rebuilt with T0 in it again …
    assert deliver_due(store, now=T0.timestamp() + 1, sinks={1: sink}).sent == 0  # … and not resent
    assert sink.sent == ["tick"]
    assert deliver_due(store, now=T0.timestamp() + H, sinks={1: sink}).sent == 1


def test_late_within_grace_then_missed_after_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    hourly(store)
    refresh(store, now=T0)
    sink = Recorder()
    caplog.set_level(logging.INFO, logger="stayfresh.notify")
    # the machine was off from T0 until T0 + 3.5 h: T0, +1 h and +2 h are more than 1 h late
    report = deliver_due(store, now=T0.timestamp() + 3.5 * H, sinks={1: sink})
    assert (report.missed, report.sent) == (3, 1)  # +3 h is 30 min late: delivered
    assert states(store) == {"missed": 3, "sent": 1}
    assert "missed: reminder" in caplog.text and "30.0 min late" in caplog.text


def test_failed_send_is_retried_with_backoff_within_grace(store: Store) -> None:
    hourly(store)
    refresh(store, now=T0)
    sink = Recorder(fail=True)
    now = T0.timestamp()
    report = deliver_due(store, now=now, sinks={1: sink})
    assert report.failed == 1 and report.next_at == now + 30
    [row] = store.list_notification_deliveries()
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 1, now + 30)
    assert deliver_due(store, now=now + 29, sinks={1: sink}).failed == 0  # not yet
    assert deliver_due(store, now=now + 30, sinks={1: sink}).failed == 1
    [row] = store.list_notification_deliveries()
    assert (row.attempts, row.next_attempt_at) == (2, now + 30 + 60)
    sink.fail = False
    assert deliver_due(store, now=now + 90, sinks={1: sink}).sent == 1
    assert sink.sent == ["tick"]


def test_retries_stop_at_the_end_of_the_grace_period(store: Store) -> None:
    hourly(store)
    refresh(store, now=T0)
    sink = Recorder(fail=True)
    now = T0.timestamp()
    for _ in range(12):
        deliver_due(
            store, now=now, sinks={1: sink}, config=NotifyConfig(grace=dt.timedelta(minutes=5))
        )
        row = next(d for d in store.list_notification_deliveries() if d.due_at == T0.timestamp())
        if row.next_attempt_at is None:
            break
        now = row.next_attempt_at
    assert row.state == "failed" and row.next_attempt_at is None
    assert now <= T0.timestamp() + 300


@pytest.mark.parametrize("at_least_once", [False, True])
def test_crash_between_sending_and_recording(store: Store, at_least_once: bool) -> None:
    """A claim whose sender died: at-most-once never resends, at-least-once resends once."""
    hourly(store)
    refresh(store, now=T0)
    now = T0.timestamp()
    cfg = NotifyConfig(send_lease=dt.timedelta(minutes=2))
    # what a crashed deliverer leaves: the claim committed, the result never recorded
    claim = store.claim_notifications(now=now, grace=H, lease=120, sinks={1: at_least_once})
    assert [c.state for c in claim.claims] == ["sending"]
    sink = Recorder(at_least_once=at_least_once)
    assert (
        deliver_due(store, now=now + 60, sinks={1: sink}, config=cfg).sent == 0
    )  # claim still live
    report = deliver_due(store, now=now + 121, sinks={1: sink}, config=cfg)
    [row] = [d for d in store.list_notification_deliveries() if d.due_at == now]
    if at_least_once:
        assert (report.sent, row.state, row.attempts, sink.sent) == (1, "sent", 2, ["tick"])
    else:
        assert (report.unknown, row.state, sink.sent) == (1, "unknown", [])
        assert "at-most-once" in (row.error or "")
    assert deliver_due(store, now=now + 1000, sinks={1: sink}, config=cfg).sent == 0  # and stays so


def test_concurrent_deliverers_send_each_occurrence_once(store: Store) -> None:
    for i in range(20):
        hourly(store, f"r{i}")
    refresh(store, now=T0)
    sink = Recorder()
    lock = threading.Lock()
    sent: list[str] = []

    class Shared(Recorder):
        def send(self, title: str, body: str) -> None:
            with lock:
                sent.append(title)

    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        cfg = NotifyConfig(grace=dt.timedelta(hours=3))
        deliver_due(store, now=T0.timestamp() + 2 * H, sinks={1: Shared()}, config=cfg)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sent) == sorted(f"r{i}" for i in range(20) for _ in range(3))
    assert len(sent) == 60 and not sink.sent


def test_each_sink_gets_its_own_record(store: Store) -> None:
    hourly(store)
    refresh(store, now=T0)
    good, bad = Recorder(1), Recorder(2, fail=True)
    report = deliver_due(store, now=T0.timestamp(), sinks={1: good, 2: bad})
    assert (report.sent, report.failed) == (1, 1)
    bad.fail = False
    assert deliver_due(store, now=T0.timestamp() + 30, sinks={1: good, 2: bad}).sent == 1
    assert good.sent == bad.sent == ["tick"]


def test_apprise_json_webhook_on_localhost(store: Store) -> None:
    hourly(store, "Stretch")
    refresh(store, now=T0)
    with webhook() as hook:
        row = store.add_notify_sink("apprise", hook.url, at_least_once=False, now=T0.timestamp())
        report = deliver_due(store, now=T0.timestamp())
        assert report.sent == 1
        [req] = hook.requests
        assert req.path == "/hook"
        posted = req.json()
        assert posted["title"] == "Stretch" and posted["message"] == "Stretch"
        assert posted["type"] == "info"
        hook.status = 500
        report = deliver_due(store, now=T0.timestamp() + H)
        assert report.failed == 1
        failed = next(d for d in store.list_notification_deliveries() if d.state == "failed")
        assert failed.sink_id == row.id and "Apprise could not deliver" in (failed.error or "")
        assert "json://" in (failed.error or "")


def test_sink_validation_and_privacy() -> None:
    with pytest.raises(ConfigError):
        notify.check_target("apprise", "nope://")
    url = "tgram://123456789:AAHsecretsecretsecretsecretsecret1234/987654"
    notify.check_target("apprise", url)
    shown = notify._sinks.privacy_url(url)
    assert "secretsecret" not in shown and shown.startswith("tgram://")
    assert "secret" not in repr(
        SinkRow(id=1, kind="apprise", target=url, at_least_once=False, created_at=0)
    )
    assert (
        repr(
            sink_for(SinkRow(id=1, kind="apprise", target=url, at_least_once=False, created_at=0))
        ).count("secretsecret")
        == 0
    )
