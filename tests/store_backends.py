"""The store fixtures of both backends, for every contract suite (a pytest plugin).

``backend`` opens stores on one fresh database of the parametrised backend
(SQLite file; PostgreSQL database of the real ``pg_server``), ``any_store`` is
one of them, ``reopen`` another independent store on the same database — how
"another process" looks to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stayfresh.store import SQLiteStore, Store

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A function opening a new store on one fresh database of the parametrised backend."""
    opened: list[Store] = []
    if request.param == "sqlite":
        location: str = str(tmp_path / "contract.db")

        def open_sqlite() -> Store:
            opened.append(SQLiteStore(location))
            return opened[-1]

        yield open_sqlite
    else:
        url = request.getfixturevalue("pg_url")
        from stayfresh.store import PostgresStore

        def open_pg() -> Store:
            opened.append(PostgresStore(url, retry_for=10))
            return opened[-1]

        yield open_pg
    for s in opened:
        s.close()


@pytest.fixture
def any_store(backend: Opener) -> Store:
    return backend()


@pytest.fixture
def reopen(backend: Opener, any_store: Store) -> Opener:
    """Open another independent store on ``any_store``'s database."""
    return backend
