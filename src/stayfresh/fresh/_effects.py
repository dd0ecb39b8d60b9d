"""Effects and their two drivers: one refresh body for sync and async callers.

A kind's refresh, and the core's locked refresh around it, are generators in
the style of httpx's ``auth_flow``: they yield effects (:class:`Call` for store
and lock operations, :class:`Http` for requests) and are sent their results.
:func:`drive` performs them in the calling thread; :func:`adrive` on the event
loop, blocking calls in worker threads. An effect that raises is thrown back
into the generator, which decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

#: at most this many bytes of any response a refresh reads
MAX_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """Run ``fn(*args, **kwargs)`` (store or lock work) and send back its result.

    ``blocking=False`` marks calls that return at once (a lock *try*), which
    the async driver runs inline instead of in a worker thread.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    blocking: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Http:
    """Send one HTTP request; the driver sends back an :class:`HttpReply`.

    Sent with a total time limit, at most ``max_bytes`` read, no redirect
    followed (a 3xx is the kind's to judge); network failures are thrown in as
    :class:`~stayfresh.errors.TransientError`.
    """

    method: str
    url: str
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    max_bytes: int = MAX_BYTES

    def __repr__(self) -> str:  # the form and headers may carry secrets
        return f"Http({self.method} {self.url}, fields={sorted(self.data or {})!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    sent_at: dt.datetime
    received_at: dt.datetime


Effect = Call | Http
#: a refresh body: yields effects, is sent their results, returns ``T``
Flow = Generator[Effect, Any, T]


def drive(flow: Flow[T], http: Callable[[Http], HttpReply]) -> T:
    """Run ``flow`` to its end in this thread; ``http`` performs its requests."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        error = None
        try:
            if isinstance(effect, Call):
                reply = effect.fn(*effect.args, **effect.kwargs)
            else:
                reply = http(effect)
        except BaseException as exc:  # handed to the flow, which decides
            reply, error = None, exc


async def adrive(flow: Flow[T], http: Callable[[Http], Awaitable[HttpReply]]) -> T:
    """Run ``flow`` on the event loop: blocking calls in worker threads, requests awaited."""
    import asyncio  # already loaded by the running loop; not at import time (the CLI)

    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        error = None
        try:
            if isinstance(effect, Call):
                if effect.blocking:
                    reply = await asyncio.to_thread(effect.fn, *effect.args, **effect.kwargs)
                else:
                    reply = effect.fn(*effect.args, **effect.kwargs)
            else:
                reply = await http(effect)
        except BaseException as exc:
            reply, error = None, exc
