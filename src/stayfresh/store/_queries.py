"""Named SQL: one text per statement, shared by both backends.

The store's statements live in ``queries/*.sql`` as named blocks::

    -- name: get_account
    SELECT * FROM accounts WHERE name = :name

and are asked for by name (the procrastinate way). Parameters are named
(``:name``). A file ``<part>.sql`` is shared; ``<part>.sqlite.sql`` and
``<part>.postgres.sql`` hold the few statements that really differ (locks,
the due-work scan, NOTIFY). At load time each text is translated to its
driver's dialect by four mechanical rules, and nothing else:

- parameters: ``:name`` stays for sqlite3, becomes ``%(name)s`` for psycopg
  (and a literal ``%`` becomes ``%%``);
- lists: ``x = ANY(:ids)`` is PostgreSQL's array test; on SQLite it becomes
  ``x IN (SELECT value FROM json_each(:ids))`` and the list is bound as JSON
  text (so neither backend builds ``IN (?, ?, …)`` strings);
- row locks: ``FOR UPDATE [SKIP LOCKED]`` and ``FOR SHARE`` are dropped on
  SQLite, whose write transactions (``BEGIN IMMEDIATE``) already exclude
  every other writer;
- insertion order: SQLite's ``rowid`` is the ``seq`` column on PostgreSQL.

A test checks that both dialects end up with the same set of names.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3

TYPE_CHECKING = False  # typing costs ~10 ms to import; type checkers treat this as True
if TYPE_CHECKING:
    from typing import Literal

    Dialect = Literal["sqlite", "postgres"]

#: the package's folder (files on disk: plain reads, not importlib.resources, ~25 ms cheaper)
_HERE = os.path.dirname(os.path.abspath(__file__))

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
#: a quoted string (left alone), a ``:param`` (not a ``::cast``), or a ``%``
PARAMETER = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)|%")
_ANY = re.compile(r"(<>|=)\s*(ANY|ALL)\s*\(\s*:(\w+)\s*\)", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\s+FOR\s+(UPDATE|SHARE)(\s+SKIP\s+LOCKED)?\b", re.IGNORECASE)


def parse(text: str, origin: str = "<sql>") -> dict[str, str]:
    """The named blocks of one file; comments between blocks are dropped."""
    found: dict[str, str] = {}
    pieces = _NAME.split(text)
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if name in found:
            raise ValueError(f"{origin}: query {name!r} is defined twice")
        if not sql:
            raise ValueError(f"{origin}: query {name!r} is empty")
        found[name] = sql
    return found


def to_sqlite(sql: str) -> str:
    def lists(m: re.Match[str]) -> str:
        negated = m.group(1) == "<>" or m.group(2).upper() == "ALL"
        return f"{'NOT IN' if negated else 'IN'} (SELECT value FROM json_each(:{m.group(3)}))"

    return _ROW_LOCK.sub("", _ANY.sub(lists, sql))


def to_postgres(sql: str) -> str:
    def param(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return f"%({m.group(1)})s"
        return m.group(0).replace("%", "%%")  # a quoted string, or a bare %

    return re.sub(r"\browid\b", "seq", PARAMETER.sub(param, sql))


@functools.cache
def load(dialect: Dialect) -> dict[str, str]:
    """Every statement for ``dialect``, translated, by name."""
    folder = os.path.join(_HERE, "queries")
    queries: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        parts = entry.split(".")
        if parts[-1] != "sql" or (len(parts) == 3 and parts[1] != dialect) or len(parts) > 3:
            continue
        with open(os.path.join(folder, entry), encoding="utf-8") as file:
            text = file.read()
        for name, sql in parse(text, entry).items():
            if name in queries:
                raise ValueError(f"{entry}: query {name!r} is defined twice")
            queries[name] = to_sqlite(sql) if dialect == "sqlite" else to_postgres(sql)
    return queries


# -- migrations: one folder of numbered files per backend ----------------------------


def load_migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped for ``backend``, in order."""
    folder = os.path.join(_HERE, "migrations", backend)
    found = []
    for entry in os.listdir(folder):
        if entry.endswith(".sql"):
            with open(os.path.join(folder, entry), encoding="utf-8") as file:
                found.append((int(entry.split("_", 1)[0]), entry, file.read()))
    return sorted(found)


def latest_migration(backend: str) -> int:
    """The version of the newest migration shipped for ``backend`` (its files are not read)."""
    folder = os.path.join(_HERE, "migrations", backend)
    return max(int(e.split("_", 1)[0]) for e in os.listdir(folder) if e.endswith(".sql"))


def split_statements(sql: str) -> list[str]:
    """Split a migration file into whole statements (triggers and comments included)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:60]!r}")
    return statements
