"""A "needs login" event and a "recovered" event reach every sink once each, not on every retry.

Whoever finds the rejection first — the background work, or the just-in-time
layer of a command — the sinks hear of it once; a new login (or a background
refresh that works again) is announced once as "recovered".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply, token_reply
from notify_helpers import Webhook, webhook
from stayfresh.jobs import on_account_ready
from stayfresh.jobs.internal import refresh_account
from stayfresh.store import SQLiteStore, Store
from stayfresh.tokens import Keeper


@pytest.fixture
def hooked(db_path: Path) -> Iterator[tuple[Store, Webhook]]:
    store = SQLiteStore(db_path)
    with webhook() as hook:
        store.add_notify_sink("apprise", hook.url, at_least_once=False, now=time.time())
        yield store, hook
    store.close()


def test_a_rejection_is_announced_once_and_a_new_login_once(
    hooked: tuple[Store, Webhook], token_server: FakeTokenServer
) -> None:
    store, hook = hooked
    add_oauth2(store, "work", token_server.token_url, expires_in=60)
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    keeper = Keeper(store)
    for _ in range(3):  # the rejection, then two periods that fail at once
        assert refresh_account(keeper, "work").kind == "failure"
    assert hook.titles() == ["stayfresh: work needs a new login"]
    store.set_status("work", "ok")  # what a new login does, then the CLI arms the works
    on_account_ready(store, "work")
    on_account_ready(store, "work")
    assert hook.titles() == ["stayfresh: work needs a new login", "stayfresh: work recovered"]


def test_a_rejection_found_just_in_time_is_announced_by_the_next_background_run(
    hooked: tuple[Store, Webhook], token_server: FakeTokenServer
) -> None:
    store, hook = hooked
    add_oauth2(store, "work", token_server.token_url, expires_in=60)
    store.set_status("work", "needs_login", "refresh token rejected")  # the keeper did it
    assert hook.titles() == []
    keeper = Keeper(store)
    refresh_account(keeper, "work")
    refresh_account(keeper, "work")
    assert hook.titles() == ["stayfresh: work needs a new login"]


def test_a_background_refresh_that_works_again_is_announced_as_recovered(
    hooked: tuple[Store, Webhook], token_server: FakeTokenServer
) -> None:
    store, hook = hooked
    add_oauth2(store, "work", token_server.token_url, expires_in=60)
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    keeper = Keeper(store)
    refresh_account(keeper, "work")
    store.set_status("work", "ok")  # signed in again elsewhere, without the CLI
    token_server.handler = lambda seen: token_reply(access="again", expires_in=3600)
    later = Keeper(store)  # the next period's daemon: no failure cooldown in memory
    assert refresh_account(later, "work").kind == "success"
    assert refresh_account(later, "work").kind == "success"
    assert hook.titles() == ["stayfresh: work needs a new login", "stayfresh: work recovered"]


def test_a_healthy_account_announces_nothing(
    hooked: tuple[Store, Webhook], token_server: FakeTokenServer
) -> None:
    store, hook = hooked
    add_oauth2(store, "work", token_server.token_url, expires_in=3600)
    on_account_ready(store, "work")
    assert refresh_account(Keeper(store), "work").kind == "success"
    assert hook.titles() == []


def test_a_rejection_found_by_stayfresh_token_is_announced_at_once(
    hooked: tuple[Store, Webhook], token_server: FakeTokenServer, db_path: Path
) -> None:
    store, hook = hooked
    add_oauth2(store, "work", token_server.token_url, expires_in=-60)  # expired: must refresh
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    for _ in range(2):
        done = invoke_cli("token", "work", db=db_path)
        assert done.returncode == 3 and "stayfresh login work" in done.stderr
    assert hook.titles() == ["stayfresh: work needs a new login"]
    refresh_account(Keeper(store), "work")  # the background run does not say it again
    assert hook.titles() == ["stayfresh: work needs a new login"]
