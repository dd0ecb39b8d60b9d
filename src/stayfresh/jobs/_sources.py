"""Library sources: where an account's library comes from, one page at a time.

A source builds the request for a page and reads the answer; it does no I/O
and never sees a token store — the sync loop (:mod:`._library`) sends the
request with headers from the keeper, retries, and commits. That keeps the
one path to tokens in one place and makes a source easy to write and test.

A generic JSON source ships here, configured per account (URL template,
items path, page or cursor parameter) without writing code; the Audible
library source lives in :mod:`stayfresh.audible` (loaded by name when an
account uses it). More can be added with :func:`register_source` or the
``stayfresh.library_sources`` entry point. A source may also say where an
item's file is (:meth:`LibrarySource.content_license`, used by downloads);
by default it is the account's ``download_url`` template.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._input import check_text, loads_json
from ..errors import ConfigError, StayfreshError
from ..tokens import Account
from ..tokens.internal import check_endpoint

if TYPE_CHECKING:
    from ._download import Downloader
    from ._license import ContentLicense

#: a library page nests a handful of levels; far deeper is refused before parsing
MAX_PAGE_DEPTH = 64
#: a next-page cursor is sent back in the URL: an opaque token, not a document
MAX_CURSOR = 2048


class LibraryError(StayfreshError):
    """The library API refused a request or answered something unusable (not retried)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Position:
    """Where a page is: its 1-based number, and the cursor to send (cursor mode)."""

    page: int
    cursor: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PageRequest:
    """One HTTP request for a page; ``headers`` carry the access token."""

    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]

    def __repr__(self) -> str:  # headers hold the token
        return f"PageRequest({self.method} {self.url}, params={self.params!r})"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Page:
    """A page as the source read it. ``next`` is None on the last page."""

    items: list[Mapping[str, Any]]
    total_items: int | None
    total_pages: int | None
    next: Position | None


class LibrarySource(abc.ABC):
    """Builds page requests and reads pages for one account."""

    #: the registered name ("audible", "json")
    name: str = ""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """What a stored cursor is valid for; a sync whose source changed restarts."""

    def first(self) -> Position:
        return Position(page=1)

    @abc.abstractmethod
    def page_request(self, position: Position, auth: Mapping[str, str]) -> PageRequest:
        """The request for the page at ``position``, authenticated by ``auth`` headers."""

    @abc.abstractmethod
    def parse_page(self, position: Position, headers: Mapping[str, str], body: bytes) -> Page:
        """Read a 2xx answer. Raise ValueError for a body that is not what was expected.

        ``headers`` have lower-case names.
        """

    @abc.abstractmethod
    def describe_item(self, item: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        """(item id, title, authors) of one item; raise ValueError without an id."""

    @classmethod
    def content_license(cls, job: Downloader, account: Account, item_id: str) -> ContentLicense:
        """Where ``item_id``'s file is: by default the account's ``download_url`` template.

        A class method, so a download needs no page settings; ``job`` is the
        downloader, for sources whose API has a license call
        (:meth:`~stayfresh.jobs.Downloader.call` with
        :meth:`~stayfresh.jobs.Downloader.auth_headers`).
        """
        from ._license import json_license

        return json_license(account, item_id)


def read_json(body: bytes) -> Any:
    """The page's JSON; ValueError (a bad page, retried) for anything else.

    The body's size is bounded by the HTTP read; its nesting is bounded here,
    before ``json.loads`` could recurse 100,000 levels.
    """
    return loads_json(body, "the answer", max_bytes=None, max_depth=MAX_PAGE_DEPTH)


def item_list(data: Any, where: str) -> list[Mapping[str, Any]] | None:
    """The item list at ``where``, or None; ValueError if an item is not an object."""
    items = dig(data, where)
    if not isinstance(items, list):
        return None
    if not all(isinstance(item, Mapping) for item in items):
        raise ValueError("the library answer has an item that is not a JSON object")
    return items


def _item_id(value: Any) -> str:
    """An item's id as text: one printable line of at most 200 characters (ValueError)."""
    if isinstance(value, Mapping | list):
        raise ValueError(f"a library item whose id is a {type(value).__name__}")
    return check_text(str(value), "item id")


def dig(data: Any, path: str) -> Any:
    """``data`` at a dotted ``path`` ("" is ``data`` itself); None when a step is missing."""
    for step in path.split(".") if path else ():
        if isinstance(data, Mapping):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def join_names(value: Any) -> str | None:
    """Authors as one string: a string, or a list of strings or ``{"name": …}`` objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        names = [v.get("name") if isinstance(v, Mapping) else v for v in value]
        return ", ".join(str(n) for n in names if n) or None
    return None


def _config_int(value: Any, key: str, minimum: int) -> int:
    """An integer setting of the account's library config (stored, so checked again)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"library {key} must be an integer") from None
    if not minimum <= number <= 2**31:
        raise ConfigError(f"library {key} must be between {minimum} and {2**31}")
    return number


def int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 1e400 total
        return None


class JsonSource(LibrarySource):
    """Any JSON API, configured in the account's ``library`` settings.

    ``url`` is a template: ``{page}``, ``{page_size}`` and ``{cursor}`` are
    replaced (URL-encoded); without them, ``page_param`` / ``cursor_param``
    are added as query parameters. ``items`` is the dotted path of the item
    list in the answer (``""`` when the answer is the list). In page mode the
    last page is a short or empty one (or the one reaching ``total_path`` /
    ``total_header``); in cursor mode it is the one without a next cursor at
    ``cursor_path``.
    """

    name = "json"

    def __init__(self, account: Account) -> None:
        cfg = account.config.get("library")
        if not isinstance(cfg, Mapping) or not cfg.get("url"):
            raise ConfigError(
                f"account {account.name!r} has no library source: "
                f"run `stayfresh library configure {account.name} --url …`"
            )
        self.url = str(cfg["url"])
        check_endpoint(self.url.split("?", 1)[0].replace("{", "").replace("}", ""))
        self.mode = str(cfg.get("mode") or "page")
        if self.mode not in ("page", "cursor"):
            raise ConfigError("library mode must be page or cursor")
        self.items_path = str(cfg.get("items", "items"))
        self.id_path = str(cfg.get("id") or "id")
        self.title_path = str(cfg.get("title") or "title")
        self.authors_path = str(cfg.get("authors") or "authors")
        self.page_size = _config_int(cfg.get("page_size") or 100, "page_size", 1)
        self.first_page = _config_int(cfg.get("first_page", 1), "first_page", -(2**31))
        self.page_param = str(cfg.get("page_param") or "page")
        self.page_size_param = cfg.get("page_size_param")
        self.cursor_param = str(cfg.get("cursor_param") or "cursor")
        self.cursor_path = str(cfg.get("cursor_path") or "next_cursor")
        self.total_path = cfg.get("total_path")
        self.total_header = cfg.get("total_header")

    @property
    def identity(self) -> str:
        return f"json {self.mode} {self.url} items={self.items_path} size={self.page_size}"

    def page_request(self, position: Position, auth: Mapping[str, str]) -> PageRequest:
        number = self.first_page + position.page - 1
        values = {
            "page": str(number),
            "page_size": str(self.page_size),
            "cursor": position.cursor or "",
        }
        url = self.url
        for key, value in values.items():
            url = url.replace("{" + key + "}", quote(value, safe=""))
        params: dict[str, str] = {}
        if self.mode == "page" and "{page}" not in self.url:
            params[self.page_param] = str(number)
        if self.mode == "cursor" and "{cursor}" not in self.url and position.cursor:
            params[self.cursor_param] = position.cursor
        if self.page_size_param and "{page_size}" not in self.url:
            params[str(self.page_size_param)] = str(self.page_size)
        return PageRequest(
            method="GET", url=url, params=params, headers={"Accept": "application/json", **auth}
        )

    def parse_page(self, position: Position, headers: Mapping[str, str], body: bytes) -> Page:
        data = read_json(body)
        items = item_list(data, self.items_path)
        if items is None:
            raise LibraryError(f"no item list at {self.items_path or '(the answer)'!r}")
        total = None
        if self.total_path:
            total = int_or_none(dig(data, str(self.total_path)))
        elif self.total_header:
            total = int_or_none(headers.get(str(self.total_header).lower()))
        pages = math.ceil(total / self.page_size) if total is not None else None
        following: Position | None
        if self.mode == "cursor":
            cursor = dig(data, self.cursor_path)
            if isinstance(cursor, Mapping | list) or len(str(cursor)) > MAX_CURSOR:
                raise ValueError(f"the next cursor is not a token of at most {MAX_CURSOR} chars")
            done = not items or cursor in (None, "") or cursor == position.cursor
            following = None if done else Position(page=position.page + 1, cursor=str(cursor))
        else:
            done = not items or len(items) < self.page_size
            if pages is not None:
                done = done or position.page >= pages
            following = None if done else Position(page=position.page + 1)
        return Page(items=items, total_items=total, total_pages=pages, next=following)

    def describe_item(self, item: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        found = dig(item, self.id_path)
        if found is None or found == "":
            raise ValueError(f"a library item without {self.id_path!r}")
        title = dig(item, self.title_path)
        return (
            _item_id(found),
            None if title is None else str(title),
            join_names(dig(item, self.authors_path)),
        )


SourceFactory = Callable[[Account], LibrarySource]
_sources: dict[str, SourceFactory] = {"json": JsonSource}
#: sources that ship with stayfresh outside this module, loaded when an account names them
_SHIPPED = {"audible": "stayfresh.audible:AudibleSource"}


def register_source(name: str, factory: SourceFactory) -> None:
    """Make a source available as ``library_source = name`` in account settings."""
    _sources[name] = factory


def source_name(account: Account) -> str:
    """The account's source name: ``library_source`` if set, else ``audible`` for
    Amazon accounts and ``json`` for the others."""
    return str(
        account.config.get("library_source")
        or ("audible" if account.provider == "amazon" else "json")
    )


def source_factory(account: Account) -> SourceFactory:
    """What makes the account's source (a :class:`LibrarySource` class, usually)."""
    name = source_name(account)
    factory = _sources.get(name)
    if factory is None and name in _SHIPPED:
        module, _, attr = _SHIPPED[name].partition(":")
        factory = _sources[name] = getattr(importlib.import_module(module), attr)
    if factory is None:
        for ep in entry_points(group="stayfresh.library_sources"):
            if ep.name == name:
                factory = ep.load()
                _sources[name] = factory
                break
    if factory is None:
        known = ", ".join(sorted({*_sources, *_SHIPPED}))
        raise ConfigError(f"unknown library source {name!r} (one of {known})")
    return factory


def source_for(account: Account) -> LibrarySource:
    """The account's source: ``library_source`` if set, else Audible for Amazon accounts.

    Accounts of other providers use the JSON source once it is configured.
    """
    return source_factory(account)(account)
