"""A third kind of state kept fresh: an HTTP document such as a JWKS or an OIDC discovery document.

The whole declaration is the class below. stayfresh then gives it what it
gives tokens and reminders: ``ensure``/``get`` just before use (answered from
memory while fresh), one request at a time across threads, tasks and
processes (the store's lock, the state re-read after it), the cached copy while
the server is down, a background work that refreshes it while nobody asks,
and telemetry per layer. It honours ``Cache-Control: max-age`` (``no-cache``:
as soon as the minimum interval allows), revalidates with ``ETag`` /
``If-None-Match`` (a ``304`` keeps the body), and never asks more often than
``min_interval``. The state is kept in the store's generic state table.

Run it: ``python examples/http_document.py URL`` prints the document's size and
how it was obtained, twice (the second time from memory).
"""

from __future__ import annotations

from typing import Any, cast

from stayfresh.errors import TransientError
from stayfresh.fresh import Call, Flow, Http, Kind, Request, max_age
from stayfresh.store import FreshStateRow, Store

State = FreshStateRow | None  # None until the document was fetched once


class HttpDocument(Kind[State]):
    """An HTTP document, keyed by its URL."""

    name = "http"

    def __init__(self, min_interval: float = 60.0, default_ttl: float = 300.0) -> None:
        self.min_interval, self.default_ttl = min_interval, default_ttl

    def load(self, store: Store, url: str) -> State:
        return store.get_fresh_state(self.name, url)

    def stale_from(self, state: State, within: float) -> float:
        return float("-inf") if state is None else float(state.value["fresh_until"]) - within

    def usable_until(self, state: State) -> float:  # a cached copy serves while the server fails
        return float("-inf") if state is None else float("inf")

    def version(self, state: State) -> int:
        return 0 if state is None else state.version

    def refresh(self, store: Store, url: str, state: State, request: Request) -> Flow[State]:
        old: dict[str, Any] = dict(state.value) if state else {}
        etag = old.get("etag")
        reply = yield Http("GET", url, headers={"If-None-Match": etag} if etag else {})
        if reply.status == 304 and state is not None:
            body = old["body"]
        elif reply.status == 200:
            body, etag = reply.body.decode(), reply.headers.get("etag")
        else:
            raise TransientError(f"{url} answered {reply.status}")
        ttl = max(self.min_interval, max_age(reply.headers, self.default_ttl))
        value = {"body": body, "etag": etag, "fresh_until": request.clock() + ttl}
        expected = None if state is None else state.version
        yield Call(store.put_fresh_state, (self.name, url, value), {"expected_version": expected})
        return cast(State, (yield Call(self.load, (store, url))))


#: what a background work names (``keep_fresh(store, "http_document:JWKS", url)``)
JWKS = HttpDocument(min_interval=60.0)


if __name__ == "__main__":
    import sys

    from stayfresh.fresh import Fresh
    from stayfresh.store import open_store

    documents = Fresh(JWKS, open_store())
    for _ in range(2):
        outcome = documents.ensure(sys.argv[1])
        size = len(outcome.state.value["body"]) if outcome.state else 0
        print(f"{outcome.status}: {size} characters ({outcome.reason})")
