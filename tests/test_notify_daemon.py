"""The real daemon delivers to a real Apprise JSON webhook; SIGKILL between sending and recording.

Waits are hang guards only; facts come from the webhook's request log and
the store.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify_helpers import webhook
from stayfresh.store import SQLiteStore
from stayfresh.testing import wait_for
from work_helpers import Daemon, cli

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="daemon tests use Linux signals"),
    pytest.mark.slow,  # daemon processes, SIGKILL
]


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def delivery_states(db: Path) -> list[tuple[str, int]]:
    store = SQLiteStore(db)
    try:
        return [(d.state, d.attempts) for d in store.list_notification_deliveries()]
    finally:
        store.close()


def test_daemon_delivers_on_time_once_and_runs_the_background_layer(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    db = tmp_path / "s.db"
    with webhook() as hook:
        cli(db, "notify", "sink", "add", hook.url)
        cli(db, "notify", "background", "enable")
        cli(db, "notify", "add", "Tea", "--body", "green", "--at", "+2s", "--tz", "UTC")
        daemon = Daemon(db, tmp_path / "d.err")
        daemons.append(daemon)
        wait_for(lambda: delivery_states(db) == [("sent", 1)], what="the reminder to be sent")
        assert [(r.json()["title"], r.json()["message"]) for r in hook.requests] == [
            ("Tea", "green")
        ]
        status = json.loads(cli(db, "notify", "status", "--json").stdout)
        wait_for(
            lambda: (
                json.loads(cli(db, "notify", "status", "--json").stdout)["layers"]["background"][
                    "successes"
                ]
                >= 1
            ),
            what="the background layer's first run",
        )
        assert status["deliveries"] == {"sent": 1}
        assert daemon.stop() == 0
        assert "sent reminder" in daemon.text() and "BACKGROUND_TASK" in daemon.text()
        assert len(hook.requests) == 1


@pytest.mark.parametrize("at_least_once", [False, True], ids=["at-most-once", "at-least-once"])
def test_sigkill_between_sending_and_recording(
    tmp_path: Path, daemons: list[Daemon], at_least_once: bool
) -> None:
    db = tmp_path / "s.db"
    with webhook() as hook:
        hook.hold = True  # the request reaches the webhook; its answer waits for the kill
        cli(db, "notify", "config", "--send-lease", "2s")
        cli(db, "notify", "sink", "add", hook.url, *(["--at-least-once"] if at_least_once else []))
        cli(db, "notify", "add", "Ping", "--at", "now", "--tz", "UTC")
        first = Daemon(db, tmp_path / "d1.err", "--lease", "2s")
        daemons.append(first)
        wait_for(hook.received.is_set, what="the webhook to receive the notification")
        first.kill()  # SIGKILL: sent, never recorded
        hook.release.set()
        assert delivery_states(db) == [("sending", 1)]
        assert len(hook.requests) == 1

        second = Daemon(db, tmp_path / "d2.err", "--lease", "2s")
        daemons.append(second)
        final = ("sent", 2) if at_least_once else ("unknown", 1)
        wait_for(lambda: delivery_states(db) == [final], what=f"the delivery to become {final}")
        assert second.stop() == 0
        if at_least_once:
            # nothing lost, and the documented price: the webhook saw it twice
            assert hook.titles() == ["Ping", "Ping"]
        else:
            # never twice: the interrupted send is recorded unknown and not resent
            assert hook.titles() == ["Ping"]
            assert "not resent (at-most-once sink)" in second.text()
