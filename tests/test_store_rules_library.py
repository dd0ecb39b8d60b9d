"""The library sync's rules, without a database: pure functions of rows and ``now``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from stayfresh.store import LibrarySyncRow, NewLibraryItem, PageCounts
from stayfresh.store._library import (
    SYNC_COLUMNS,
    Known,
    cursor_after_page,
    finished_sync,
    item_change,
    item_from_row,
    known_from_rows,
    like_pattern,
    plan_page,
    search_pattern,
    sync_from_row,
    sync_params,
    unique_items,
)
from stayfresh.store._queries import load

if TYPE_CHECKING:
    from stayfresh.store._queries import Dialect

T0 = 1_800_000_000.0


def item(item_id: str, digest: str = "d", title: str | None = "t") -> NewLibraryItem:
    return NewLibraryItem(item_id=item_id, title=title, authors="a", data="{}", digest=digest)


def cursor(**kw: Any) -> LibrarySyncRow:
    fields: dict[str, Any] = dict(
        account="acc", sync_id="s1", source="src", state="running", next_page=3,
        cursor="c3", total_items=10, total_pages=5, pages=2, items_seen=4, added=3,
        updated=1, removed=0, started_at=T0, updated_at=T0 + 1, finished_at=None,
    )  # fmt: skip
    fields.update(kw)
    return LibrarySyncRow(**fields)


@pytest.mark.parametrize(
    ("before", "digest", "expected"),
    [
        (None, "d", "added"),
        (Known(digest="d", removed_at=None), "d", "unchanged"),
        (Known(digest="d", removed_at=None), "e", "updated"),
        (Known(digest="d", removed_at=T0), "d", "updated"),  # back after a removal
        (Known(digest="d", removed_at=T0), "e", "updated"),
        (Known(digest="d", removed_at=0.0), "d", "updated"),  # removed at the epoch is removed
    ],
)
def test_item_change(before: Known | None, digest: str, expected: str) -> None:
    assert item_change(before, item("1", digest)) == expected


@pytest.mark.parametrize(
    ("ids_digests", "expected"),
    [
        ([], []),
        ([("1", "a")], [("1", "a")]),
        ([("1", "a"), ("2", "b")], [("1", "a"), ("2", "b")]),
        # a repeated id: the last copy wins, at the first copy's place
        ([("1", "a"), ("2", "b"), ("1", "c")], [("1", "c"), ("2", "b")]),
        ([("2", "x"), ("2", "y"), ("2", "z")], [("2", "z")]),
    ],
)
def test_unique_items(ids_digests: list[tuple[str, str]], expected: list[tuple[str, str]]) -> None:
    got = unique_items([item(i, d) for i, d in ids_digests])
    assert [(i.item_id, i.digest) for i in got] == expected


def test_plan_page_sorts_items_and_counts() -> None:
    known = {
        "same": Known(digest="d", removed_at=None),
        "new-data": Known(digest="old", removed_at=None),
        "back": Known(digest="d", removed_at=T0),
        "not-on-page": Known(digest="d", removed_at=None),
    }
    page = [item("fresh"), item("same"), item("new-data"), item("back"), item("fresh2")]
    plan = plan_page(page, known)
    assert [i.item_id for i in plan.added] == ["fresh", "fresh2"]
    assert [i.item_id for i in plan.updated] == ["new-data", "back"]
    assert plan.unchanged == ("same",)
    assert plan.counts == PageCounts(added=2, updated=2, unchanged=1)


def test_plan_page_of_nothing() -> None:
    plan = plan_page([], {"x": Known(digest="d", removed_at=None)})
    assert plan.counts == PageCounts(added=0, updated=0, unchanged=0)


@pytest.mark.parametrize(
    ("added", "updated", "counts", "expected"),
    [
        (0, 0, PageCounts(added=0, updated=0, unchanged=7), (0, 0)),
        (3, 1, PageCounts(added=2, updated=5, unchanged=0), (5, 6)),
        (10, 0, PageCounts(added=0, updated=1, unchanged=9), (10, 1)),
    ],
)
def test_cursor_after_page_adds_the_page_counts(
    added: int, updated: int, counts: PageCounts, expected: tuple[int, int]
) -> None:
    before = cursor(added=added, updated=updated)
    after = cursor_after_page(before, counts)
    assert (after.added, after.updated) == expected
    # everything else is the caller's cursor, untouched (removed included)
    rest = [c for c in SYNC_COLUMNS if c not in ("added", "updated")]
    assert [getattr(after, c) for c in rest] == [getattr(before, c) for c in rest]


@pytest.mark.parametrize("removed", [0, 1, 42])
def test_finished_sync(removed: int) -> None:
    before = cursor(removed=7)
    done = finished_sync(before, removed, T0 + 50)
    assert (done.state, done.removed, done.cursor) == ("finished", removed, None)
    assert (done.updated_at, done.finished_at, done.started_at) == (T0 + 50, T0 + 50, T0)
    assert (done.added, done.updated, done.pages, done.next_page) == (3, 1, 2, 3)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("abc", "%abc%"),
        ("100%", "%100\\%%"),
        ("a_b", "%a\\_b%"),
        ("C:\\x", "%C:\\\\x%"),
        ("\\%_", "%\\\\\\%\\_%"),
    ],
)
def test_like_pattern_escapes_wildcards(text: str, pattern: str) -> None:
    assert like_pattern(text) == pattern


@pytest.mark.parametrize(
    ("search", "pattern"), [(None, None), ("", None), ("x", "%x%"), (" ", "% %")]
)
def test_search_pattern(search: str | None, pattern: str | None) -> None:
    assert search_pattern(search) == pattern


def test_sync_columns_are_the_row_fields() -> None:
    assert set(SYNC_COLUMNS) == {f.name for f in dataclasses.fields(LibrarySyncRow)}
    assert len(SYNC_COLUMNS) == len(set(SYNC_COLUMNS))


def test_sync_row_round_trip() -> None:
    row = cursor(state="finished", cursor=None, finished_at=T0 + 9)
    assert sync_from_row(sync_params(row)) == row


def test_item_from_row_reads_times_as_floats() -> None:
    got = item_from_row(
        {
            "account": "a", "item_id": "1", "title": None, "authors": "x", "data": "{}",
            "first_seen_at": 5, "updated_at": 6, "removed_at": None, "download_path": "/p",
            "download_size": 9, "downloaded_at": 7.5,
        }
    )  # fmt: skip
    assert isinstance(got.first_seen_at, float) and got.first_seen_at == 5.0
    assert isinstance(got.updated_at, float) and got.updated_at == 6.0
    assert (got.title, got.download_size, got.downloaded_at) == (None, 9, 7.5)


def test_known_from_rows() -> None:
    rows = [
        {"item_id": "1", "digest": "a", "removed_at": None},
        {"item_id": "2", "digest": "b", "removed_at": T0},
    ]
    assert known_from_rows(rows) == {
        "1": Known(digest="a", removed_at=None),
        "2": Known(digest="b", removed_at=T0),
    }


_LIBRARY_QUERIES = {
    "get_library_sync", "put_library_sync", "library_known_items", "add_library_item",
    "change_library_item", "touch_library_items", "remove_unseen_library_items",
    "count_library", "count_library_all", "get_library_item", "set_library_download",
    "list_library",
}  # fmt: skip


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_library_statement_exists_in_each_dialect(dialect: Dialect) -> None:
    assert not _LIBRARY_QUERIES - set(load(dialect))


def test_the_sync_row_statement_names_every_column() -> None:
    sql = load("sqlite")["put_library_sync"]
    for column in SYNC_COLUMNS:
        assert f":{column}" in sql, column
        if column != "account":
            assert f"{column} = excluded.{column}" in sql, column


def test_the_page_read_locks_rows_on_postgres_only() -> None:
    assert "FOR UPDATE" in load("postgres")["library_known_items"]
    assert "FOR UPDATE" not in load("sqlite")["library_known_items"]
    assert "json_each" in load("sqlite")["touch_library_items"]
