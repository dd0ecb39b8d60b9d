"""Semantics of ensure_valid_token: thresholds, keeping tokens, failures, windows, CAS."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from email.utils import format_datetime
from pathlib import Path

import pytest

from conftest import add_oauth2
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from stayfresh.errors import ReauthRequired, TransientError
from stayfresh.store import Store
from stayfresh.testing import FakeClock, wait_for
from stayfresh.tokens import Keeper, TokenSet, effective_threshold, refresh_metrics

UTC = dt.UTC


def test_valid_token_is_returned_untouched(store: Store, token_server: FakeTokenServer) -> None:
    add_oauth2(store, "a", token_server.token_url, expires_in=3600)
    keeper = Keeper(store)
    result = keeper.ensure_valid_token("a")
    assert (result.access_token, result.was_refreshed) == ("old-access", False)
    assert token_server.count == 0


def test_refreshes_inside_threshold_and_per_call_thresholds(
    store: Store, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda s: token_reply(access="new", expires_in=3600)
    add_oauth2(store, "a", token_server.token_url, expires_in=20 * 60)  # 20 min left
    keeper = Keeper(store)
    # background sync uses 5 minutes: still valid
    assert keeper.ensure_valid_token("a", dt.timedelta(minutes=5)).was_refreshed is False
    # user-facing default is 30 minutes: refresh
    result = keeper.ensure_valid_token("a")
    assert (result.access_token, result.was_refreshed) == ("new", True)
    assert token_server.count == 1
    assert token_server.requests[0].form["refresh_token"] == "old-refresh"
    # the new token is stored durably and the next call is served from memory
    assert store.get_account("a").tokens.access_token == "new"  # type: ignore[union-attr]
    assert keeper.ensure_valid_token("a").was_refreshed is False
    assert token_server.count == 1


def test_short_lived_token_is_not_refreshed_on_every_call(
    store: Store, token_server: FakeTokenServer
) -> None:
    clock = FakeClock()
    token_server.handler = lambda s: token_reply(access=f"a{token_server.count}", expires_in=60)
    add_oauth2(store, "a", token_server.token_url, expires_in=-1)
    keeper = Keeper(store, clock=clock)
    assert keeper.ensure_valid_token("a").was_refreshed
    for _ in range(20):  # a 60 s token with a 30 min threshold
        clock.advance(1)
        assert not keeper.ensure_valid_token("a").was_refreshed
    assert token_server.count == 1
    clock.advance(15)  # past half its lifetime: refresh again
    assert keeper.ensure_valid_token("a").was_refreshed
    tokens = store.get_account("a").tokens  # type: ignore[union-attr]
    assert tokens.expires_at is not None and tokens.obtained_at is not None
    assert effective_threshold(TokenSet.from_row(tokens), 1800) == pytest.approx(30, abs=0.01)


def test_refresh_token_kept_when_none_returned_and_rotated_one_persisted(
    store: Store, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "a", token_server.token_url, expires_in=-1)
    keeper = Keeper(store)
    token_server.handler = lambda s: token_reply(access="n1")
    keeper.ensure_valid_token("a")
    assert store.get_account("a").tokens.refresh_token == "old-refresh"  # type: ignore[union-attr]
    token_server.handler = lambda s: token_reply(access="n2", refresh="rotated")
    keeper.ensure_valid_token("a", force=True)
    assert store.get_account("a").tokens.refresh_token == "rotated"  # type: ignore[union-attr]
    keeper.ensure_valid_token("a", force=True)
    assert token_server.requests[-1].form["refresh_token"] == "rotated"


def test_failed_refresh_with_valid_token_returns_current_token(
    store: Store, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    token_server.handler = lambda s: Reply(status=503, body="<html>down</html>")
    add_oauth2(store, "a", token_server.token_url, expires_in=600)  # inside 30 min, not expired
    keeper = Keeper(store)
    with caplog.at_level(logging.WARNING, logger="stayfresh"):
        result = keeper.ensure_valid_token("a")
    assert (result.access_token, result.was_refreshed) == ("old-access", False)
    assert "using the current token" in caplog.text
    row = store.get_account("a")
    assert row is not None and row.version == 1 and row.tokens.access_token == "old-access"
    assert refresh_metrics(store, "a").failures == 1


def test_expired_token_and_failed_refresh_raises(
    store: Store, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda s: Reply(status=502, body="bad gateway")
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    with pytest.raises(TransientError):
        Keeper(store).ensure_valid_token("a")


def test_failure_is_shared_and_cooldown_prevents_retry_storm(
    store: Store, token_server: FakeTokenServer
) -> None:
    clock = FakeClock()

    def slow_fail(seen: Seen) -> Reply:
        time.sleep(0.3)
        return Reply(status=500, body="oops")

    token_server.handler = slow_fail
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    keeper = Keeper(store, clock=clock, cooldown=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            keeper.ensure_valid_token("a")
        except TransientError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 20 and token_server.count == 1
    with pytest.raises(TransientError):  # within the cooldown: no new request
        keeper.ensure_valid_token("a")
    assert token_server.count == 1
    token_server.handler = lambda s: token_reply(access="back")
    with pytest.raises(TransientError):
        keeper.ensure_valid_token("a")
    clock.advance(31)
    assert keeper.ensure_valid_token("a").access_token == "back"
    assert token_server.count == 2


def test_force_ignores_cooldown(store: Store, token_server: FakeTokenServer) -> None:
    token_server.handler = lambda s: Reply(status=500)
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    keeper = Keeper(store)
    with pytest.raises(TransientError):
        keeper.ensure_valid_token("a")
    token_server.handler = lambda s: token_reply(access="forced")
    assert keeper.ensure_valid_token("a", force=True).access_token == "forced"


def test_callers_outside_mandatory_window_do_not_wait(
    store: Store, token_server: FakeTokenServer
) -> None:
    release = threading.Event()

    def blocked(seen: Seen) -> Reply:
        release.wait(10)
        return token_reply(access="new")

    token_server.handler = blocked
    add_oauth2(store, "a", token_server.token_url, expires_in=10 * 60)  # 10 min left: stale
    keeper = Keeper(store, mandatory_window=dt.timedelta(minutes=2))
    leader = threading.Thread(target=keeper.ensure_valid_token, args=("a",))
    leader.start()
    wait_for(lambda: token_server.count == 1, what="the refresh request")
    # a refresh is in flight; the current token is good for 10 min > 2 min: use it now
    result = keeper.ensure_valid_token("a")
    assert (result.access_token, result.was_refreshed) == ("old-access", False)
    release.set()
    leader.join()
    assert keeper.ensure_valid_token("a").access_token == "new"
    assert token_server.count == 1


def test_callers_inside_mandatory_window_wait_for_the_refresh(
    store: Store, token_server: FakeTokenServer
) -> None:
    release = threading.Event()

    def blocked(seen: Seen) -> Reply:
        release.wait(10)
        return token_reply(access="new")

    token_server.handler = blocked
    add_oauth2(store, "a", token_server.token_url, expires_in=60)  # 1 min left: mandatory
    keeper = Keeper(store)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(keeper.ensure_valid_token("a")))
        for _ in range(5)
    ]
    threads[0].start()
    wait_for(lambda: token_server.count == 1, what="the refresh request")
    for t in threads[1:]:
        t.start()
    time.sleep(0.1)
    assert results == []  # all waiting on the one refresh
    release.set()
    for t in threads:
        t.join()
    assert {r.access_token for r in results} == {"new"} and token_server.count == 1


def test_stale_writer_cannot_overwrite_newer_token(
    store: Store, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "a", token_server.token_url)
    row = store.get_account("a")
    assert row is not None
    newer = TokenSet(access_token="newer", refresh_token="r2", expires_at=None).to_row()
    assert store.swap_tokens("a", row.version, newer) == row.version + 1
    stale = TokenSet(access_token="stale", refresh_token="r1", expires_at=None).to_row()
    assert store.swap_tokens("a", row.version, stale) is None
    assert store.get_account("a").tokens.access_token == "newer"  # type: ignore[union-attr]


def test_refresh_by_another_process_is_picked_up(
    store: Store, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "a", token_server.token_url, expires_in=3600)
    clock = FakeClock()
    keeper = Keeper(store, clock=clock)
    assert keeper.ensure_valid_token("a").access_token == "old-access"
    # "another process" refreshes and stores a new token
    row = store.get_account("a")
    assert row is not None
    fresh = TokenSet(
        access_token="from-elsewhere",
        refresh_token="old-refresh",
        expires_at=dt.datetime.fromtimestamp(clock.now + 7200, UTC),
        obtained_at=dt.datetime.fromtimestamp(clock.now, UTC),
    )
    store.swap_tokens("a", row.version, fresh.to_row())
    assert keeper.ensure_valid_token("a").access_token == "old-access"  # cached, still valid
    clock.advance(3600 - 29 * 60)  # the cached token enters its threshold: re-read
    result = keeper.ensure_valid_token("a")
    assert result.access_token == "from-elsewhere" and token_server.count == 0


def test_invalid_grant_after_rotation_by_another_process_uses_the_new_token(
    store: Store, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)

    def handler(seen: Seen) -> Reply:
        if seen.form["refresh_token"] == "old-refresh":
            # meanwhile another process rotated the token and stored the result
            row = store.get_account("a")
            assert row is not None
            store.swap_tokens(
                "a",
                row.version,
                TokenSet(
                    access_token="theirs",
                    refresh_token="rotated-by-them",
                    expires_at=dt.datetime.now(UTC) - dt.timedelta(seconds=1),
                ).to_row(),
            )
            return Reply(status=400, body={"error": "invalid_grant"})
        return token_reply(access="mine", refresh="rotated-again")

    token_server.handler = handler
    result = Keeper(store).ensure_valid_token("a")
    assert result.access_token == "mine"
    row = store.get_account("a")
    assert row is not None and row.status == "ok" and row.tokens.refresh_token == "rotated-again"


def test_invalid_grant_marks_needs_login_and_is_not_retried(
    store: Store, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda s: Reply(status=400, body={"error": "invalid_grant"})
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    keeper = Keeper(store, cooldown=0)
    with pytest.raises(ReauthRequired) as info:
        keeper.ensure_valid_token("a")
    assert info.value.account == "a"
    assert store.get_account("a").status == "needs_login"  # type: ignore[union-attr]
    with pytest.raises(ReauthRequired):
        Keeper(store).ensure_valid_token("a")
    assert token_server.count == 1


def test_date_header_corrects_absolute_expiry_for_clock_skew(
    store: Store, token_server: FakeTokenServer
) -> None:
    server_now = dt.datetime.now(UTC) + dt.timedelta(hours=1)  # server clock 1 h ahead
    token_server.handler = lambda s: Reply(
        body={
            "access_token": "skewed",
            "expires_at": (server_now + dt.timedelta(minutes=60)).isoformat(),
        },
        headers={"Date": format_datetime(server_now, usegmt=True)},
    )
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    result = Keeper(store).ensure_valid_token("a")
    assert result.expires_at is not None
    left = (result.expires_at - dt.datetime.now(UTC)).total_seconds()
    assert 58 * 60 < left < 61 * 60  # 60 min on our clock, not 120


def test_expires_in_counts_from_send_time(store: Store, token_server: FakeTokenServer) -> None:
    delay = 1.0  # the answer comes at least this long after the request was sent
    token_server.handler = lambda seen: Reply(
        delay=delay, body={"access_token": "new", "expires_in": 100}
    )
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    before = dt.datetime.now(UTC).timestamp()
    result = Keeper(store).ensure_valid_token("a")
    after = dt.datetime.now(UTC).timestamp()
    assert result.expires_at is not None
    # sent between `before` and `after - delay`; counted from receipt it would be later
    assert before + 100 <= result.expires_at.timestamp() <= after - delay + 100


def test_metrics_count_jit_and_background(store: Store, token_server: FakeTokenServer) -> None:
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    keeper = Keeper(store)
    keeper.ensure_valid_token("a")
    keeper.ensure_valid_token("a", force=True, background=True)
    m = refresh_metrics(store, "a")
    assert (m.jit_refreshes, m.background_refreshes, m.failures) == (1, 1, 0)
    assert m.avg_latency_ms is not None and m.p95_latency_ms is not None


def test_async_single_flight_and_threads_share_one_refresh(
    store: Store, token_server: FakeTokenServer
) -> None:
    def slow(seen: Seen) -> Reply:
        time.sleep(0.3)
        return token_reply(access="new", expires_in=3600)

    token_server.handler = slow
    add_oauth2(store, "a", token_server.token_url, expires_in=-5)
    keeper = Keeper(store)

    async def tasks() -> set[str | None]:
        results = await asyncio.gather(*(keeper.aensure_valid_token("a") for _ in range(50)))
        return {r.access_token for r in results}

    thread_results: list[str | None] = []
    threads = [
        threading.Thread(
            target=lambda: thread_results.append(keeper.ensure_valid_token("a").access_token)
        )
        for _ in range(50)
    ]
    for t in threads:
        t.start()
    assert asyncio.run(tasks()) == {"new"}
    for t in threads:
        t.join()
    assert set(thread_results) == {"new"} and token_server.count == 1


def test_module_level_functions_use_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token_server: FakeTokenServer
) -> None:
    from stayfresh import aensure_valid_token, ensure_valid_token
    from stayfresh.store import open_store
    from stayfresh.tokens import set_default_keeper

    monkeypatch.setenv("STAYFRESH_DB", str(tmp_path / "env.db"))
    store = open_store()
    add_oauth2(store, "env", token_server.token_url, expires_in=-5)
    token_server.handler = lambda s: token_reply(access="via-default")
    set_default_keeper(None)
    try:
        assert ensure_valid_token("env").access_token == "via-default"
        assert asyncio.run(aensure_valid_token("env")).was_refreshed is False
    finally:
        set_default_keeper(None)
