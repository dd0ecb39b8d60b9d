"""Shared fixtures: a temporary store, a keeper on it, fake and real token servers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_token_server import FakeTokenServer
from stayfresh.store import SQLiteStore, Store
from stayfresh.tokens import Keeper, TokenSet, add_account

pytest_plugins = ["oidc_server", "library_helpers", "pg_server", "hostile_server"]

UTC = dt.UTC
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "stayfresh.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = SQLiteStore(db_path)
    yield s
    s.close()


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    server = FakeTokenServer().start()
    yield server
    server.stop()


@pytest.fixture
def keeper(store: Store) -> Iterator[Keeper]:
    k = Keeper(store, timeout=2.0, lock_timeout=20.0)
    yield k
    k.close()


def add_oauth2(
    store: Store,
    name: str,
    token_url: str,
    *,
    expires_in: float = 60,
    access: str = "old-access",
    refresh: str = "old-refresh",
    client_id: str = "client",
    client_secret: str | None = "secret",
    **config: object,
) -> None:
    """Store an oauth2 account whose access token expires ``expires_in`` s from now."""
    now = dt.datetime.now(UTC)
    cfg: dict[str, object] = {"token_url": token_url, "client_id": client_id, **config}
    if client_secret:
        cfg["client_secret"] = client_secret
    add_account(
        store,
        name,
        "oauth2",
        cfg,
        TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=now + dt.timedelta(seconds=expires_in),
            obtained_at=now - dt.timedelta(hours=1),
        ),
    )


def run_cli(
    *args: str, db: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stayfresh.cli`` in a real subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    full_env.update(env or {})
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()"]
    if db is not None:
        cmd += ["--db", str(db)]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=full_env, input=input, timeout=120
    )
