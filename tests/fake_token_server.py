"""A token endpoint on 127.0.0.1 whose every answer the test decides.

Used for the fault tests (timeouts, refused connections, HTML 5xx, 429, garbage)
and anywhere a test needs to see exactly what a client sent. It speaks real
HTTP over a real socket; nothing in stayfresh is patched. It is
:class:`stayfresh.testing.LocalHTTPServer` with a default answer (a token) and
the names the tests use: ``Reply`` is its ``Response``, ``Seen`` its ``Request``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stayfresh.testing import LocalHTTPServer
from stayfresh.testing import Request as Seen
from stayfresh.testing import Response as Reply

__all__ = ["FakeTokenServer", "Handler", "Reply", "Seen", "token_reply"]

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


class FakeTokenServer(LocalHTTPServer):
    """``handler`` decides each reply (a token by default); ``requests`` records what was received."""

    def __init__(self, handler: Handler | None = None) -> None:
        super().__init__(handler or (lambda seen: token_reply()))

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def start(self) -> FakeTokenServer:
        super().start()
        return self

    def __enter__(self) -> FakeTokenServer:
        return self.start()
