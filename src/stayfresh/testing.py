"""Helpers for your own tests: a fake clock and a local OAuth2 token endpoint.

:class:`LocalTokenServer` is a small but honest RFC 6749 token endpoint on
127.0.0.1: it issues access tokens with a chosen lifetime for the
``refresh_token`` grant, can rotate refresh tokens (and then rejects a reused
one with ``invalid_grant``, as real servers do), checks the client's
credentials, and counts what it served. Point an account's ``--token-url`` at
it to exercise just-in-time refresh without a real provider.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeClock", "LocalTokenServer"]


class FakeClock:
    """A clock for ``Keeper(clock=...)``: POSIX seconds that move only when told."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LocalTokenServer:
    """An OAuth2 refresh-token endpoint on ``127.0.0.1`` (``/token``).

    ``issue_refresh_token()`` creates a refresh token to start an account with.
    ``refreshes`` counts successful refresh grants, ``rejected`` the refused ones.
    """

    def __init__(
        self,
        *,
        access_ttl: int = 3600,
        rotate: bool = True,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        delay: float = 0.0,
    ) -> None:
        self.access_ttl = access_ttl
        self.rotate = rotate
        self.client_id = client_id
        self.client_secret = client_secret
        self.delay = delay
        self.refreshes = 0
        self.rejected = 0
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> LocalTokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalTokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def issue_refresh_token(self) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._live.add(token)
        return token

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
        with self._lock:
            if presented not in self._live:
                self.rejected += 1
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

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one segment per reply: no 40 ms delayed-ACK stalls

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path.split("?")[0] != "/token":
                    status, body = 404, {"error": "not_found"}
                else:
                    status, body = outer._grant(form, self.headers.get("authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
