"""Shared fixtures: a temporary store, a keeper on it, fake and real token servers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_token_server import FakeTokenServer
from stayfresh.store import SQLiteStore, Store
from stayfresh.tokens import Keeper, TokenSet, add_account

pytest_plugins = ["store_backends", "oidc_server", "library_helpers", "pg_server", "hostile_server"]

UTC = dt.UTC
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a peer, so ``make test-quick`` can leave it out.

    ``postgres``: uses the PostgreSQL server (the ``pg_server``/``pg_url``
    fixtures, or a ``"postgres"`` parameter that asks for them at run time);
    ``oidc``: uses the oidc-provider server (node).
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec is not None else []
        if "pg_server" in names or any(isinstance(v, str) and v == "postgres" for v in params):
            item.add_marker(pytest.mark.postgres)
        if "oidc_server_factory" in names:
            item.add_marker(pytest.mark.oidc)


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


#: loggers the CLI's ``setup_logging`` takes over (handlers, level, propagate)
_CLI_LOGGERS = ("stayfresh", "psycopg", "httpx2", "httpx")


def invoke_cli(
    *args: str, db: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process with click's ``CliRunner``; same result shape as :func:`run_cli`.

    For tests of what a command does and prints, where a new interpreter is not
    the point (not for signals, exit on SIGINT, env inheritance, import speed,
    daemons: use :func:`run_cli`). Isolation: ``STAYFRESH_*`` variables of this
    process are unset and ``env`` applied only for the call; the loggers the CLI
    configures are restored after it; pass ``db`` (``--db``) rather than relying
    on a default. An exception the CLI does not handle is printed to ``stderr``
    with exit code 1, as the interpreter would.
    """
    from click.testing import CliRunner

    from stayfresh.cli import cli

    call_env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("STAYFRESH_")}
    call_env.update(env or {})
    argv = (["--db", str(db)] if db is not None else []) + list(args)
    saved = [
        (lg, lg.handlers[:], lg.level, lg.propagate)
        for lg in map(logging.getLogger, _CLI_LOGGERS)
    ]
    try:
        result = CliRunner().invoke(cli, argv, input=input, env=call_env, catch_exceptions=True)
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, stderr)


def run_cli(
    *args: str, db: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stayfresh.cli`` in a real subprocess (see :func:`invoke_cli`)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    full_env.update(env or {})
    cmd = [sys.executable, "-c", "from stayfresh.cli import main; main()"]
    if db is not None:
        cmd += ["--db", str(db)]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=full_env, input=input, timeout=120
    )
