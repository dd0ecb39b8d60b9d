"""Where the database is, and opening it: a path, ``sqlite:///path`` or ``postgresql://…``.

Light on purpose (``os`` and ``sys``): ``stayfresh token NAME`` resolves the
default location on every call, before anything else is imported.
"""

from __future__ import annotations

import os
import re
import sys

from ..errors import ConfigError, StoreError

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers treat this as True
if TYPE_CHECKING:
    from pathlib import Path

    from ._contracts import Store


def user_data_dir() -> str:
    """platformdirs' user data directory for stayfresh.

    On Linux, when ``XDG_DATA_HOME`` or ``HOME`` is an absolute path, it is
    computed here by the XDG rule platformdirs follows (``$XDG_DATA_HOME/stayfresh``,
    else ``$HOME/.local/share/stayfresh``; a test holds the two to the same
    answer): importing platformdirs costs ~25 ms, more than the rest of
    ``stayfresh token NAME``. Every other case asks platformdirs.
    """
    if sys.platform == "linux" and not (
        hasattr(sys, "getandroidapilevel") or os.environ.get("ANDROID_DATA") == "/data"
    ):
        xdg = os.environ.get("XDG_DATA_HOME", "")
        if xdg.startswith("/"):
            return os.path.join(xdg, "stayfresh")
        home = os.environ.get("HOME", "")
        if home.startswith("/"):
            return os.path.join(home, ".local", "share", "stayfresh")
    import platformdirs

    return platformdirs.user_data_dir("stayfresh")


def default_location() -> str:
    """``STAYFRESH_DB`` if set, else ``stayfresh.db`` in the user data directory."""
    return os.environ.get("STAYFRESH_DB") or os.path.join(user_data_dir(), "stayfresh.db")


def default_db_path() -> Path:
    """``STAYFRESH_DB`` if set, else ``stayfresh.db`` in the user data directory."""
    from pathlib import Path

    return Path(default_location())


def sqlite_file(location: str) -> str | None:
    """The file a location names for SQLite, or None for a PostgreSQL URL.

    ``sqlite:///path`` and ``sqlite:////abs/path`` name files; any other
    ``scheme://`` is refused with :class:`~stayfresh.errors.ConfigError`.
    """
    if location.startswith(("postgresql://", "postgres://")):
        return None
    if location.startswith("sqlite:///"):
        return location[9:] if location.startswith("sqlite:////") else location[10:]
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", location):  # mysql://, sqlite://host/…
        scheme = location.split("://", 1)[0]
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use a file path, "
            "sqlite:///path or postgresql://…"
        )
    return location


def open_store(location: str | os.PathLike[str] | None = None) -> Store:
    """Open (and migrate) the store at ``location``: a file path, ``sqlite:///path``
    or ``postgresql://user@host/db`` (needs ``pip install 'stayfresh[postgres]'``).

    ``None`` means ``STAYFRESH_DB`` or the platform default. A file or database
    that is not stayfresh's (or is newer than this version) raises
    :class:`DatabaseRefused` and is left untouched; a lock held past the busy
    timeout (``STAYFRESH_BUSY_TIMEOUT``) raises :class:`StoreBusy`, a full disk
    :class:`StoreFull`.
    """
    target = os.fspath(location) if location is not None else default_location()
    path = sqlite_file(target)
    if path is None:
        try:  # imported only here: psycopg is an optional extra
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL needs psycopg: pip install 'stayfresh[postgres]'"
                f" ({exc.name or exc} is missing)"
            ) from exc
        return PostgresStore(target)
    from ._sqlite import SQLiteStore

    return SQLiteStore(path)
