"""The library part of the store contract, on every backend (SQLite and PostgreSQL).

Completes ``test_store_contract.py`` with what the move to one shared
implementation could break unseen: the listing's order, search, filters and
paging; a page's repeats, returns and sizes beyond one statement's list; the
cursor's counters; what a finished sync counts and stores.
"""

from __future__ import annotations

from typing import Any

import pytest

from stayfresh.store import LibrarySyncRow, NewLibraryItem, Store

T0 = 1_800_000_000.0


@pytest.fixture
def store(any_store: Store) -> Store:
    """A store on a fresh database of each backend (``any_store``: tests/store_backends.py)."""
    return any_store


def cursor(sync_id: str, account: str = "acc", **kw: Any) -> LibrarySyncRow:
    fields: dict[str, Any] = dict(
        account=account, sync_id=sync_id, source="src", state="running", next_page=2,
        cursor=None, total_items=None, total_pages=None, pages=1, items_seen=0, added=0,
        updated=0, removed=0, started_at=T0, updated_at=T0, finished_at=None,
    )  # fmt: skip
    fields.update(kw)
    return LibrarySyncRow(**fields)


def item(
    item_id: str, title: str | None = "t", *, authors: str | None = "Ann", digest: str = "d"
) -> NewLibraryItem:
    return NewLibraryItem(
        item_id=item_id, title=title, authors=authors, data=f'{{"v":"{digest}"}}', digest=digest
    )


def ids(rows: list[Any]) -> list[str]:
    return [r.item_id for r in rows]


def fill(store: Store, items: list[NewLibraryItem], account: str = "acc") -> None:
    store.store_library_page(account, "s1", items, cursor("s1", account), now=T0)


# -- the listing ----------------------------------------------------------------------------------


def test_list_orders_by_title_ignoring_ascii_case_nulls_first_then_id(store: Store) -> None:
    fill(
        store,
        [item("b2", "banana"), item("c", "cherry"), item("b1", "Banana"), item("a", "apple"),
         item("z", None), item("y", None), item("B0", "BANANA")],
    )  # fmt: skip
    assert ids(store.list_library("acc")) == ["y", "z", "a", "B0", "b1", "b2", "c"]


ALL = ["1", "2", "id-3", "4", "5", "axb"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        (None, ALL),
        ("", ALL),
        ("ALPHA", ["1"]),  # title, any case
        ("tolkien", ["2"]),  # authors
        ("ID-3", ["id-3"]),  # the id
        ("50%", ["4"]),  # % is literal
        ("%", ["4"]),
        ("a_b", ["5"]),  # _ is literal
        ("_", ["5"]),
        ("\\", ["5"]),  # so is the escape character
        ("nowhere", []),
    ],
)
def test_search_is_a_literal_case_insensitive_substring(
    store: Store, search: str | None, expected: list[str]
) -> None:
    fill(
        store,
        [item("1", "1 Alpha"), item("2", "2 Two", authors="J. R. R. Tolkien"),
         item("id-3", "3 Three"), item("4", "4 Sale 50%"), item("5", "5 a_b \\ c"),
         item("axb", "6 axb")],
    )  # fmt: skip
    assert ids(store.list_library("acc", search=search)) == expected


def test_list_filters_removed_and_other_accounts(store: Store) -> None:
    fill(store, [item("1", "a"), item("2", "b"), item("3", "c")])
    fill(store, [item("9", "z")], account="other")
    store.store_library_page("acc", "s2", [item("1", "a")], cursor("s2"), now=T0 + 1)
    assert store.finish_library_sync(cursor("s2"), now=T0 + 2) == 2
    assert ids(store.list_library("acc")) == ["1"]
    assert ids(store.list_library("acc", include_removed=True)) == ["1", "2", "3"]
    assert ids(store.list_library("acc", search="b", include_removed=True)) == ["2"]
    assert ids(store.list_library("acc", search="b")) == []
    assert ids(store.list_library("other")) == ["9"]
    assert store.list_library("nobody") == []
    assert (store.count_library("acc"), store.count_library("acc", include_removed=True)) == (1, 3)
    assert store.count_library("other") == 1
    assert store.count_library("nobody", include_removed=True) == 0


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        (None, 0, ["a", "b", "c", "d", "e"]),
        (2, 0, ["a", "b"]),
        (2, 2, ["c", "d"]),
        (None, 3, ["d", "e"]),
        (10, 4, ["e"]),
        (3, 5, []),
        (0, 0, []),
    ],
)
def test_list_pages(store: Store, limit: int | None, offset: int, expected: list[str]) -> None:
    fill(store, [item(x, x.upper()) for x in "ecadb"])
    assert ids(store.list_library("acc", limit=limit, offset=offset)) == expected


# -- pages ------------------------------------------------------------------------------------------


def test_a_repeated_id_counts_once_and_the_last_copy_wins(store: Store) -> None:
    counts = store.store_library_page(
        "acc", "s1", [item("1", "first"), item("2"), item("1", "last", digest="e")], cursor("s1"),
        now=T0,
    )  # fmt: skip
    assert (counts.added, counts.updated, counts.unchanged) == (2, 0, 0)
    got = store.get_library_item("acc", "1")
    assert got is not None and (got.title, got.data) == ("last", '{"v":"e"}')
    sync = store.get_library_sync("acc")
    assert sync is not None and sync.added == 2


def test_changed_returning_and_unchanged_items(store: Store) -> None:
    fill(store, [item("same"), item("changes"), item("returns"), item("leaves")])
    store.store_library_page("acc", "s2", [item("same"), item("changes")], cursor("s2"), now=T0 + 1)
    assert store.finish_library_sync(cursor("s2"), now=T0 + 2) == 2  # returns, leaves
    counts = store.store_library_page(
        "acc", "s3",
        [item("same"), item("changes", "new", authors=None, digest="e"), item("returns"),
         item("fresh")],
        cursor("s3", added=5, updated=7), now=T0 + 3,
    )  # fmt: skip
    assert (counts.added, counts.updated, counts.unchanged) == (1, 2, 1)
    same = store.get_library_item("acc", "same")
    assert same is not None and (same.first_seen_at, same.updated_at) == (T0, T0)
    changed = store.get_library_item("acc", "changes")
    assert changed is not None
    assert (changed.title, changed.authors, changed.data) == ("new", None, '{"v":"e"}')
    assert (changed.first_seen_at, changed.updated_at, changed.removed_at) == (T0, T0 + 3, None)
    back = store.get_library_item("acc", "returns")
    assert back is not None and (back.updated_at, back.removed_at) == (T0 + 3, None)
    fresh = store.get_library_item("acc", "fresh")
    assert fresh is not None and (fresh.first_seen_at, fresh.updated_at) == (T0 + 3, T0 + 3)
    sync = store.get_library_sync("acc")
    assert sync is not None and (sync.sync_id, sync.added, sync.updated) == ("s3", 6, 9)
    # s3 saw all but "leaves", which stays removed and is not counted again
    assert store.finish_library_sync(cursor("s3"), now=T0 + 4) == 0
    left = store.get_library_item("acc", "leaves")
    assert left is not None and left.removed_at == T0 + 2


def test_a_large_page_in_one_transaction(store: Store) -> None:
    many = [item(f"B{n:05d}", f"title {n}") for n in range(1_234)]
    first = store.store_library_page("acc", "s1", many, cursor("s1"), now=T0)
    assert (first.added, first.updated, first.unchanged) == (1_234, 0, 0)
    mixed = [
        item(i.item_id, i.title, digest="e" if n % 3 == 0 else "d") for n, i in enumerate(many)
    ]
    again = store.store_library_page("acc", "s2", mixed, cursor("s2"), now=T0 + 1)
    assert (again.added, again.updated, again.unchanged) == (0, 412, 822)
    assert store.finish_library_sync(cursor("s2"), now=T0 + 2) == 0  # all seen by s2
    assert store.count_library("acc") == 1_234


def test_an_empty_page_writes_only_the_cursor(store: Store) -> None:
    fill(store, [item("1")])
    counts = store.store_library_page("acc", "s2", [], cursor("s2", next_page=9), now=T0 + 1)
    assert (counts.added, counts.updated, counts.unchanged) == (0, 0, 0)
    sync = store.get_library_sync("acc")
    assert sync is not None and (sync.sync_id, sync.next_page) == ("s2", 9)
    assert store.finish_library_sync(cursor("s2"), now=T0 + 2) == 1


def test_a_page_touches_only_its_account(store: Store) -> None:
    fill(store, [item("1")])
    fill(store, [item("1")], account="other")
    store.store_library_page("acc", "s2", [item("1")], cursor("s2"), now=T0 + 1)
    assert store.finish_library_sync(cursor("s2", account="other"), now=T0 + 2) == 1
    assert store.finish_library_sync(cursor("s2"), now=T0 + 2) == 0


# -- sync rows ----------------------------------------------------------------------------------


def test_sync_rows_are_replaced_whole_and_finished(store: Store) -> None:
    assert store.get_library_sync("acc") is None
    first = cursor("s1", cursor="c1", total_items=10, total_pages=2, items_seen=5, removed=3)
    store.save_library_sync(first)
    assert store.get_library_sync("acc") == first
    second = cursor("s2", source="other", next_page=1, pages=0, started_at=T0 + 5)
    store.save_library_sync(second)
    assert store.get_library_sync("acc") == second
    store.store_library_page("acc", "s2", [item("1")], second, now=T0 + 6)
    assert store.finish_library_sync(second, now=T0 + 7) == 0
    done = store.get_library_sync("acc")
    assert done is not None
    assert (done.state, done.cursor, done.removed, done.finished_at, done.updated_at) == (
        "finished", None, 0, T0 + 7, T0 + 7,
    )  # fmt: skip
    assert (done.source, done.started_at, done.added) == ("other", T0 + 5, 0)


def test_items_and_downloads(store: Store) -> None:
    assert store.get_library_item("acc", "1") is None
    assert not store.set_library_download("acc", "1", path="/x", size=1, now=T0)
    fill(store, [item("1", None, authors=None)])
    got = store.get_library_item("acc", "1")
    assert got is not None and (got.title, got.authors, got.download_path) == (None, None, None)
    assert store.set_library_download("acc", "1", path="/a/b.aax", size=2**40, now=T0 + 1)
    got = store.get_library_item("acc", "1")
    assert got is not None
    assert (got.download_path, got.download_size, got.downloaded_at) == ("/a/b.aax", 2**40, T0 + 1)
    assert store.get_library_item("other", "1") is None
