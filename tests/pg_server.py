"""A real PostgreSQL server for the tests, started from the Debian server binaries.

The session-scoped ``pg_server`` fixture runs ``initdb`` and ``pg_ctl`` on a
temporary directory, listening on a free 127.0.0.1 port (its unix socket in
the same directory). PostgreSQL refuses to run as root, so when the tests run
as root the server runs as the ``postgres`` user if it exists, else as a
``stayfresh-pg`` user created for it. ``pg_url`` gives each test a fresh,
empty database (``CREATE DATABASE``: a few milliseconds).

Load it from a test module with ``pytest_plugins = ["pg_server"]`` (or list
it in ``conftest.py``). Without PostgreSQL binaries the tests that use it are
skipped, except when ``CI`` is set: there they fail, because CI must install
the ``postgresql`` package.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PGServer", "pg_missing", "pg_server", "pg_url"]

_FALLBACK_USER = "stayfresh-pg"


def _bin_dir() -> Path | None:
    """The newest installed server's bin folder (``/usr/lib/postgresql/N/bin``), or PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def pg_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'stayfresh[postgres]')"
    if _bin_dir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    return None


def _require() -> None:
    reason = pg_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide PostgreSQL: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The user to run the server as: None when not root, else postgres or stayfresh-pg."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return _FALLBACK_USER


class PGServer:
    """One throw-away PostgreSQL cluster: ``start()``, ``url(db)``, ``create_database()``, ``stop()``."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found")
        self.bin = bin_dir
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="stayfresh-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.log = self.root / "server.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)

    def start(self) -> PGServer:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync", "--locale=C",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            f" -c unix_socket_directories={self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            " -c shared_buffers=32MB"
        )
        self._options = options
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Stop the server at once (all connections drop) and start it again."""
        self.down()
        self.up()

    def down(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate`` or ``fast``), keeping its data (:meth:`up` starts it)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def up(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
            self._options, "-w", "start",
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_connections(self, database_url: str) -> int:
        """Kill every backend connected to that database (simulates a network cut)."""
        import psycopg

        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PGServer]:
    """A PostgreSQL server for the whole session (skipped/failed as documented above)."""
    _require()
    server = PGServer()
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log.read_text() if server.log.exists() else ""
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}\n{log}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PGServer) -> str:
    """A fresh empty database on the session's server."""
    started = time.monotonic()
    url = pg_server.create_database()
    assert time.monotonic() - started < 30
    return url
