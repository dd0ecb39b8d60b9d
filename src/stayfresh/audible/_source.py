"""The Audible library API as a library source: ``GET {api}/1.0/library``, page by page.

A :class:`~stayfresh.jobs.sources.LibrarySource` like any other; the generic
sync loop sends its requests with the keeper's token. Its
:meth:`AudibleSource.content_license` asks Audible's ``licenserequest`` for
a download.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._input import check_text
from .._retry import parse_retry_after
from ..errors import ConfigError, TransientError
from ..jobs.sources import (
    ContentLicense,
    LibraryError,
    LibrarySource,
    Page,
    PageRequest,
    Position,
    int_or_none,
    item_list,
    join_names,
    read_json,
)
from ..tokens import Account
from ..tokens.internal import check_endpoint
from ._license import read_license
from ._locales import AMAZON_LOCALES

if TYPE_CHECKING:
    from ..jobs import Downloader

#: Audible serves at most this many items per page
AUDIBLE_MAX_PAGE = 1000
AUDIBLE_RESPONSE_GROUPS = "contributors,media,product_attrs,product_desc,product_details"


class AudibleSource(LibrarySource):
    """``GET {api}/1.0/library?num_results=&page=&response_groups=``.

    The API base is ``https://api.audible.<tld>`` for the account's locale, or
    the account's ``api_url`` (local servers, tests). The total comes from the
    ``total-count`` header; the last page is the one that reaches it (or a
    short page when the header is missing).
    """

    name = "audible"

    def __init__(self, account: Account) -> None:
        cfg = account.config
        self.base = api_base(account)
        self.page_size = int(cfg.get("library_page_size") or AUDIBLE_MAX_PAGE)
        if not 1 <= self.page_size <= AUDIBLE_MAX_PAGE:
            raise ConfigError(f"library_page_size must be 1..{AUDIBLE_MAX_PAGE}")
        self.response_groups = str(cfg.get("response_groups") or AUDIBLE_RESPONSE_GROUPS)

    @property
    def identity(self) -> str:
        return f"audible {self.base}/1.0/library num_results={self.page_size}"

    def page_request(self, position: Position, auth: Mapping[str, str]) -> PageRequest:
        return PageRequest(
            method="GET",
            url=f"{self.base}/1.0/library",
            params={
                "num_results": str(self.page_size),
                "page": str(position.page),
                "response_groups": self.response_groups,
            },
            headers={"Accept": "application/json", **auth},
        )

    def parse_page(self, position: Position, headers: Mapping[str, str], body: bytes) -> Page:
        data = read_json(body)
        items = item_list(data, "items")
        if items is None:
            raise ValueError("the library answer has no items list")
        total = int_or_none(headers.get("total-count"))
        pages = math.ceil(total / self.page_size) if total is not None else None
        if pages is not None:
            last = position.page >= pages or not items
        else:
            last = len(items) < self.page_size
        return Page(
            items=items,
            total_items=total,
            total_pages=pages,
            next=None if last else Position(page=position.page + 1),
        )

    def describe_item(self, item: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        asin = item.get("asin")
        if not isinstance(asin, str) or not asin:
            raise ValueError("a library item without an asin")
        title = item.get("title")
        return (
            check_text(asin, "asin"),
            title if isinstance(title, str) else None,
            join_names(item.get("authors")),
        )

    @classmethod
    def content_license(cls, job: Downloader, account: Account, item_id: str) -> ContentLicense:
        """Audible's ``licenserequest``: a signed CDN URL, the size, and the voucher.

        A 401 forces one token refresh (shared with every other caller);
        network trouble, 429 and 5xx are retried with the job's backoff.
        """
        url = f"{api_base(account)}/1.0/content/{quote(item_id, safe='')}/licenserequest"
        body = {
            "consumption_type": "Download",
            "supported_drm_types": ["Adrm", "Mpeg"],
            "quality": "High",
            "response_groups": "content_reference,certificate",
        }
        forced = False
        for attempt in range(1, job.attempts + 1):
            wait: float | None = None
            try:
                response = job.call(
                    "POST", url, headers={"Accept": "application/json"},
                    credentials=job.auth_headers(account), json=body,
                )  # fmt: skip
            except TransientError as exc:  # network trouble or the deadline
                problem = f"license request failed: {exc}"
            else:
                if response.status_code == 401 and not forced:
                    job.rejected(account)
                    forced = True
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"license request answered {response.status_code}"
                    now = dt.datetime.fromtimestamp(job.clock(), dt.UTC)
                    wait = parse_retry_after(response.headers.get("retry-after"), now)
                elif response.status_code >= 400:
                    text = response.content[:200].decode("utf-8", "replace")
                    raise LibraryError(
                        f"license for {item_id} refused ({response.status_code}): {text}"
                    )
                else:
                    return read_license(item_id, response.content)
            job.pause(attempt, problem, wait)
        raise AssertionError("unreachable")  # pragma: no cover


def api_base(account: Account) -> str:
    """The Audible API base of ``account``: its ``api_url``, or the locale's host."""
    override = account.config.get("api_url")
    if override:
        return check_endpoint(str(override)).rstrip("/")
    tld = AMAZON_LOCALES.get(str(account.config.get("locale") or "us"), "com")
    return f"https://api.audible.{tld}"
