"""The loopback listener of the browser sign-in (RFC 8252): loaded only when a login runs.

``http.server`` (and through it ``http.client``, ``email``, ``ssl``) costs
~14 ms to import; every ``stayfresh account`` command loads the login module,
so the listener lives here.
"""

from __future__ import annotations

import hmac
import http.server
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._login import CALLBACK_PATH

_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>stayfresh</title></head>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)


class CallbackServer(http.server.HTTPServer):
    """A loopback listener that keeps the first ``/callback`` query and answers a page."""

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), CallbackHandler)
        self.expected_state = state
        self.result: dict[str, str] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{CALLBACK_PATH}"


class CallbackHandler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # a browser that connects and says nothing cannot stall the login
    server: CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH or self.server.result is not None:
            self._answer(404, "Not found", "This is stayfresh's login listener.")
            return
        query = dict(parse_qsl(parts.query))
        self.server.result = query
        state_ok = hmac.compare_digest(
            query.get("state", "").encode(), self.server.expected_state.encode()
        )
        if "code" in query and state_ok:
            self._answer(
                200,
                "Signed in",
                "stayfresh received the authorization. You can close this tab "
                "and return to the terminal.",
            )
        else:
            self._answer(400, "Sign-in failed", "See the terminal for details.")

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=title, text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default access log would print the authorization code."""
