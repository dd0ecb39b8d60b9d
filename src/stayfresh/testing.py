"""Helpers for tests (yours and stayfresh's own): clock, local HTTP, store, waiting.

- :class:`FakeClock`: POSIX seconds that move only when the test says so; pass it
  as ``Keeper(clock=...)``, ``WorkManager(clock=...)`` or ``Runner(clock=...)``.
- :class:`LocalHTTPServer`: a threaded HTTP server on ``127.0.0.1`` (a free port)
  whose every answer a function decides, with a log of the requests it received.
- :class:`LocalTokenServer`: built on it, a small but honest RFC 6749 token
  endpoint: it issues access tokens with a chosen lifetime for the
  ``refresh_token`` grant, can rotate refresh tokens (and then rejects a reused
  one with ``invalid_grant``, as real servers do), checks the client's
  credentials, and counts what it served. Point an account's ``--token-url`` at
  it to exercise just-in-time refresh without a real provider.
- :func:`temporary_store`: a fresh store for one test (SQLite in a temporary
  directory, or the PostgreSQL database you name), closed and removed after.
- :func:`wait_for`: poll a condition until it holds, with a deadline, instead of
  sleeping for a fixed time and hoping.

Example::

    from stayfresh.testing import FakeClock, LocalTokenServer, temporary_store
    from stayfresh.tokens import Keeper

    with LocalTokenServer(access_ttl=60) as server, temporary_store() as store:
        ...  # add an oauth2 account whose token_url is server.token_url
        clock = FakeClock()
        keeper = Keeper(store, clock=clock)
        clock.advance(45)  # past half the token's life: the next call refreshes
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "FakeClock",
    "LocalHTTPServer",
    "LocalTokenServer",
    "Request",
    "Response",
    "temporary_store",
    "wait_for",
]

T = TypeVar("T")


# -- time ----------------------------------------------------------------------------


class FakeClock:
    """A clock for ``Keeper(clock=...)`` and the work engine: POSIX seconds that move only when told.

    ``FakeClock()`` starts at the current time, ``FakeClock(1_700_000_000)`` at a
    fixed one. Calling it returns the time; :meth:`advance` and :meth:`set` move it
    (both return the new time). ``now`` may also be assigned directly.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now: float = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock by ``seconds`` (negative: back, as a wall clock may)."""
        self.now += seconds
        return self.now

    def set(self, when: float | dt.datetime) -> float:
        """Set the clock to a POSIX time or an aware datetime."""
        self.now = when.timestamp() if isinstance(when, dt.datetime) else float(when)
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock({self.now!r})"


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    *,
    what: str = "the condition",
    interval: float = 0.02,
) -> T:
    """Poll ``predicate()`` until it returns something true, and return that.

    Raises :class:`AssertionError` naming ``what`` after ``timeout`` seconds. The
    timeout is a guard against hangs, not a timing assertion: make it generous.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# -- local HTTP ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as :class:`LocalHTTPServer` received it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form."""
        return dict(urllib.parse.parse_qsl(self.body.decode(errors="replace")))

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass
class Response:
    """What :class:`LocalHTTPServer` answers.

    A ``dict`` or ``list`` body is sent as JSON. ``delay`` waits before answering
    (to provoke client timeouts); ``drop`` closes the connection without an
    answer. ``stream`` replaces ``body``: its chunks are written one by one (give
    ``Content-Length`` in ``headers``); it may block, stop early, or wait on
    :attr:`LocalHTTPServer.stopping`, and the connection is closed after it.
    A ``Date`` header is added unless given.
    """

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    stream: Iterable[bytes] | None = None


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up; anything else is printed as usual."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalHTTPServer:
    """A threaded HTTP/1.1 server on ``127.0.0.1`` at a free port, for tests.

    Each request is recorded in :attr:`requests` (a :class:`Request`), then
    answered with what ``handler(request)`` returns (or by :meth:`handle` in a
    subclass); without a handler every request gets ``404``. The handler runs in
    the server's threads: guard shared state with :attr:`lock`.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    ``backlog`` is the listen queue (raise it when many clients connect at once).
    """

    def __init__(self, handler: Handler | None = None, *, backlog: int = 64) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        #: set by :meth:`stop`: handlers that block should wait on it
        self.stopping = threading.Event()
        outer = self

        class _Server2(_Server):
            request_queue_size = backlog

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one segment per reply: no 40 ms delayed-ACK stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with outer.lock:
                    outer.requests.append(request)
                try:
                    outer._write(self, outer.handle(request))
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._server = _Server2(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- override point

    def handle(self, request: Request) -> Response:
        """The answer to ``request``: the handler's, or 404 when there is none."""
        if self.handler is None:
            return Response(404, {"error": "not_found"})
        return self.handler(request)

    # -- life cycle

    def start(self) -> LocalHTTPServer:
        """Start serving in a background thread (returns ``self``)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        self.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and the log

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        """How many requests were received so far."""
        with self.lock:
            return len(self.requests)

    def seen(self, path: str) -> list[Request]:
        """The requests whose path (query ignored) is ``path``."""
        with self.lock:
            return [r for r in self.requests if urllib.parse.urlsplit(r.path).path == path]

    # -- writing

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            h.close_connection = True
            h.connection.close()
            return
        headers = dict(response.headers)
        body = response.body
        if isinstance(body, dict | list):
            body = json.dumps(body)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        data = body.encode() if isinstance(body, str) else body
        h.send_response_only(response.status)
        if not any(k.lower() == "date" for k in headers):
            h.send_header("Date", h.date_time_string())
        if response.stream is not None and not any(k.lower() == "connection" for k in headers):
            headers["Connection"] = "close"  # the client must not reuse it: it may end early
        for name, value in headers.items():
            h.send_header(name, value)
        if response.stream is not None:
            h.close_connection = True
            h.end_headers()
            for chunk in response.stream:
                h.wfile.write(chunk)
                h.wfile.flush()
            return
        if not any(k.lower() == "content-length" for k in headers):
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


# -- OAuth2 token endpoint -------------------------------------------------------------


class LocalTokenServer(LocalHTTPServer):
    """An OAuth2 refresh-token endpoint on ``127.0.0.1`` (``POST /token``).

    ``issue_refresh_token()`` creates a refresh token to start an account with.
    ``refreshes`` counts successful refresh grants, ``rejected`` the refused ones;
    ``requests`` holds every request received. ``delay`` seconds are spent
    before each grant (to make concurrent refreshes overlap). With
    ``revoke_on_reuse`` a reused refresh token also revokes the grant (every live
    token), as Auth0, Okta and oidc-provider can be configured to: one reuse loses
    the login. :meth:`is_live` says whether a refresh token still works.
    """

    def __init__(
        self,
        *,
        access_ttl: int = 3600,
        rotate: bool = True,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        delay: float = 0.0,
        revoke_on_reuse: bool = False,
    ) -> None:
        super().__init__()
        self.access_ttl = access_ttl
        self.revoke_on_reuse = revoke_on_reuse
        self.rotate = rotate
        self.client_id = client_id
        self.client_secret = client_secret
        self.delay = delay
        self.refreshes = 0
        self.rejected = 0
        self._live: set[str] = set()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def start(self) -> LocalTokenServer:
        super().start()
        return self

    def __enter__(self) -> LocalTokenServer:
        return self.start()

    def is_live(self, refresh_token: str | None) -> bool:
        """Would this refresh token be accepted now?"""
        with self.lock:
            return refresh_token in self._live

    def issue_refresh_token(self) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self._live.add(token)
        return token

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or urllib.parse.urlsplit(request.path).path != "/token":
            return Response(404, {"error": "not_found"})
        status, body = self._grant(request.form, request.headers.get("authorization"))
        return Response(status, body, {"Cache-Control": "no-store"})

    def _grant(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            user, _, password = decoded.partition(":")
            client_id, secret = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if (client_id, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        presented = form.get("refresh_token", "")
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if presented not in self._live:
                self.rejected += 1
                if self.revoke_on_reuse:
                    self._live.clear()  # the grant is revoked: the login is lost
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "refresh token unknown or reused",
                }
            self.refreshes += 1
            body: dict[str, Any] = {
                "access_token": "at-" + secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": self.access_ttl,
            }
            if self.rotate:
                self._live.discard(presented)
                new = "rt-" + secrets.token_urlsafe(24)
                self._live.add(new)
                body["refresh_token"] = new
        return 200, body


# -- store -----------------------------------------------------------------------------


@contextmanager
def temporary_store(url: str | None = None) -> Iterator[Store]:
    """A migrated store for one test, closed (and its file removed) afterwards.

    Without ``url``: a new SQLite file in a temporary directory. With a
    ``postgresql://`` URL: that database, opened and migrated as it is (point it
    at a throwaway database: nothing in it is dropped).
    """
    from .store import open_store

    if url is not None:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()
        return
    with tempfile.TemporaryDirectory(prefix="stayfresh-test-") as tmp:
        store = open_store(os.path.join(tmp, "stayfresh.db"))
        try:
            yield store
        finally:
            store.close()
