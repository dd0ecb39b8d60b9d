"""The third kind, ``examples/http_document.py``: an HTTP document kept fresh by both layers.

A real HTTP server on 127.0.0.1 serves a JWKS with ``Cache-Control`` and an
``ETag``; the tests count what reaches it. The declaration itself must stay
within 30 lines of code: that is the promise of the common shape.
"""

from __future__ import annotations

import ast
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import http_document
import pytest
from http_document import JWKS, HttpDocument

from stayfresh.errors import TransientError
from stayfresh.fresh import Fresh, drop_fresh, keep_fresh, use_fresh
from stayfresh.store import Store
from stayfresh.testing import FakeClock, LocalHTTPServer, Request, Response
from stayfresh.work import Runner

T0 = 1_700_000_000.0
KEYS = {"keys": [{"kid": "k1", "kty": "RSA", "n": "abc", "e": "AQAB"}]}


class Jwks:
    """What the server answers: the keys, an ETag, and a Cache-Control of our choosing."""

    def __init__(self) -> None:
        self.etag = '"v1"'
        self.cache_control = "public, max-age=600"
        self.status = 200

    def __call__(self, request: Request) -> Response:
        if self.status != 200:
            return Response(self.status, b"down")
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control}
        if request.headers.get("if-none-match") == self.etag:
            return Response(304, b"", headers)
        return Response(200, KEYS, headers)


@pytest.fixture
def server() -> Iterator[tuple[LocalHTTPServer, Jwks, str]]:
    jwks = Jwks()
    with LocalHTTPServer(jwks) as http:
        yield http, jwks, f"{http.url}/.well-known/jwks.json"


def test_the_declaration_is_at_most_30_lines_of_code() -> None:
    tree = ast.parse(inspect.getsource(HttpDocument))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.stmt):
            assert node.end_lineno is not None
            lines.update(range(node.lineno, node.end_lineno + 1))
    source = inspect.getsource(HttpDocument).splitlines()
    code = [n for n in lines if source[n - 1].strip() and not source[n - 1].strip().startswith("#")]
    assert len(code) <= 30, len(code)


def test_max_age_then_etag_revalidation(store: Store, server: Any) -> None:
    http, jwks, url = server
    clock = FakeClock(T0)
    documents = Fresh(HttpDocument(), store, clock=clock)
    first = documents.ensure(url)
    assert first.status == "refreshed" and '"kid": "k1"' in first.state.value["body"]
    for _ in range(50):
        assert documents.ensure(url).status == "fresh"  # max-age=600: from memory
    assert len(http.requests) == 1
    clock.advance(601)
    again = documents.ensure(url)
    assert again.status == "refreshed" and len(http.requests) == 2
    assert http.requests[1].headers["if-none-match"] == '"v1"'  # revalidated: 304, body kept
    assert again.state.value["body"] == first.state.value["body"]
    assert again.state.value["fresh_until"] == T0 + 601 + 600
    jwks.etag = '"v2"'  # the keys rotate: a 200 with the new ETag
    clock.advance(601)
    assert documents.ensure(url).state.value["etag"] == '"v2"'
    (row,) = store.fresh_telemetry("http", url)
    assert (row.layer, row.successes, row.failures) == ("use", 3, 0)


def test_no_cache_is_bounded_by_the_minimum_interval(store: Store, server: Any) -> None:
    http, jwks, url = server
    jwks.cache_control = "no-cache"
    clock = FakeClock(T0)
    documents = Fresh(HttpDocument(min_interval=60), store, clock=clock)
    documents.ensure(url)
    clock.advance(59)
    assert documents.ensure(url).status == "fresh" and len(http.requests) == 1
    clock.advance(1)
    assert documents.ensure(url).status == "refreshed" and len(http.requests) == 2


def test_many_callers_one_request_and_the_cached_copy_while_the_server_is_down(
    store: Store, server: Any
) -> None:
    http, jwks, url = server
    clock = FakeClock(T0)
    documents = Fresh(HttpDocument(), store, clock=clock)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(documents.get(url))) for _ in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(http.requests) == 1 and len(results) == 10
    jwks.status = 503
    clock.advance(601)
    cached = documents.get(url)  # stale, the server fails: the cached copy, with a warning
    assert cached is not None and '"k1"' in cached.value["body"]
    (row,) = store.fresh_telemetry("http", url)
    assert (row.failures, row.transient_failures) == (1, 1)
    other = Fresh(HttpDocument(), store, clock=clock)
    with pytest.raises(TransientError, match="answered 503"):
        other.get(f"{http.url}/never-fetched", force=True)


def test_the_background_layer_keeps_it_fresh_while_nobody_asks(store: Store, server: Any) -> None:
    http, jwks, url = server
    jwks.cache_control = "max-age=1800"
    clock = FakeClock()  # now: keep_fresh enqueues on the real clock
    documents = Fresh(JWKS, store, clock=clock)
    use_fresh(documents)
    try:
        keep_fresh(store, "http_document:JWKS", url, every=900)
        runner = Runner(store, clock=clock, listen=False)
        clock.advance(1)  # past the moment keep_fresh enqueued it
        assert runner.run_pending() == 1 and len(http.requests) == 1
        state = store.get_fresh_state("http", url)
        assert state is not None and state.value["etag"] == '"v1"'
        clock.advance(900)
        assert runner.run_pending() == 1 and len(http.requests) == 1  # max-age: still fresh
        clock.advance(900)
        assert runner.run_pending() == 1 and len(http.requests) == 2  # revalidated
        layers = {r.layer: r.successes for r in store.fresh_telemetry("http", url)}
        assert layers == {"background": 2}
    finally:
        drop_fresh(documents)
    assert http_document.JWKS is JWKS


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 300.0),
        ("public, max-age=600", 600.0),
        ('private, max-age="30"', 30.0),
        ("no-cache", 0.0),
        ("max-age=600, no-store", 0.0),
        ("max-age=-1", 300.0),
        ("max-age=abc", 300.0),
        ("max-age=99999999999999", 300.0),
        ("max-age=999999999999", 365 * 24 * 3600.0),
        ("max-age=60, " + "x" * 1000, 300.0),
    ],
)
def test_max_age_is_the_servers_word_bounded(header: str | None, expected: float) -> None:
    from stayfresh.fresh import max_age

    headers = {} if header is None else {"cache-control": header}
    assert max_age(headers, 300.0) == expected
