"""The migrations produce exactly the committed schema files (procrastinate's honest check).

``tests/schema/sqlite.sql`` and ``tests/schema/postgres.sql`` are written by
hand, independently of ``src/stayfresh/store/migrations``. Each test builds one
database from the schema file and one by running the migrations, and compares
their structure: tables, columns (type, nullability, default, key), foreign
keys, indexes and CHECK constraints. A migration that forgets a column, an
index or a constraint — or a schema file not updated with a new migration —
fails here, which applying the same migrations twice could never show.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pg_server import PGServer
from stayfresh.store import open_store
from stayfresh.store._queries import load, parse, to_postgres, to_sqlite

SCHEMA = Path(__file__).parent / "schema"
_IGNORED = ("schema_migrations",)


def _checks(sql: str) -> list[str]:
    """The CHECK constraints of a CREATE TABLE text, whitespace-normalised."""
    found = []
    for m in re.finditer(r"CHECK\s*\(", sql, re.IGNORECASE):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        found.append(" ".join(sql[m.end() : i - 1].split()))
    return sorted(found)


def describe_sqlite(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        for name, sql in tables:
            if name in _IGNORED:
                continue
            indexes = {}
            for _, iname, unique, origin, partial in conn.execute(f"PRAGMA index_list('{name}')"):
                cols = [r[2] for r in conn.execute(f"PRAGMA index_info('{iname}')")]
                indexes[iname if origin == "c" else f"{origin}:{cols}"] = (unique, partial, cols)
            out[name] = {
                "columns": [r[1:] for r in conn.execute(f"PRAGMA table_xinfo('{name}')")],
                "foreign_keys": sorted(
                    r[2:] for r in conn.execute(f"PRAGMA foreign_key_list('{name}')")
                ),
                "indexes": indexes,
                "checks": _checks(sql),
            }
        out["<triggers>"] = [
            (name, table, " ".join(sql.split()))
            for name, table, sql in conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            )
        ]
        return out
    finally:
        conn.close()


def test_sqlite_migrations_produce_the_schema_file(tmp_path: Path) -> None:
    by_file = tmp_path / "file.db"
    conn = sqlite3.connect(by_file)
    conn.executescript((SCHEMA / "sqlite.sql").read_text())
    conn.close()
    by_migrations = tmp_path / "migrated.db"
    open_store(by_migrations).close()
    expected, got = describe_sqlite(by_file), describe_sqlite(by_migrations)
    assert sorted(got) == sorted(expected)
    for table in expected:
        assert got[table] == expected[table], table


def test_the_sqlite_description_sees_a_missing_index_and_check(tmp_path: Path) -> None:
    """The comparison is not blind: drop one index, loosen one CHECK, and it differs."""
    text = (SCHEMA / "sqlite.sql").read_text()
    base = tmp_path / "base.db"
    sqlite3.connect(base).executescript(text)
    no_index = tmp_path / "no_index.db"
    sqlite3.connect(no_index).executescript(
        re.sub(r"CREATE INDEX work_due [^;]*;", "", text, count=1)
    )
    no_check = tmp_path / "no_check.db"
    sqlite3.connect(no_check).executescript(text.replace("CHECK (id = 1)", "", 1))
    assert describe_sqlite(no_index)["work"] != describe_sqlite(base)["work"]
    assert describe_sqlite(no_check)["notify_state"] != describe_sqlite(base)["notify_state"]


def describe_postgres(url: str) -> dict[str, list[tuple[Any, ...]]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default,"
                " is_identity FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name <> ALL(%s) ORDER BY table_name, column_name",
                (list(_IGNORED),),
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' AND tablename <> ALL(%s) ORDER BY indexname",
                (list(_IGNORED),),
            ).fetchall(),
            "triggers": conn.execute(
                "SELECT event_object_table, trigger_name, event_manipulation, action_timing,"
                " action_condition, action_statement FROM information_schema.triggers"
                " WHERE trigger_schema = 'public' ORDER BY trigger_name"
            ).fetchall(),
            "functions": conn.execute(
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                " WHERE p.pronamespace = 'public'::regnamespace ORDER BY p.proname"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                " AND conrelid::regclass::text <> ALL(%s) ORDER BY conname",
                (list(_IGNORED),),
            ).fetchall(),
        }


def test_postgres_migrations_produce_the_schema_file(pg_server: PGServer) -> None:
    import psycopg

    by_file = pg_server.create_database()
    with psycopg.connect(by_file, autocommit=True) as conn:
        conn.execute((SCHEMA / "postgres.sql").read_text().encode())
    by_migrations = pg_server.create_database()
    open_store(by_migrations).close()
    expected, got = describe_postgres(by_file), describe_postgres(by_migrations)
    assert got == expected


# -- the named queries ---------------------------------------------------------------------


def test_both_dialects_name_the_same_statements() -> None:
    assert sorted(load("sqlite")) == sorted(load("postgres"))


def test_every_sqlite_statement_prepares_against_the_schema(tmp_path: Path) -> None:
    """Each named statement compiles against the real schema (a typo fails here, not in use)."""
    store = open_store(tmp_path / "x.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "x.db")
    for name, sql in load("sqlite").items():
        try:
            conn.execute(f"EXPLAIN {sql}", {p: None for p in re.findall(r":(\w+)", sql)})
        except sqlite3.Error as exc:
            pytest.fail(f"{name}: {exc}")


@pytest.mark.parametrize(
    ("shared", "sqlite", "postgres"),
    [
        ("SELECT * FROM t WHERE a = :a", "SELECT * FROM t WHERE a = :a",
         "SELECT * FROM t WHERE a = %(a)s"),
        ("SELECT 1 WHERE id = ANY(:ids)",
         "SELECT 1 WHERE id IN (SELECT value FROM json_each(:ids))",
         "SELECT 1 WHERE id = ANY(%(ids)s)"),
        ("SELECT 1 WHERE id <> ALL(:ids)",
         "SELECT 1 WHERE id NOT IN (SELECT value FROM json_each(:ids))",
         "SELECT 1 WHERE id <> ALL(%(ids)s)"),
        ("SELECT id FROM w WHERE s = 'x' FOR UPDATE SKIP LOCKED",
         "SELECT id FROM w WHERE s = 'x'", "SELECT id FROM w WHERE s = 'x' FOR UPDATE SKIP LOCKED"),
        ("SELECT a FROM t WHERE b LIKE :p || '%' ORDER BY rowid",
         "SELECT a FROM t WHERE b LIKE :p || '%' ORDER BY rowid",
         "SELECT a FROM t WHERE b LIKE %(p)s || '%%' ORDER BY seq"),
        ("SELECT 'a:b', x::text FROM t", "SELECT 'a:b', x::text FROM t",
         "SELECT 'a:b', x::text FROM t"),
    ],
)  # fmt: skip
def test_translation_rules(shared: str, sqlite: str, postgres: str) -> None:
    assert to_sqlite(shared) == sqlite
    assert to_postgres(shared) == postgres


def test_a_file_names_each_statement_once() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    assert parse("-- a comment\n-- name: a\n-- about a\nSELECT 1;\n") == {"a": "SELECT 1"}
