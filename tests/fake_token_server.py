"""A token endpoint on 127.0.0.1 whose every answer the test decides.

Used for the fault tests (timeouts, refused connections, HTML 5xx, 429, garbage)
and anywhere a test needs to see exactly what a client sent. It speaks real
HTTP over a real socket; nothing in stayfresh is patched.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    drop: bool = False  # close the connection without answering


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


Handler = Callable[[Seen], Reply]


def token_reply(
    access: str = "at-1", refresh: str | None = None, expires_in: int = 3600, **extra: Any
) -> Reply:
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    body.update(extra)
    return Reply(body=body)


class FakeTokenServer:
    """``handler`` decides each reply; ``requests`` records what was received."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda seen: token_reply())
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one segment per reply: no 40 ms delayed-ACK stalls

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = dict(urllib.parse.parse_qsl(raw))
                seen = Seen(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, form
                )
                with outer._lock:
                    outer.requests.append(seen)
                reply = outer.handler(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                body = reply.body
                if isinstance(body, dict):
                    body = json.dumps(body)
                    reply.headers.setdefault("Content-Type", "application/json")
                data = body.encode() if isinstance(body, str) else body
                self.send_response_only(reply.status)
                if not any(k.lower() == "date" for k in reply.headers):
                    self.send_header("Date", self.date_time_string())
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def start(self) -> FakeTokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)
