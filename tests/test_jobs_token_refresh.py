"""The token refresh backup (the seed's TokenRefreshWorker) run by the real engine.

Each test schedules the account's works the way ``account add`` does, then
lets a real :class:`Runner` on the test's store claim and run them at times
set by a fake clock that the keeper shares, against a token endpoint on
127.0.0.1 (the scriptable fake, or the real ``oidc-provider``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from oidc_server import OIDCServer
from stayfresh.jobs import drop_keeper, on_account_ready, use_keeper
from stayfresh.jobs.internal import TOKEN_REFRESH_WORKER, token_refresh_work_name
from stayfresh.store import Store
from stayfresh.testing import FakeClock, wait_for
from stayfresh.tokens import Keeper, TokenSet, add_account, refresh_metrics, replace_tokens
from stayfresh.work import NullWaker, Runner, WorkInfo, WorkManager, WorkState

UTC = dt.UTC
DAY = 86400.0


class Engine:
    """A work manager, a runner and a keeper on one store, all on one fake clock."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.manager = WorkManager(store, clock=clock, waker=NullWaker())
        self.runner = Runner(store, clock=clock, listen=False, overrides={"network": "unmetered"})
        self.keeper = Keeper(store, clock=clock, timeout=2.0)

    def run_due(self) -> int:
        return self.runner.run_pending()

    def work(self, account: str) -> WorkInfo:
        infos = [
            w
            for w in self.manager.by_name(token_refresh_work_name(account))
            if w.state is not WorkState.CANCELLED
        ]
        assert len(infos) == 1
        return infos[0]


@pytest.fixture
def engine(store: Store) -> Iterator[Engine]:
    # the keeper's clock must agree with the tokens add_oauth2 stores (real time)
    clock = FakeClock(start=dt.datetime.now(UTC).timestamp())
    eng = Engine(store, clock)
    use_keeper(eng.keeper)  # background works on this database use the test's keeper
    yield eng
    drop_keeper(eng.keeper)
    eng.keeper.close()


def _due_in(info: WorkInfo, clock: FakeClock) -> float:
    assert info.next_run_at is not None
    return round(info.next_run_at.timestamp() - clock.now, 3)


def test_valid_token_is_left_alone(
    engine: Engine, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    add_oauth2(engine.store, "alice", token_server.url, expires_in=10 * 3600)
    on_account_ready(engine.store, "alice", manager=engine.manager)
    caplog.set_level(logging.INFO, logger="stayfresh")
    assert engine.run_due() == 1  # a new periodic work runs its first period at once
    assert token_server.requests == []
    run = engine.manager.history(name=token_refresh_work_name("alice"))[0]
    assert run.outcome == "success" and run.output is not None
    assert run.output["refreshed"] is False
    assert "Token still valid, no refresh needed" in caplog.text
    info = engine.work("alice")
    assert info.worker == TOKEN_REFRESH_WORKER and info.state is WorkState.ENQUEUED
    assert _due_in(info, engine.clock) == DAY  # the next daily check
    assert info.constraints.network == "connected"
    assert "account:alice" in info.tags


def test_expiring_token_is_refreshed_as_a_background_refresh(
    engine: Engine, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    add_oauth2(engine.store, "alice", token_server.url, expires_in=20 * 60)
    token_server.handler = lambda seen: token_reply("fresh-access", expires_in=3600)
    on_account_ready(engine.store, "alice", manager=engine.manager)
    caplog.set_level(logging.INFO, logger="stayfresh")
    assert engine.run_due() == 1
    assert len(token_server.requests) == 1
    row = engine.store.get_account("alice")
    assert row is not None and row.tokens.access_token == "fresh-access"
    assert row.tokens.refresh_token == "old-refresh"  # none returned: the old one kept
    metrics = refresh_metrics(engine.store, "alice")
    assert (metrics.background_refreshes, metrics.jit_refreshes) == (1, 0)
    for line in (
        "Token expiring soon (< 30 minutes), triggering refresh",
        "refresh token kept",
        "Token refresh complete. New expiry:",
    ):
        assert line in caplog.text
    assert "old-refresh" not in caplog.text and "fresh-access" not in caplog.text
    run = engine.manager.history(name=token_refresh_work_name("alice"))[0]
    assert run.outcome == "success" and run.output and run.output["refreshed"] is True


@pytest.mark.parametrize("expires_in", [-60, 10 * 60], ids=["expired", "still-usable"])
def test_transient_failures_retry_with_exponential_backoff(
    engine: Engine, token_server: FakeTokenServer, expires_in: int
) -> None:
    """30 s, then 60 s, then 120 s; back on the daily cadence after a success.

    With a still-usable token the keeper hands it back instead of raising;
    the worker must still ask for a retry, not report success.
    """
    add_oauth2(engine.store, "alice", token_server.url, expires_in=expires_in)
    token_server.handler = lambda seen: Reply(503, "busy")
    on_account_ready(engine.store, "alice", manager=engine.manager)
    start = engine.clock.now
    delays = []
    for attempt in (1, 2, 3):
        assert engine.run_due() == 1
        info = engine.work("alice")
        assert info.state is WorkState.ENQUEUED and info.run_attempt == attempt
        assert info.last_outcome == "retry"
        delays.append(_due_in(info, engine.clock))
        assert engine.run_due() == 0  # nothing before the backoff is over
        engine.clock.advance(delays[-1])
    assert delays == [30.0, 60.0, 120.0]
    assert len(token_server.requests) == 3
    token_server.handler = lambda seen: token_reply("fresh-access")
    assert engine.run_due() == 1
    info = engine.work("alice")
    assert info.run_attempt == 0 and info.last_outcome == "success"
    assert info.next_run_at is not None and info.next_run_at.timestamp() == start + DAY
    assert refresh_metrics(engine.store, "alice").failures == 3


def test_invalid_grant_needs_login_and_is_not_retried_until_login(
    engine: Engine, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    add_oauth2(engine.store, "alice", token_server.url, expires_in=-60)
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    on_account_ready(engine.store, "alice", manager=engine.manager)
    caplog.set_level(logging.INFO, logger="stayfresh")
    start = engine.clock.now
    assert engine.run_due() == 1
    row = engine.store.get_account("alice")
    assert row is not None and row.status == "needs_login"
    run = engine.manager.history(name=token_refresh_work_name("alice"))[0]
    assert run.outcome == "failure" and run.output is not None
    assert "run `stayfresh login alice`" in run.output["message"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stayfresh login alice" in r.getMessage() for r in warnings)  # the user is told
    info = engine.work("alice")
    assert info.run_attempt == 0  # a failure, not a retry: no backoff
    assert info.next_run_at is not None and info.next_run_at.timestamp() == start + DAY
    for step in (30, 60, 3600):
        engine.clock.advance(step)
        assert engine.run_due() == 0
    # the next period runs, fails at once and does not bother the provider
    engine.clock.now = start + DAY
    assert engine.run_due() == 1
    assert len(token_server.requests) == 1
    latest = engine.manager.history(name=token_refresh_work_name("alice"))[0]
    assert latest.outcome == "failure" and latest.output and latest.output["needs_login"]
    # a login makes the account healthy; the next period refreshes normally
    now = dt.datetime.fromtimestamp(engine.clock.now, UTC)
    replace_tokens(
        engine.store,
        "alice",
        TokenSet(access_token="a2", refresh_token="r2", expires_at=now + dt.timedelta(minutes=5)),
    )
    changes = on_account_ready(engine.store, "alice", manager=engine.manager)
    assert {c.action for c in changes} <= {"unchanged", "none"}  # the work was still armed
    token_server.handler = lambda seen: token_reply("a3", refresh="r3")
    engine.clock.now = start + 2 * DAY
    engine.keeper.forget("alice")
    assert engine.run_due() == 1
    row = engine.store.get_account("alice")
    assert row is not None and row.status == "ok" and row.tokens.access_token == "a3"
    assert token_server.requests[-1].form["refresh_token"] == "r2"


def test_worker_with_a_missing_account_fails_with_a_message(engine: Engine) -> None:
    from stayfresh.jobs._settings import Settings
    from stayfresh.jobs.internal import token_refresh_request

    engine.manager.enqueue(
        token_refresh_request("ghost", Settings()), name=token_refresh_work_name("ghost")
    )
    assert engine.run_due() == 1
    run = engine.manager.history(name=token_refresh_work_name("ghost"))[0]
    assert run.outcome == "failure" and run.output and "ghost" in run.output["message"]


def _stale(issued: dict[str, object]) -> TokenSet:
    now = dt.datetime.now(UTC)
    return TokenSet(
        access_token=str(issued["access_token"]),
        refresh_token=str(issued["refresh_token"]),
        expires_at=now - dt.timedelta(seconds=1),
        obtained_at=now - dt.timedelta(seconds=61),
    )


def test_real_oidc_server_refresh_and_rejection(engine: Engine, oidc_server: OIDCServer) -> None:
    issued = oidc_server.obtain_tokens()
    config = {
        "issuer": oidc_server.issuer,
        "client_id": oidc_server.client_id,
        "client_secret": oidc_server.client_secret,
    }
    add_account(engine.store, "corp", "oidc", config, _stale(issued))
    bogus = {**issued, "refresh_token": "not-a-refresh-token"}
    add_account(engine.store, "gone", "oidc", config, _stale(bogus))
    oidc_server.reset_stats()
    on_account_ready(engine.store, "corp", manager=engine.manager)
    on_account_ready(engine.store, "gone", manager=engine.manager)
    assert engine.run_due() == 2
    stats = oidc_server.stats()
    assert stats["refresh_success"] == 1 and stats["refresh_errors"].get("invalid_grant") == 1
    corp = engine.store.get_account("corp")
    assert corp is not None and corp.tokens.access_token != issued["access_token"]
    assert refresh_metrics(engine.store, "corp").background_refreshes == 1
    gone = engine.store.get_account("gone")
    assert gone is not None and gone.status == "needs_login"
    run = engine.manager.history(name=token_refresh_work_name("gone"))[0]
    assert run.outcome == "failure" and run.output
    assert "stayfresh login gone" in run.output["message"]


def test_recorded_requests_carry_the_refresh_grant(
    engine: Engine, token_server: FakeTokenServer
) -> None:
    seen: list[Seen] = []

    def handler(request: Seen) -> Reply:
        seen.append(request)
        return token_reply("new", refresh="rotated")

    token_server.handler = handler
    add_oauth2(engine.store, "alice", token_server.url, expires_in=60)
    on_account_ready(engine.store, "alice", manager=engine.manager)
    assert engine.run_due() == 1
    assert seen[0].form["grant_type"] == "refresh_token"
    row = engine.store.get_account("alice")
    assert row is not None and row.tokens.refresh_token == "rotated"


def test_daemon_started_with_db_flag_refreshes_that_database(
    db_path: Path, store: Store, token_server: FakeTokenServer, tmp_path: Path
) -> None:
    """An installed service runs ``stayfresh --db PATH daemon``: no STAYFRESH_DB, and the
    default database (under the data home) is another, empty one. The worker must still
    refresh the account of PATH."""
    add_oauth2(store, "alice", token_server.token_url, expires_in=60)
    token_server.handler = lambda seen: token_reply("from-daemon", expires_in=3600)
    store.set_setting("constraints.network", "unmetered")  # whatever this machine has
    on_account_ready(store, "alice", manager=WorkManager(store, waker=NullWaker()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "elsewhere")
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from stayfresh.cli import main; main()",
             "--db", str(db_path), "-v", "daemon"],
            env=env, stderr=err, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(
                lambda: bool(
                    WorkManager(store, waker=NullWaker()).history(
                        name=token_refresh_work_name("alice")
                    )
                ),
                what="the daemon's first token check",
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    run = WorkManager(store, waker=NullWaker()).history(name=token_refresh_work_name("alice"))[0]
    assert run.outcome == "success", log_path.read_text()
    row = store.get_account("alice")
    assert row is not None and row.tokens.access_token == "from-daemon"
    assert refresh_metrics(store, "alice").background_refreshes == 1
    assert not (tmp_path / "elsewhere" / "stayfresh" / "stayfresh.db").exists()


def test_the_user_is_notified_through_the_configured_sinks(
    engine: Engine, token_server: FakeTokenServer
) -> None:
    """A real Apprise ``json://`` sink posts to a local HTTP endpoint, once."""
    inbox = FakeTokenServer(lambda seen: Reply(200, {"ok": True})).start()
    try:
        host = inbox.url.removeprefix("http://")
        engine.store.add_notify_sink(
            "apprise", f"json://{host}/inbox", at_least_once=False, now=engine.clock.now
        )
        add_oauth2(engine.store, "alice", token_server.token_url, expires_in=-60)
        token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
        on_account_ready(engine.store, "alice", manager=engine.manager)
        assert engine.run_due() == 1
        assert [r.path for r in inbox.requests] == ["/inbox"]
        engine.clock.advance(DAY)
        assert engine.run_due() == 1  # still needs a login: no second notification
        assert len(inbox.requests) == 1
    finally:
        inbox.stop()
