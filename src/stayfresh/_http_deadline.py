"""The network backend that makes a sync request end *at* its deadline.

httpx applies a timeout to each socket operation: a server sending one byte
a second never trips a 10-second read timeout. :func:`stayfresh._http.new_client`
wraps httpcore's backend in :class:`DeadlineBackend`, which bounds every
connect, read and write by the time the current request has left (a context
variable set by :mod:`stayfresh._http`). Imported only when a client is made,
so the valid-token path never loads httpcore.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore2

from ._http import time_left as _bounded


class DeadlineStream(httpcore2.NetworkStream):
    """Every read and write waits at most until the current request's deadline."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        return DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    """Connections whose streams obey the deadline of the request using them."""

    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            _bounded(timeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        stream = self._inner.connect_unix_socket(path, _bounded(timeout), socket_options)
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
