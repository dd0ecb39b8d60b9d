"""The store refuses what is not its own, never blocks readers, and loses nothing to a full disk.

Real parts only: files written by other programs, a second process holding the
SQLite write lock, a second PostgreSQL session holding a table lock, a 2 MiB
tmpfs filled to the last byte, the real CLI in a subprocess (``run_cli``) and a
real token endpoint on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import add_oauth2, run_cli
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from pg_server import PGServer
from stayfresh.errors import (
    ConfigError,
    DatabaseRefused,
    ReauthRequired,
    SchemaTooNew,
    StoreBusy,
    StoreFull,
    TransientError,
)
from stayfresh.store import SQLiteStore, Store, open_store
from stayfresh.store._guard import RESERVE_BYTES, fingerprint
from stayfresh.tokens import Keeper

Snapshot = tuple[bytes, int, int]
OLD_MTIME_NS = 1_600_000_000 * 10**9


def snapshot(path: Path) -> Snapshot:
    """Bytes, permission bits and modification time: everything "untouched" means."""
    info = os.stat(path)
    return path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_mtime_ns


def _stayfresh_db(path: Path, *, big: bool = False) -> None:
    store = SQLiteStore(path)
    if big:
        for i in range(8):
            store.set_setting(f"k{i}", "x" * 20_000)
    store.close()  # the last connection: checkpoints and removes the WAL


def _text(path: Path) -> None:
    path.write_bytes(b"my notes, not a database\n" * 40)


def _truncated(path: Path) -> None:
    _stayfresh_db(path, big=True)
    os.truncate(path, path.stat().st_size // 2)


def _garbled(path: Path) -> None:
    _stayfresh_db(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1's b-tree: the schema itself
    path.write_bytes(bytes(data))


def _foreign(path: Path, *, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('mine')")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    _stayfresh_db(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)")
    conn.commit()
    conn.close()


BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "text file": (_text, "not an SQLite file"),
    "truncated": (_truncated, "corrupt or truncated"),
    "garbled": (_garbled, "corrupt or truncated"),
    "another program's": (_foreign, "another program"),
    "another program's, WAL": (lambda p: _foreign(p, wal=True), "another program"),
    "newer schema": (_newer, "newer than this stayfresh knows"),
}


def _prepared(tmp_path: Path, kind: str) -> tuple[Path, Snapshot, set[str]]:
    path = tmp_path / "stayfresh.db"
    BAD_FILES[kind][0](path)
    os.chmod(path, 0o644)  # a chmod would show
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    return path, snapshot(path), set(os.listdir(tmp_path))


# -- 1. refusing what is not ours ---------------------------------------------------------


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_api_refuses_a_file_that_is_not_ours_and_leaves_it_untouched(
    tmp_path: Path, kind: str
) -> None:
    path, before, files = _prepared(tmp_path, kind)
    expected = SchemaTooNew if kind == "newer schema" else DatabaseRefused
    with pytest.raises(expected) as caught:
        SQLiteStore(path)
    assert BAD_FILES[kind][1] in str(caught.value)
    assert caught.value.exit_code == 2
    assert snapshot(path) == before
    assert set(os.listdir(tmp_path)) == files  # no -wal, -shm or .locks left beside it


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_cli_refuses_a_file_that_is_not_ours_with_exit_2(tmp_path: Path, kind: str) -> None:
    path, before, files = _prepared(tmp_path, kind)
    for args in (("account", "list"), ("token", "acct")):
        proc = run_cli(*args, db=path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: "), proc.stderr
        assert BAD_FILES[kind][1] in proc.stderr
        assert "Traceback" not in proc.stderr
    assert snapshot(path) == before
    assert set(os.listdir(tmp_path)) == files


def test_a_symlink_to_a_foreign_file_is_named_in_the_message(tmp_path: Path) -> None:
    target = tmp_path / "notes.sqlite"
    _foreign(target)
    os.chmod(target, 0o644)
    before = snapshot(target)
    link = tmp_path / "stayfresh.db"
    link.symlink_to(target)
    proc = run_cli("account", "list", db=link)
    assert proc.returncode == 2, proc.stderr
    assert f"the symlink {link} points there" in proc.stderr
    assert str(target) in proc.stderr
    assert snapshot(target) == before
    assert link.is_symlink()


def test_a_symlink_to_our_database_is_followed_and_shares_its_locks(tmp_path: Path) -> None:
    target = tmp_path / "real" / "stayfresh.db"
    _stayfresh_db(target)
    os.chmod(target, 0o644)  # ours: owner-only again once opened
    link = tmp_path / "link.db"
    link.symlink_to(target)
    store = SQLiteStore(link)
    try:
        assert store.path == target
        store.lock("token", "acct")
        assert Path(f"{target}.locks").is_dir()
        assert not Path(f"{link}.locks").exists()
    finally:
        store.close()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert link.is_symlink()


def test_a_dangling_symlink_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    link = tmp_path / "stayfresh.db"
    link.symlink_to(tmp_path / "elsewhere" / "db")
    proc = run_cli("account", "list", db=link)
    assert proc.returncode == 2, proc.stderr
    assert "does not exist" in proc.stderr
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_path_that_is_not_a_regular_file_is_refused_without_hanging(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "stayfresh.db"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)  # opening it would block forever
    proc = run_cli("account", "list", db=path)
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr


def test_an_empty_file_becomes_a_private_database(tmp_path: Path) -> None:
    path = tmp_path / "stayfresh.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    proc = run_cli("account", "list", db=path)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_postgres_refuses_a_newer_schema_before_writing(pg_url: str) -> None:
    import psycopg

    from stayfresh.store import PostgresStore

    old = PostgresStore(pg_url, migrate=False, retry_for=10)
    old.migrate(up_to=1)
    old.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)")
        tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        before = conn.execute(tables).fetchone()
        with pytest.raises(SchemaTooNew, match="schema version 999"):
            PostgresStore(pg_url, retry_for=10)
        proc = run_cli("account", "list", env={"STAYFRESH_DB": pg_url})
        assert proc.returncode == 2, proc.stderr
        assert "newer than this stayfresh knows" in proc.stderr
        assert conn.execute(tables).fetchone() == before  # migrations 2.. not applied


# -- 2. readers never take the write lock; a held lock is "busy", exit 4 --------------------


@pytest.fixture
def write_locked(db_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start a real second process holding ``BEGIN <mode>`` on ``db_path`` until the test ends."""
    holders: list[subprocess.Popen[str]] = []

    def hold(mode: str) -> subprocess.Popen[str]:
        code = (
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
            f"c.execute('BEGIN {mode}')\n"
            "c.execute(\"INSERT INTO settings VALUES ('held', 'yes')\")\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        holders.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in holders:
        proc.kill()
        proc.communicate(timeout=30)  # reaps it and closes the pipes


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE"])
def test_read_only_commands_run_while_another_process_holds_the_write_lock(
    store: Store, db_path: Path, write_locked: Callable[[str], subprocess.Popen[str]], mode: str
) -> None:
    add_oauth2(store, "acct", "http://127.0.0.1:9/token", expires_in=3600)
    store.close()
    write_locked(mode)
    env = {"STAYFRESH_BUSY_TIMEOUT": "1"}  # a write would fail fast instead of waiting 30 s
    token = run_cli("token", "acct", db=db_path, env=env)
    assert (token.returncode, token.stdout.strip()) == (0, "old-access"), token.stderr
    for args in (("status",), ("account", "list"), ("work", "list"), ("token", "acct", "--json")):
        proc = run_cli(*args, db=db_path, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "busy" not in proc.stderr.lower(), (args, proc.stderr)


def test_a_writer_held_past_the_busy_timeout_is_exit_4_not_a_traceback(
    store: Store, db_path: Path, write_locked: Callable[[str], subprocess.Popen[str]]
) -> None:
    store.close()
    write_locked("IMMEDIATE")
    env = {"STAYFRESH_BUSY_TIMEOUT": "0.3"}
    proc = run_cli("settings", "set", "sync_frequency", "6h", db=db_path, env=env)
    assert proc.returncode == 4, proc.stderr
    assert "is busy" in proc.stderr and "STAYFRESH_BUSY_TIMEOUT" in proc.stderr
    assert "Traceback" not in proc.stderr
    busy = SQLiteStore(db_path, busy_timeout=0.2)
    try:
        with pytest.raises(StoreBusy) as caught:
            busy.set_setting("k", "v")
        assert isinstance(caught.value, TransientError) and caught.value.exit_code == 4
        assert busy.get_setting("k") is None  # and the connection is usable afterwards
    finally:
        busy.close()


def test_a_bad_busy_timeout_is_a_usage_error(db_path: Path) -> None:
    proc = run_cli("account", "list", db=db_path, env={"STAYFRESH_BUSY_TIMEOUT": "soon"})
    assert proc.returncode == 2, proc.stderr
    assert "STAYFRESH_BUSY_TIMEOUT" in proc.stderr


def test_postgres_lock_wait_past_the_busy_timeout_is_store_busy(pg_url: str) -> None:
    import concurrent.futures

    import psycopg

    from stayfresh.store import PostgresStore

    store = PostgresStore(pg_url, retry_for=10, busy_timeout=0.3)
    holder = psycopg.connect(pg_url)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        holder.execute("LOCK TABLE settings, accounts IN ACCESS EXCLUSIVE MODE")
        future = pool.submit(store.set_setting, "k", "v")
        with pytest.raises(StoreBusy, match="is busy"):
            future.result(timeout=60)  # without lock_timeout: waits until the holder ends
        proc = run_cli(
            "account", "list", env={"STAYFRESH_DB": pg_url, "STAYFRESH_BUSY_TIMEOUT": "0.3"}
        )
        assert proc.returncode == 4, proc.stderr
        assert "is busy" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.rollback()
        holder.close()
        pool.shutdown()
    store.set_setting("k", "v")  # the pool's connections still have their timeout, and work
    assert store.get_setting("k") == "v"
    lock = store.lock("token", "acct")  # an advisory wait does not reset the session's timeout
    assert lock.acquire(1.0)
    lock.release()
    row = store._retrying(  # a pooled connection, as every store call gets
        lambda conn: conn.execute("SELECT current_setting('lock_timeout') AS t").fetchone()
    )
    assert row is not None and row["t"] == "300ms"
    store.close()


# -- 3 and 4. a full disk: typed, at start-up and before a refresh is sent -------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (needs root; skipped without, but never in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        (mount / "filler").unlink(missing_ok=True)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte with a filler file."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = b"\0" * (1 << 20)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: max(1, len(chunk) // 16)]
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0


def test_opening_a_new_database_on_a_full_disk_is_a_typed_error(small_disk: Path) -> None:
    fill(small_disk)
    path = small_disk / "data" / "stayfresh.db"
    with pytest.raises(StoreFull, match="is full"):
        SQLiteStore(path)
    proc = run_cli("account", "list", db=path)
    assert proc.returncode == 4, proc.stderr
    assert "is full" in proc.stderr and "Traceback" not in proc.stderr


def test_a_full_disk_at_start_up_sends_no_refresh_and_keeps_the_tokens(
    small_disk: Path, token_server: FakeTokenServer
) -> None:
    path = small_disk / "stayfresh.db"
    store = SQLiteStore(path)
    add_oauth2(store, "acct", token_server.token_url, expires_in=-60)
    store.close()
    token_server.handler = lambda seen: token_reply("new-access", "new-refresh")
    fill(small_disk)
    before = snapshot(path)
    proc = run_cli("token", "acct", db=path)
    assert proc.returncode == 4, proc.stderr
    assert "is full" in proc.stderr and "Traceback" not in proc.stderr
    assert token_server.count == 0
    assert snapshot(path) == before


def test_a_full_disk_fails_the_refresh_intent_before_any_request(
    small_disk: Path, token_server: FakeTokenServer
) -> None:
    """The store is already open (no start-up write needed): the intent is what fails."""
    store = SQLiteStore(small_disk / "stayfresh.db")
    keeper = Keeper(store, timeout=5.0)
    try:
        add_oauth2(store, "acct", token_server.token_url, expires_in=-60)
        store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # writes now need new blocks
        token_server.handler = lambda seen: token_reply("new-access", "new-refresh")
        fill(small_disk)
        with pytest.raises(StoreFull):
            keeper.ensure_valid_token("acct")
        assert token_server.count == 0  # the refresh token was never spent
        (small_disk / "filler").unlink()
        account = store.get_account("acct")
        assert account is not None
        assert (account.tokens.access_token, account.tokens.refresh_token) == (
            "old-access",
            "old-refresh",
        )
        assert store.refresh_intent("acct") is None
        assert not list(Path(f"{store.path}.locks").glob("*.reserve"))
    finally:
        keeper.close()
        store.close()


def test_the_reserve_lets_the_rotated_token_be_stored_when_the_disk_fills_meanwhile(
    small_disk: Path, token_server: FakeTokenServer
) -> None:
    """The disk fills while the request is in flight: the new refresh token still lands."""
    path = small_disk / "stayfresh.db"
    store = SQLiteStore(path)
    keeper = Keeper(store, timeout=5.0)
    try:
        add_oauth2(store, "acct", token_server.token_url, expires_in=-60)

        def fill_then_rotate(seen: Seen) -> Reply:
            fill(small_disk)
            return token_reply("new-access", "new-refresh")

        token_server.handler = fill_then_rotate
        result = keeper.ensure_valid_token("acct")
        assert result.was_refreshed and result.access_token == "new-access"
        assert token_server.count == 1
        assert store.refresh_intent("acct") is None
        assert not list(Path(f"{path}.locks").glob("*.reserve"))
    finally:
        keeper.close()
        store.close()
    (small_disk / "filler").unlink()
    again = SQLiteStore(path)
    try:
        account = again.get_account("acct")
        assert account is not None and account.tokens.refresh_token == "new-refresh"
    finally:
        again.close()


# -- 4. the intent is durable before the request, on both backends and both drivers ----------


@pytest.fixture(params=["sqlite", "postgres"])
def backend_store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SQLiteStore(db_path)
    else:
        from stayfresh.store import PostgresStore

        opened = PostgresStore(request.getfixturevalue("pg_url"), retry_for=10)
    yield opened
    opened.close()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_the_refresh_intent_is_committed_before_the_request_and_ended_by_the_swap(
    backend_store: Store, token_server: FakeTokenServer, driver: str
) -> None:
    add_oauth2(backend_store, "acct", token_server.token_url, expires_in=-60)
    version = backend_store.get_account("acct").version  # type: ignore[union-attr]
    seen_intents = []

    def rotate(seen: Seen) -> Reply:
        seen_intents.append(backend_store.refresh_intent("acct"))
        return token_reply("new-access", "new-refresh")

    token_server.handler = rotate
    keeper = Keeper(backend_store, timeout=5.0)
    try:
        if driver == "sync":
            result = keeper.ensure_valid_token("acct")
        else:
            result = asyncio.run(keeper.aensure_valid_token("acct"))
    finally:
        keeper.close()
    assert result.was_refreshed
    [intent] = seen_intents
    assert intent is not None
    assert intent.fingerprint == fingerprint("old-refresh") != "old-refresh"
    assert intent.version == version
    assert intent.owner.endswith(f":{os.getpid()}")
    assert intent.expires_at > intent.started_at
    assert backend_store.refresh_intent("acct") is None


def test_a_failed_refresh_ends_the_intent_and_gives_back_the_reserve(
    store: SQLiteStore, token_server: FakeTokenServer
) -> None:
    add_oauth2(store, "acct", token_server.token_url, expires_in=-60)
    reserves: list[int] = []

    def refuse(seen: Seen) -> Reply:
        reserves.extend(p.stat().st_size for p in Path(f"{store.path}.locks").glob("*.reserve"))
        return Reply(400, {"error": "invalid_grant"})

    token_server.handler = refuse
    keeper = Keeper(store, timeout=5.0)
    try:
        with pytest.raises(ReauthRequired):
            keeper.ensure_valid_token("acct")
    finally:
        keeper.close()
    assert reserves == [RESERVE_BYTES]  # room was set aside while the request was out
    assert store.refresh_intent("acct") is None
    assert not list(Path(f"{store.path}.locks").glob("*.reserve"))


def test_postgres_disk_full_fails_the_intent_before_any_request(
    pg_server: PGServer, pg_url: str, token_server: FakeTokenServer
) -> None:
    """The intents table lives on a real full tmpfs tablespace: 53100 is StoreFull, nothing sent."""
    import psycopg

    from stayfresh.store import PostgresStore

    disk = pg_server.root / f"small-{os.getpid()}-{id(token_server)}"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if pg_server.user is not None:
        entry = pwd.getpwnam(pg_server.user)
        os.chown(disk, entry.pw_uid, entry.pw_gid)
    space = disk.name.replace("-", "_")
    store = PostgresStore(pg_url, retry_for=10)
    admin = psycopg.connect(pg_url, autocommit=True)
    try:
        admin.execute(f"CREATE TABLESPACE {space} LOCATION '{disk}'")
        admin.execute(f"ALTER TABLE refresh_intents SET TABLESPACE {space}")
        add_oauth2(store, "acct", token_server.token_url, expires_in=-60)
        token_server.handler = lambda seen: token_reply("new-access", "new-refresh")
        fill(disk)
        keeper = Keeper(store, timeout=5.0)
        try:
            with pytest.raises(StoreFull, match="is full"):
                keeper.ensure_valid_token("acct")
        finally:
            keeper.close()
        assert token_server.count == 0
        account = store.get_account("acct")
        assert account is not None and account.tokens.refresh_token == "old-refresh"
    finally:
        (disk / "filler").unlink(missing_ok=True)
        with contextlib.suppress(psycopg.Error):
            admin.execute("ALTER TABLE refresh_intents SET TABLESPACE pg_default")
        store.close()
        with contextlib.suppress(psycopg.Error):
            admin.execute(f"DROP TABLESPACE {space}")
        admin.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("url", ["mysql://db.example/app", "sqlite://host/x.db", "redis://x"])
def test_an_unknown_database_url_is_refused_not_made_a_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mysql://x` used to become a SQLite file named `mysql:/x` in the working folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="unsupported database URL scheme"):
        open_store(url)
    assert list(tmp_path.iterdir()) == []
