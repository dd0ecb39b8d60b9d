"""Single flight when the refresh lock dies with its database connection (real PostgreSQL).

On PostgreSQL the refresh lock is an advisory lock held by one connection. When
that connection dies (a restart, ``pg_terminate_backend``) the server frees the
lock while its holder still waits for the provider. The durable refresh intent
(committed before the request) is the fence: a second caller that gets the lock
finds another process spending the very same refresh token and waits for its
result instead of sending the token again — which a rotating provider answers
by revoking the login.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pg_server import PGServer
from stayfresh.errors import StoreUnavailable
from stayfresh.store import PostgresStore, open_store
from stayfresh.testing import LocalTokenServer, wait_for
from stayfresh.tokens import TokenSet, add_account

#: no call may take longer than this (seconds), whatever the server does
CALL_DEADLINE = 60.0

FORCED_REFRESH = (
    "import sys\n"
    "from stayfresh.store import open_store\n"
    "from stayfresh.tokens import Keeper\n"
    "keeper = Keeper(open_store(sys.argv[1]), timeout=30)\n"
    "print(keeper.ensure_valid_token('acct', force=True).access_token, flush=True)\n"
)


def test_a_refresh_whose_lock_died_with_its_connection_is_not_sent_twice(pg_url: str) -> None:
    import psycopg

    with LocalTokenServer(access_ttl=3600, rotate=True, revoke_on_reuse=True, delay=4.0) as server:
        store = open_store(pg_url)
        now = dt.datetime.now(dt.UTC)
        add_account(
            store, "acct", "oauth2",
            {"token_url": server.token_url, "client_id": server.client_id,
             "client_secret": server.client_secret},
            TokenSet(access_token="old", refresh_token=server.issue_refresh_token(),
                     expires_at=now + dt.timedelta(hours=1), obtained_at=now),
        )  # fmt: skip
        first = subprocess.Popen(
            [sys.executable, "-c", FORCED_REFRESH, pg_url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # its intent is committed and its request is at the (slow) provider
        wait_for(lambda: store.refresh_intent("acct") is not None and server.requests, 30)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            holders = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ).fetchall()
            assert len(holders) == 1
            admin.execute("SELECT pg_terminate_backend(%s)", (holders[0][0],))
            wait_for(
                lambda: (
                    not admin.execute(
                        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    ).fetchall()
                ),
                10,
            )
        second = subprocess.Popen(
            [sys.executable, "-c", FORCED_REFRESH, pg_url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out1, err1 = first.communicate(timeout=60)
        out2, err2 = second.communicate(timeout=60)
        assert first.returncode == 0, err1
        assert second.returncode == 0, err2
        assert (server.refreshes, server.rejected) == (1, 0)  # the token was sent once
        assert out1.strip() == out2.strip() != "old"  # both callers got the one new token
        row = store.get_account("acct")
        assert row is not None and row.status == "ok" and row.tokens.access_token == out1.strip()
        assert store.refresh_intent("acct") is None
        store.close()


def test_the_refresh_lock_rides_out_lost_connections_and_types_a_server_down(
    pg_server: PGServer,
) -> None:
    """Taking the lock goes through the store's retry policy: connections cut under it are
    replaced; a server that stays down is ``StoreUnavailable`` (exit 4), never a raw
    psycopg error or a pool timeout."""
    url = pg_server.create_database()
    store = PostgresStore(url, retry_for=20)
    lock = store.lock("token", "a")
    assert lock.acquire(0)
    lock.release()
    pg_server.terminate_connections(url)  # the lock pool's idle connections are all dead
    assert lock.acquire(0)  # on a fresh connection
    lock.release()
    short = PostgresStore(url, retry_for=2)
    pg_server.down()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            short.lock("token", "b").acquire(0)
        assert raised.value.exit_code == 4 and time.monotonic() - started < 30
    finally:
        pg_server.up()
    assert store.lock("token", "a").acquire(5)  # back once the server is
    store.lock("token", "a").release()
    store.close()
    short.close()


def test_every_connection_has_a_statement_limit(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement of a stuck server holds nobody forever: ``STAYFRESH_STATEMENT_TIMEOUT``."""
    monkeypatch.setenv("STAYFRESH_STATEMENT_TIMEOUT", "1.5")
    store = PostgresStore(pg_url, retry_for=5)
    assert store.statement_timeout == 1.5
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="ran too long"):
        store._retrying(lambda conn: conn.execute("SELECT pg_sleep(10)"))
    assert time.monotonic() - started < 5
    lock = store.lock("token", "a")
    assert lock.acquire(3)  # a lock wait is bounded by its own timeout, not the statement limit
    lock.release()
    store.close()


def test_eight_processes_forcing_refreshes_through_ten_restarts_keep_the_login(
    pg_server: PGServer, tmp_path: Path
) -> None:
    """8 processes run ``stayfresh token --force`` in a loop while the server restarts 10
    times (fast and immediate): every call ends in time with exit 0 or 4 and no traceback,
    and on a provider that revokes the grant on reuse the login survives."""
    import psycopg

    url = pg_server.create_database()
    # the test server runs with synchronous_commit=off for speed: a commit it acknowledged
    # could vanish in an immediate shutdown; a real server's commits are durable
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("ALTER DATABASE " + url.rsplit("/", 1)[1] + " SET synchronous_commit = on")
    with LocalTokenServer(rotate=True, revoke_on_reuse=True, delay=0.2) as server:
        store = PostgresStore(url)
        now = dt.datetime.now(dt.UTC)
        add_account(
            store, "acct", "oauth2",
            {"token_url": server.token_url, "client_id": server.client_id,
             "client_secret": server.client_secret},
            TokenSet(access_token="old", refresh_token=server.issue_refresh_token(),
                     expires_at=now + dt.timedelta(hours=1), obtained_at=now),
        )  # fmt: skip
        store.close()
        stop = threading.Event()
        calls: list[tuple[int, float, str]] = []
        guard = threading.Lock()
        env = {**os.environ, "STAYFRESH_DB": url}

        def loop() -> None:
            while not stop.is_set():
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "stayfresh", "token", "acct", "--force",
                     "--timeout", "20"],
                    env=env, capture_output=True, text=True, timeout=CALL_DEADLINE,
                )  # fmt: skip
                with guard:
                    calls.append((done.returncode, time.monotonic() - started, done.stderr))

        workers = [threading.Thread(target=loop) for _ in range(8)]
        for w in workers:
            w.start()
        try:
            for i in range(10):
                time.sleep(1.0)
                pg_server.down("fast" if i % 2 else "immediate")
                time.sleep(0.3)
                pg_server.up()
            time.sleep(2.0)
        finally:
            stop.set()
            for w in workers:
                w.join(CALL_DEADLINE + 10)
        codes = collections.Counter(code for code, _, _ in calls)
        assert set(codes) <= {0, 4}, codes
        assert codes[0] > 0
        assert not [err for _, _, err in calls if "Traceback" in err]
        assert max(took for _, took, _ in calls) < CALL_DEADLINE
        store = PostgresStore(url)
        row = store.get_account("acct")
        assert row is not None and row.status == "ok"
        assert server.is_live(row.tokens.refresh_token)  # the stored token is the live one
        assert server.rejected == 0  # no refresh token was ever sent twice
        store.close()
