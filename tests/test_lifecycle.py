"""Account lifecycle: add, import and login arm the works; logout cancels them and forgets secrets."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Seen, token_reply
from oidc_server import OIDCServer
from stayfresh.errors import AccountNotFound
from stayfresh.jobs import logout, on_account_ready, save_setting
from stayfresh.jobs.internal import account_tag, library_sync_work_name, token_refresh_work_name
from stayfresh.store import Store
from stayfresh.tokens import Keeper, TokenSet, refresh_metrics, replace_tokens
from stayfresh.work import NullWaker, WorkManager, WorkRequest, WorkState

UTC = dt.UTC


def states(store: Store, name: str) -> list[WorkState]:
    return [w.state for w in WorkManager(store, waker=NullWaker()).by_name(name)]


def test_cli_account_add_schedules_the_works(db_path: Path, store: Store) -> None:
    save_setting(store, "sync_frequency", "12h")
    done = invoke_cli(
        "account", "add", "alice", "--provider", "oauth2",
        "--token-url", "http://127.0.0.1:9/token", "--client-id", "c",
        "--refresh-token-env", "RT", db=db_path, env={"RT": "rt-secret-1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert states(store, token_refresh_work_name("alice")) == [WorkState.ENQUEUED]
    assert states(store, library_sync_work_name("alice")) == [WorkState.ENQUEUED]


def test_cli_account_import_schedules_token_refresh_only_when_sync_is_manual(
    db_path: Path, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "acct.json"
    path.write_text(
        json.dumps(
            {
                "provider": "oauth2",
                "token_url": "http://127.0.0.1:9/t",
                "client_id": "c",
                "refresh_token": "r-1",
            }
        )
    )
    done = invoke_cli("account", "import", "bob", str(path), db=db_path)
    assert done.returncode == 0, done.stderr
    assert states(store, token_refresh_work_name("bob")) == [WorkState.ENQUEUED]
    assert states(store, library_sync_work_name("bob")) == []


def test_auto_token_refresh_off_schedules_nothing(store: Store) -> None:
    save_setting(store, "auto_token_refresh", "off")
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    changes = on_account_ready(store, "alice", manager=WorkManager(store, waker=NullWaker()))
    assert [c.action for c in changes] == ["none", "none"]


def _spawn(db: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env.update(STAYFRESH_NO_BROWSER="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_login_arms_the_works_again_after_logout(
    db_path: Path, store: Store, oidc_server: OIDCServer
) -> None:
    proc = _spawn(
        db_path, "login", "corp", "--device", "--provider", "oidc",
        "--issuer", oidc_server.issuer, "--client-id", oidc_server.public_client_id,
        "--auth-method", "none",
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:
        seen += line
        match = re.search(r"enter the code: (\S+)", line)
        if match:
            oidc_server.complete_device_login(match.group(1))
            break
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, seen + err
    assert states(store, token_refresh_work_name("corp")) == [WorkState.ENQUEUED]

    done = invoke_cli("logout", "corp", db=db_path)
    assert done.returncode == 0, done.stderr
    assert "1 work(s) cancelled" in done.stdout
    assert states(store, token_refresh_work_name("corp")) == [WorkState.CANCELLED]

    proc = _spawn(db_path, "login", "corp", "--device")
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"enter the code: (\S+)", line)
        if match:
            oidc_server.complete_device_login(match.group(1))
            break
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert states(store, token_refresh_work_name("corp")) == [
        WorkState.ENQUEUED,
        WorkState.CANCELLED,
    ]
    row = store.get_account("corp")
    assert row is not None and row.status == "ok"


def _rotating(server: FakeTokenServer) -> list[str]:
    issued: list[str] = []

    def handler(seen: Seen) -> object:
        n = len(issued) // 2 + 1
        access, refresh = f"ACCESS-{n:04d}-xyzzy", f"REFRESH-{n:04d}-plugh"
        issued.extend([access, refresh])
        return token_reply(access, refresh=refresh, expires_in=1)

    server.handler = handler  # type: ignore[assignment]
    return issued


def test_logout_cancels_works_forgets_secrets_and_keeps_the_rest(
    db_path: Path, store: Store, token_server: FakeTokenServer
) -> None:
    manager = WorkManager(store, waker=NullWaker())
    save_setting(store, "sync_frequency", "6h")
    add_oauth2(
        store, "alice", token_server.token_url, expires_in=-1,
        access="ACCESS-0000-xyzzy", refresh="REFRESH-0000-plugh",
        client_secret="CLIENT-SECRET-frobozz", device_serial="SERIAL-zorkmid",
    )  # fmt: skip
    add_oauth2(store, "bob", token_server.token_url, expires_in=3600)
    for name in ("alice", "bob"):
        on_account_ready(store, name, manager=manager)
    manager.enqueue(
        WorkRequest.one_time("noop", tags=(account_tag("alice"),)), name="download:alice:B01"
    )
    issued = _rotating(token_server)
    with Keeper(store, cooldown=0) as keeper:
        for _ in range(3):  # rotate a few times: old tokens linger in free space
            keeper.ensure_valid_token("alice", force=True)
            with contextlib.closing(sqlite3.connect(db_path)) as conn:  # as over days of use
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    secrets = [
        "ACCESS-0000-xyzzy", "REFRESH-0000-plugh", "CLIENT-SECRET-frobozz", "SERIAL-zorkmid",
        *issued,
    ]  # fmt: skip
    blob = _database_bytes(db_path)
    assert any(s.encode() in blob for s in secrets)  # the scan can see them

    result = logout(store, "alice", manager=manager)
    assert len(result.cancelled) == 3  # token refresh, library sync, the download
    assert set(result.forgot) == {"access_token", "refresh_token", "client_secret", "device_serial"}
    for work in manager.by_tag(account_tag("alice")):
        assert work.state is WorkState.CANCELLED
    assert {w.state for w in manager.by_tag(account_tag("bob"))} == {WorkState.ENQUEUED}

    blob = _database_bytes(db_path)
    leaked = [s for s in secrets if s.encode() in blob]
    assert leaked == []

    row = store.get_account("alice")
    assert row is not None
    assert (row.status, row.status_message) == ("needs_login", "logged out")
    assert row.tokens.access_token is None and row.tokens.refresh_token is None
    assert row.config["client_id"] == "client" and "client_secret" not in row.config
    assert refresh_metrics(store, "alice").jit_refreshes == 3  # history kept
    assert store.get_setting("settings.sync_frequency") == "6h"
    bob = store.get_account("bob")
    assert bob is not None and bob.tokens.refresh_token == "old-refresh"

    # logging in again brings the works back
    now = dt.datetime.now(UTC)
    replace_tokens(
        store,
        "alice",
        TokenSet(access_token="a", refresh_token="r", expires_at=now + dt.timedelta(hours=1)),
    )
    on_account_ready(store, "alice", manager=manager)
    assert WorkState.ENQUEUED in states(store, token_refresh_work_name("alice"))
    assert WorkState.ENQUEUED in states(store, library_sync_work_name("alice"))


def _database_bytes(db_path: Path) -> bytes:
    return b"".join(
        p.read_bytes()
        for p in db_path.parent.iterdir()
        if p.name.startswith(db_path.name) and p.is_file()
    )


def test_logout_of_unknown_account(store: Store, db_path: Path) -> None:
    with pytest.raises(AccountNotFound):
        logout(store, "nobody")
    done = invoke_cli("logout", "nobody", db=db_path)
    assert done.returncode == 1 and "no account named 'nobody'" in done.stderr


def test_cli_logout_json(store: Store, db_path: Path) -> None:
    add_oauth2(store, "alice", "http://127.0.0.1:9/token")
    on_account_ready(store, "alice", manager=WorkManager(store, waker=NullWaker()))
    done = invoke_cli("logout", "alice", "--json", db=db_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["account"] == "alice" and len(data["cancelled"]) == 1
    assert "secret" not in done.stdout.replace("client_secret", "")
    again = invoke_cli("logout", "alice", db=db_path)  # idempotent
    assert again.returncode == 0 and "0 work(s) cancelled" in again.stdout
