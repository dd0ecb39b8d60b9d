"""The generic JSON source: page and cursor modes against a real HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from stayfresh.errors import ConfigError
from stayfresh.jobs import LibraryError, LibrarySync
from stayfresh.jobs.sources import JsonSource, Position, source_for
from stayfresh.store import Store
from stayfresh.tokens import Account, Keeper

BOOKS = [
    {"id": n, "name": f"Volume {n}", "by": [f"Writer {n % 3}", "Coauthor"]} for n in range(1, 251)
]


def api(seen: Seen) -> Reply:
    """A bookshop API: /shelf pages by number, /feed pages by cursor; wants the token."""
    url = urllib.parse.urlsplit(seen.path)
    query = dict(urllib.parse.parse_qsl(url.query))
    if url.path == "/token":
        return token_reply(access="at-json", expires_in=3600)
    if seen.headers.get("authorization") != "Bearer at-json":
        return Reply(401, {"error": "invalid_token"})
    if url.path == "/shelf":
        page, size = int(query["p"]), int(query["n"])
        chunk = BOOKS[page * size : (page + 1) * size]  # pages count from 0 here
        return Reply(body={"data": {"books": chunk}, "meta": {"total": len(BOOKS)}})
    if url.path == "/feed":
        start = int(query.get("after", "0"))
        chunk = BOOKS[start : start + 100]
        following = start + 100 if start + 100 < len(BOOKS) else None
        return Reply(body={"results": chunk, "paging": {"next": following}})
    return Reply(404, {"error": "not found"})


@pytest.fixture
def shop() -> Iterator[FakeTokenServer]:
    server = FakeTokenServer(api).start()
    yield server
    server.stop()


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected retry (would sleep {seconds} s)")


def configure(store: Store, name: str, library: dict[str, Any]) -> None:
    row = store.get_account(name)
    assert row is not None
    store.update_config(name, {**row.config, "library_source": "json", "library": library})


def paths(shop: FakeTokenServer) -> list[str]:
    return [s.path for s in shop.requests if not s.path.startswith("/token")]


def test_page_mode_with_a_url_template_items_path_and_total(
    store: Store, shop: FakeTokenServer, keeper: Keeper
) -> None:
    add_oauth2(store, "shop", shop.token_url, expires_in=0, access="stale")
    configure(
        store,
        "shop",
        {
            "url": shop.url + "/shelf?p={page}&n={page_size}", "items": "data.books",
            "id": "id", "title": "name", "authors": "by", "page_size": 100,
            "first_page": 0, "total_path": "meta.total",
        },
    )  # fmt: skip
    sync = LibrarySync(keeper, sleep=no_sleep)
    try:
        stats = sync.run("shop")
    finally:
        sync.close()
    assert (stats.pages, stats.items_seen, stats.added, stats.total_items) == (3, 250, 250, 250)
    assert paths(shop) == [f"/shelf?p={p}&n=100" for p in (0, 1, 2)]
    item = store.get_library_item("shop", "7")
    assert item is not None and item.title == "Volume 7"
    assert item.authors == "Writer 1, Coauthor"


def test_cursor_mode_follows_the_next_cursor_until_it_is_missing(
    store: Store, shop: FakeTokenServer, keeper: Keeper
) -> None:
    add_oauth2(store, "feed", shop.token_url, expires_in=0, access="stale")
    configure(
        store,
        "feed",
        {
            "url": shop.url + "/feed", "mode": "cursor", "items": "results",
            "title": "name", "cursor_param": "after", "cursor_path": "paging.next",
        },
    )  # fmt: skip
    sync = LibrarySync(keeper, sleep=no_sleep)
    try:
        stats = sync.run("feed")
    finally:
        sync.close()
    assert (stats.pages, stats.items_seen, stats.added) == (3, 250, 250)
    assert paths(shop) == ["/feed", "/feed?after=100", "/feed?after=200"]
    assert store.count_library("feed") == 250


def test_library_configure_cli_then_sync(db_path: Path, shop: FakeTokenServer) -> None:
    env = {"RT": "refresh", "CS": "secret"}
    done = invoke_cli(
        "account", "add", "shop", "--provider", "oauth2", "--token-url", shop.token_url,
        "--client-id", "app", "--client-secret-env", "CS", "--refresh-token-env", "RT",
        db=db_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = invoke_cli(
        "library", "configure", "shop", "--url", shop.url + "/feed", "--mode", "cursor",
        "--items", "results", "--title-field", "name", "--authors-field", "by",
        "--cursor-param", "after", "--cursor-path", "paging.next", db=db_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = invoke_cli("sync", "shop", "--json", db=db_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items_seen"] == 250
    rows = json.loads(invoke_cli("library", "list", "shop", "--search", "writer 2", "--json",
                              db=db_path).stdout)  # fmt: skip
    assert len(rows) == len([b for b in BOOKS if b["id"] % 3 == 2])  # type: ignore[operator]


def test_bad_configuration_is_reported_clearly(store: Store, shop: FakeTokenServer) -> None:
    add_oauth2(store, "shop", shop.token_url)
    row = store.get_account("shop")
    assert row is not None
    with pytest.raises(ConfigError, match="library configure shop"):
        source_for(Account.from_row(row))
    configure(store, "shop", {"url": "http://example.com/x", "mode": "page"})
    row = store.get_account("shop")
    assert row is not None
    with pytest.raises(ConfigError, match="https"):
        source_for(Account.from_row(row))
    source = JsonSource(
        Account.from_row(row).__class__(
            **{**_fields(Account.from_row(row)), "config": {"library": {"url": "https://x/y"}}}
        )
    )
    with pytest.raises(LibraryError, match="no item list"):
        source.parse_page(Position(page=1), {}, b'{"data": []}')


def _fields(account: Account) -> dict[str, Any]:
    return {f: getattr(account, f) for f in account.__dataclass_fields__}
