"""A real HTTP server on 127.0.0.1 that misbehaves on purpose.

Every outbound request stayfresh makes must survive a server that lies, stalls,
floods or redirects. This module gives tests such a server: a real threaded
HTTP/1.1 listener on a real socket, whose answer per path is one of the
*behaviours* below. Nothing in stayfresh is patched.

Use::

    with HostileServer() as evil, HostileServer() as other:
        evil.route("/token", redirect(other.url("/steal")))
        other.route("/steal", echo())
        ...                       # point stayfresh at evil.url("/token")
        assert other.seen("/steal") == []          # or inspect the headers it got

- ``HostileServer.url(path)`` is an absolute URL on this server; two servers
  are two *origins* (the port differs), which is what cross-origin redirect
  tests need.
- ``route(path, behaviour)`` decides the answer for a path (query ignored);
  unknown paths answer 404. Routes can be changed while the server runs.
- ``requests`` records every request received (method, path with query,
  lower-case headers, body) before the behaviour runs; ``seen(path)`` filters.
- ``close()`` (or leaving the ``with``) stops endless/drip behaviours too:
  they watch a stop event, so a test never leaves a thread writing forever.

Behaviours (each a function returning a :data:`Behaviour`):

- :func:`respond` — a plain answer (status, body, headers).
- :func:`echo` — answers JSON ``{"method", "path", "headers", "body"}``.
- :func:`endless` — 200 with no length, ``chunk`` bytes forever (or until the
  client hangs up): tests that a size cap keeps memory flat.
- :func:`drip` — announces a body and sends it one byte per ``interval``
  seconds: tests that a timeout is a total deadline, not a per-read one.
- :func:`slow_headers` — sends the status line and headers one byte per
  ``interval``: the deadline must cover the wait for headers too.
- :func:`redirect` — a 3xx to ``location`` (another server's URL for a
  cross-origin redirect).
- :func:`length_lie` — announces ``announced`` bytes in Content-Length and
  sends ``body`` (shorter), then closes or stalls.
- :func:`serve_file` — a byte-range-capable file with an optional
  ``Repr-Digest`` (RFC 9530, sha-256); :func:`wrong_range` is the same file
  answering a Range request with a Content-Range that starts elsewhere or
  announces another total.

PYTEST_DONT_REWRITE: registered as a plugin and imported by test modules alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (header names lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: a behaviour writes the whole answer through the handler; it may block until
#: ``handler.stopping`` is set (the server is closing)
Behaviour = Callable[["_Handler"], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: clients hanging up on an endless body is the point of this server."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    @property
    def stopping(self) -> threading.Event:
        return self.server.stopping

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        with self.server.lock:
            self.server.requests.append(received)
            behaviour = self.server.routes.get(urlsplit(self.path).path)
        if behaviour is None:
            behaviour = respond(404, b"no such route")
        try:
            behaviour(self)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    def received(self) -> Received:
        """The request being answered (the last one recorded for this path)."""
        with self.server.lock:
            return next(r for r in reversed(self.server.requests) if r.path == self.path)

    def send_head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``requests`` instead."""


class HostileServer:
    """A threaded HTTP server on 127.0.0.1 whose answers misbehave on purpose."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def route(self, path: str, behaviour: Behaviour) -> HostileServer:
        with self._server.lock:
            self._server.routes[path] = behaviour
        return self

    @property
    def requests(self) -> list[Received]:
        with self._server.lock:
            return list(self._server.requests)

    def seen(self, path: str) -> list[Received]:
        """Requests whose path (query ignored) is ``path``."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- behaviours ----------------------------------------------------------------------------


def _bytes(body: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def respond(
    status: int = 200,
    body: bytes | str | dict[str, Any] | list[Any] = b"",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """A plain, well-formed answer (JSON when ``body`` is a dict or list)."""
    data = _bytes(body)

    def run(h: _Handler) -> None:
        head = {"Content-Length": str(len(data))}
        if not isinstance(body, bytes | str):
            head["Content-Type"] = "application/json"
        head.update(headers or {})
        h.send_head(status, head)
        if h.command != "HEAD":
            h.wfile.write(data)

    return run


def echo(status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """Answers JSON with what it received: method, path, headers (lower case), body text."""

    def run(h: _Handler) -> None:
        got = h.received()
        body = {
            "method": got.method,
            "path": got.path,
            "headers": got.headers,
            "body": got.body.decode("utf-8", "replace"),
        }
        respond(status, body, headers)(h)

    return run


def endless(
    chunk: int = 64 * 1024, content_type: str = "application/json", *, limit: int | None = None
) -> Behaviour:
    """200 without Content-Length (close-delimited), ``chunk`` bytes at a time, forever.

    ``limit`` stops after that many bytes (a test that must also end against
    code without a cap); the body is ``[0,0,0,…`` — never valid JSON.
    """
    block = b"0," * (chunk // 2)

    def run(h: _Handler) -> None:
        h.close_connection = True
        h.send_head(200, {"Content-Type": content_type, "Connection": "close"})
        h.wfile.write(b"[")
        sent = 1
        while not h.stopping.is_set() and (limit is None or sent < limit):
            part = block if limit is None else block[: limit - sent]
            h.wfile.write(part)
            sent += len(part)

    return run


def drip(
    body: bytes | str = b'{"items": []}', interval: float = 1.0, *, announce: bool = True
) -> Behaviour:
    """Headers at once, then the body one byte every ``interval`` seconds.

    Each read on the client sees data well within any per-read timeout, so only
    a total deadline ends it. ``announce`` sends Content-Length (else the body
    is close-delimited).
    """
    data = _bytes(body)

    def run(h: _Handler) -> None:
        head = {"Content-Type": "application/json"}
        if announce:
            head["Content-Length"] = str(len(data))
        else:
            h.close_connection = True
            head["Connection"] = "close"
        h.send_head(200, head)
        h.wfile.flush()
        for i in range(len(data)):
            if h.stopping.wait(interval):
                return
            h.wfile.write(data[i : i + 1])
            h.wfile.flush()

    return run


def slow_headers(interval: float = 1.0, body: bytes = b"{}") -> Behaviour:
    """The status line and headers one byte per ``interval``, then ``body`` at once."""
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def run(h: _Handler) -> None:
        h.close_connection = True
        for i in range(len(head)):
            if h.stopping.wait(interval):
                return
            h.wfile.write(head[i : i + 1])
            h.wfile.flush()
        h.wfile.write(body)

    return run


def redirect(location: str, status: int = 302, headers: dict[str, str] | None = None) -> Behaviour:
    """A redirect to ``location`` (set ``headers`` e.g. to plant a Set-Cookie)."""
    return respond(status, b"", {"Location": location, **(headers or {})})


def length_lie(
    announced: int = 10**12, body: bytes = b"x" * 100, *, stall: bool = False
) -> Behaviour:
    """Content-Length says ``announced``; only ``body`` follows, then close (or stall)."""

    def run(h: _Handler) -> None:
        h.close_connection = True
        h.send_head(200, {"Content-Length": str(announced), "Content-Type": "application/json"})
        h.wfile.write(body)
        h.wfile.flush()
        if stall:
            h.stopping.wait()

    return run


def repr_digest(data: bytes) -> str:
    """The RFC 9530 ``Repr-Digest`` value of ``data`` (sha-256)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def serve_file(
    data: bytes,
    *,
    digest: str | None = None,
    ranges: bool = True,
    headers: dict[str, str] | None = None,
    range_shift: int = 0,
    range_total: int | None = None,
) -> Behaviour:
    """``data`` with byte ranges (206/416) and an optional ``Repr-Digest`` header.

    ``digest`` is sent as is (use :func:`repr_digest`, or a wrong one).
    ``range_shift`` / ``range_total`` make 206 answers lie: the body and
    Content-Range start ``range_shift`` bytes away from what was asked, and the
    announced total is ``range_total``.
    """

    def run(h: _Handler) -> None:
        head = dict(headers or {})
        if digest is not None:
            head["Repr-Digest"] = digest
        asked = _RANGE.match(h.headers.get("Range", "")) if ranges else None
        if asked is None:
            respond(200, data, head)(h)
            return
        start = int(asked.group(1))
        if start >= len(data):
            head["Content-Range"] = f"bytes */{len(data)}"
            respond(416, b"", head)(h)
            return
        start = max(0, min(len(data) - 1, start + range_shift))
        total = len(data) if range_total is None else range_total
        head["Content-Range"] = f"bytes {start}-{len(data) - 1}/{total}"
        respond(206, data[start:], head)(h)

    return run


def wrong_range(data: bytes, *, shift: int = -10, total: int | None = None) -> Behaviour:
    """A file whose 206 answers start ``shift`` bytes from the asked offset (or lie on total)."""
    return serve_file(data, range_shift=shift, range_total=total)


# -- fixtures (registered in conftest's ``pytest_plugins``) ---------------------------------


@pytest.fixture
def evil() -> Iterator[HostileServer]:
    """A hostile server, closed after the test."""
    with HostileServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[HostileServer]:
    """A second hostile server: another origin (its port differs)."""
    with HostileServer() as server:
        yield server
