"""Shared pieces of the library and download tests: the fake Audible and an account on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from fake_audible import FakeAudible
from stayfresh.store import Store
from stayfresh.testing import FakeClock
from stayfresh.tokens import Keeper, TokenSet, add_account, set_default_keeper

REFRESH = "Atnr|fake-refresh"


def add_audible_account(store: Store, fake: FakeAudible, name: str = "me") -> None:
    """An ``amazon`` account whose token endpoint and API are the fake (no access token yet)."""
    add_account(
        store,
        name,
        "amazon",
        {"token_url": fake.token_url, "api_url": fake.url},
        TokenSet(access_token=None, refresh_token=REFRESH, expires_at=None),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())


@pytest.fixture
def audible() -> Iterator[FakeAudible]:
    fake = FakeAudible(items=10_000).start()
    yield fake
    fake.stop()


@pytest.fixture
def account(store: Store, audible: FakeAudible) -> str:
    add_audible_account(store, audible)
    return "me"


@pytest.fixture
def default_keeper_on(store: Store) -> Iterator[Keeper]:
    """Workers find their keeper through the default one (the engine passes no store yet)."""
    keeper = Keeper(store, timeout=5.0)
    set_default_keeper(keeper)
    yield keeper
    set_default_keeper(None)
    keeper.close()
