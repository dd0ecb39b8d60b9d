"""The embedded default backend: one SQLite file in WAL mode.

Opening, connections and migrations live in :mod:`._sqlite_conn`. Writes run in
short ``BEGIN IMMEDIATE`` transactions, so concurrent writers from several
processes queue on SQLite's own lock (up to the busy timeout, then
:class:`~stayfresh.errors.StoreBusy`) instead of failing. The database, its
WAL files, the lock folder and the lock files are owner-only — but a file is
made owner-only only once it is known to be ours (see :mod:`._guard`).
Opening a database whose schema is current writes nothing, so read-only
commands run while another process holds the write lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ._accounts import LATENCY_WINDOW as LATENCY_WINDOW  # re-exported
from ._accounts import AccountsSQL
from ._guard import RESERVE_BYTES, full_error
from ._library import LibrarySQL
from ._notify import NotifySQL
from ._sqlite_conn import FileRefreshLock as FileRefreshLock  # re-exported
from ._sqlite_conn import SQLiteConnection
from ._sqlite_conn import _split_sql as _split_sql  # re-exported
from ._sqlite_conn import load_migrations as load_migrations  # re-exported
from ._work import WorkSQL

log = logging.getLogger(__name__)


class SQLiteStore(
    SQLiteConnection,
    WorkSQL,
    LibrarySQL,
    NotifySQL,
    AccountsSQL,
):
    """:class:`Store` on a local SQLite file."""

    def _scrubbed(self, write: Callable[[], bool]) -> bool:
        """``secure_delete`` zeroes the bytes this write frees; ``VACUUM`` then rebuilds
        the file so that older values (rotated tokens left in free space by earlier
        updates) go too, and a checkpoint empties the write-ahead log."""
        conn = self._conn()
        conn.execute("PRAGMA secure_delete=ON")
        try:
            if not write():
                return False
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.warning(
                    "%s: another process is reading the database; old pages stay in the"
                    " write-ahead log until its next checkpoint",
                    self.location,
                )
            return True
        finally:
            conn.execute("PRAGMA secure_delete=OFF")

    def _reserve(self, name: str) -> None:
        """Allocate :data:`RESERVE_BYTES` for the commit that ends a refresh.

        Why a reserve file rather than padding in the row: in WAL mode every
        commit appends the pages it changes to the ``-wal`` file, so rows
        freed inside the database give the final commit no room on the
        filesystem. A file allocated with ``posix_fallocate`` (so the blocks
        really are taken), deleted just before that commit, does: a few pages
        for the token row, the intent and the metrics need far less. If
        another program fills the freed space in between, the commit still
        fails typed (StoreFull) — the reserve narrows the window, it cannot
        close it.
        """
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            _allocate(self._account_file(name, ".reserve"), RESERVE_BYTES)
        except OSError as exc:
            self._release_reserve(name)
            if exc.errno == errno.ENOSPC:
                raise full_error(self.location) from None
            raise

    def _release_reserve(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._account_file(name, ".reserve").unlink()


def _allocate(path: Path, size: int) -> None:
    """Make ``path`` hold ``size`` bytes of real disk blocks (ENOSPC when they are not there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        else:  # macOS: written zeros take blocks too
            os.pwrite(fd, bytes(size), 0)
            os.fsync(fd)
    finally:
        os.close(fd)
