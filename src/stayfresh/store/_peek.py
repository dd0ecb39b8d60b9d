"""Named reads of a SQLite database without opening it as a store.

``stayfresh token NAME`` runs once per request in scripts; on its valid path
it only reads two rows. :func:`peek` reads them with nothing but ``sqlite3``
and the store's own named statements — no store classes, no migration check
that could write, no locks — or says it cannot, and the caller opens the store
the ordinary way (which creates, migrates, repairs the file mode or refuses
the file, as always). It never writes (``PRAGMA query_only``) and never
creates a file.
"""

from __future__ import annotations

import os
import sqlite3

from ._location import default_location, sqlite_file
from ._queries import latest_migration, load

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers treat this as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: seconds a read waits for the database (a WAL reader only waits during recovery)
PEEK_TIMEOUT = 2.0


def peek(
    location: str | None, reads: Mapping[str, Mapping[str, Any]]
) -> dict[str, sqlite3.Row | None] | None:
    """The first row of each named read in ``reads`` (name -> parameters), or None.

    None means "open the store instead": a PostgreSQL URL, a file that does
    not exist, is not a regular file owned by this user with mode 0600, or
    whose schema is not exactly this version's, and any SQLite error.
    """
    path = sqlite_file(location if location is not None else default_location())
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not (st.st_mode & 0o170000 == 0o100000 and st.st_mode & 0o777 == 0o600):
        return None  # not a regular file, or not private: the store repairs or refuses it
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return None
    # a URI with mode=rw never creates the file; %, ? and # are the characters it escapes
    uri = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    try:
        conn = sqlite3.connect(f"file:{uri}?mode=rw", uri=True, timeout=PEEK_TIMEOUT)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        queries = load("sqlite")
        version = conn.execute(queries["schema_version"]).fetchone()
        if version is None or version[0] != latest_migration("sqlite"):
            return None
        return {
            name: conn.execute(queries[name], dict(params)).fetchone()
            for name, params in reads.items()
        }
    except sqlite3.Error:
        return None
    finally:
        conn.close()
