"""Layer 1, on use: :class:`Fresh` makes a state fresh just before it is used.

Three steps of "never twice at once":

1. In memory, per key: the valid path compares the clock with a cached
   deadline and returns without touching the store or any lock.
2. In the process: the first caller that finds the state stale leads a
   *flight* (a ``concurrent.futures.Future``). Threads and asyncio tasks that
   arrive meanwhile wait for its outcome (share mode) — or, when the current
   state is still good for longer than the kind's wait window, use it at
   once — or return ``skipped`` (skip mode). A failure is shared by every
   waiter, and a cooldown stops retry storms.
3. Between processes: the leader runs :func:`~._lock.locked_refresh` under
   the store's lock for ``(kind, key)``, which re-reads the state first.

The background layer (:mod:`._background`) calls the very same :meth:`Fresh.ensure`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from ._effects import Http, HttpReply, adrive, drive
from ._kind import Kind, Layer, Outcome
from ._lock import Options, locked_refresh

if TYPE_CHECKING:  # the HTTP client loads only when a request goes out (not on the valid path)
    import httpx2

    from .._http import Answer
    from ..store import Store

log = logging.getLogger("stayfresh.fresh")

S = TypeVar("S")
UTC = dt.UTC
COOLDOWN = "in cooldown after a failure"


def seconds(value: dt.timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


@dataclasses.dataclass(slots=True)
class _Entry(Generic[S]):
    """What :class:`Fresh` remembers of one key between calls."""

    state: S
    since: float  # fresh from (see Kind.fresh_from)
    view: Any  # what the valid path hands out (a subclass's own type, e.g. a TokenResult)
    fresh: Outcome[S]
    deadlines: dict[Any, float]  # margin → stale-from instant

    def deadline(self, kind: Kind[S], within: Any) -> float:
        """The stale-from instant for ``within``, computed once per value."""
        found = self.deadlines.get(within)
        if found is None:
            found = kind.stale_from(self.state, seconds(within))
            if len(self.deadlines) < 32:  # callers use a handful of margins
                self.deadlines[within] = found
        return found


@dataclasses.dataclass(slots=True)
class _Failure:
    at: float
    error: Exception


class Fresh(Generic[S]):
    """Keeps the states of one kind in one store fresh. Share one per process and kind.

    ``clock`` returns POSIX seconds (inject a fake one in tests). ``client``
    and ``async_client_factory`` bring your own httpx2 clients (proxies, CA
    bundles) for the kind's requests; by default every request has a
    ``timeout``-second limit and TLS verification stays on.
    """

    def __init__(
        self,
        kind: Kind[S],
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        cooldown: dt.timedelta | float = 30.0,
        lock_timeout: float = 60.0,
        client: httpx2.Client | None = None,
        async_client_factory: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.kind = kind
        self.store = store
        self.clock = clock
        self.timeout = timeout
        self.cooldown = seconds(cooldown)
        self.lock_timeout = lock_timeout
        self._client = client
        self._async_client_factory = async_client_factory
        self._cache: dict[str, _Entry[S]] = {}
        self._flights: dict[str, concurrent.futures.Future[Outcome[S]]] = {}
        self._failures: dict[str, _Failure] = {}
        self._guard = threading.Lock()

    # -- public API ------------------------------------------------------------------

    def ensure(
        self,
        key: str,
        within: dt.timedelta | float | None = None,
        *,
        force: bool = False,
        layer: Layer = "use",
        rejected: Any = None,
    ) -> Outcome[S]:
        """Make ``key``'s state fresh if it is stale ``within`` seconds; what happened.

        ``force`` refreshes now. ``rejected`` (what a server just refused)
        implies ``force`` while the stored state still holds it. Failures of
        the kind come back as a ``failed`` outcome; other exceptions propagate.
        """
        opts = self._options(within, force, layer, rejected)
        cached = self._cached(key, opts)
        if cached is not None:
            return cached
        seen = self._load(key)
        outcome, flight, leader = self._decide(seen, key, opts)
        if outcome is not None:
            return outcome
        assert flight is not None
        if not leader:
            return self._joined(seen, key, opts, flight.result())
        try:
            flow = locked_refresh(self.kind, self.store, key, seen, opts, self.clock)
            return self._finish(key, flight, drive(flow, self._http))
        except BaseException as exc:
            self._abandon(key, flight, exc)
            raise

    async def aensure(
        self,
        key: str,
        within: dt.timedelta | float | None = None,
        *,
        force: bool = False,
        layer: Layer = "use",
        rejected: Any = None,
    ) -> Outcome[S]:
        """Async twin of :meth:`ensure` (same cache, flights, lock and telemetry)."""
        import asyncio  # already loaded by the running loop; not at import time (the CLI)

        opts = self._options(within, force, layer, rejected)
        cached = self._cached(key, opts)
        if cached is not None:
            return cached
        seen = await asyncio.to_thread(self._load, key)
        outcome, flight, leader = self._decide(seen, key, opts)
        if outcome is not None:
            return outcome
        assert flight is not None
        if not leader:
            return self._joined(seen, key, opts, await asyncio.wrap_future(flight))
        clients: list[httpx2.AsyncClient] = []  # one per refresh, opened by its first request

        async def http(effect: Http) -> HttpReply:
            if not clients:
                clients.append(await self._new_async_client().__aenter__())
            return await self._ahttp(clients[0], effect)

        try:
            flow = locked_refresh(self.kind, self.store, key, seen, opts, self.clock)
            try:
                outcome = await adrive(flow, http)
            finally:
                if clients:
                    await clients[0].__aexit__(None, None, None)
            return self._finish(key, flight, outcome)
        except BaseException as exc:
            self._abandon(key, flight, exc)
            raise

    def get(
        self,
        key: str,
        within: dt.timedelta | float | None = None,
        *,
        force: bool = False,
        layer: Layer = "use",
        rejected: Any = None,
    ) -> S:
        """The fresh state of ``key``; raises the refresh's error unless the old one is usable."""
        outcome = self.ensure(key, within, force=force, layer=layer, rejected=rejected)
        return self.usable(outcome, force=force or rejected is not None)

    async def aget(
        self,
        key: str,
        within: dt.timedelta | float | None = None,
        *,
        force: bool = False,
        layer: Layer = "use",
        rejected: Any = None,
    ) -> S:
        """Async twin of :meth:`get`."""
        outcome = await self.aensure(key, within, force=force, layer=layer, rejected=rejected)
        return self.usable(outcome, force=force or rejected is not None)

    def usable(self, outcome: Outcome[S], *, force: bool = False) -> S:
        """``outcome``'s state; after a failure, the old state while it is still usable.

        After a forced refresh a failure always raises: the caller knows the state is bad.
        """
        if outcome.status == "failed":
            assert outcome.error is not None
            if not outcome.usable or force:
                raise outcome.error
            cooling = outcome.reason == COOLDOWN
            log.warning(
                "%s %s: refresh %s (%s); using the current %s, still usable for %.0f s",
                self.kind.name, outcome.key, "in cooldown after a failure" if cooling else "failed",
                outcome.error, self.kind.name,
                self.kind.usable_until(outcome.state) - self.clock(),  # type: ignore[arg-type]
            )  # fmt: skip
        assert outcome.state is not None
        return outcome.state

    def forget(self, key: str | None = None) -> None:
        """Drop what is remembered (of every key with None), e.g. after a login or removal."""
        with self._guard:
            if key is None:
                self._cache.clear()
                self._failures.clear()
            else:
                self._cache.pop(key, None)
                self._failures.pop(key, None)

    def close(self) -> None:
        """Close the HTTP connections (it can still be used afterwards)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses ------------------------------------------------------------------

    def _view(self, key: str, state: S) -> Any:
        """What the valid path of a subclass hands out for a fresh ``state`` (built once)."""
        return state

    # -- the slow path, shared by both drivers ------------------------------------------

    def _options(self, within: Any, force: bool, layer: Layer, rejected: Any) -> Options:
        """One call's options; ``rejected`` implies ``force`` (see :meth:`ensure`)."""
        return Options(
            within=seconds(self.kind.within if within is None else within),
            force=force or rejected is not None,
            layer=layer,
            lock_timeout=self.lock_timeout,
            rejected=rejected,
        )

    def _cached(self, key: str, opts: Options) -> Outcome[S] | None:
        """The remembered state's ``fresh`` outcome while it is fresh (no store read)."""
        entry = self._cache.get(key)
        if entry is None or opts.force:
            return None
        now = self.clock()
        return entry.fresh if entry.since <= now < entry.deadline(self.kind, opts.within) else None

    def _load(self, key: str) -> S:
        state = self.kind.load(self.store, key)
        self._remember(key, state)
        return state

    def _remember(self, key: str, state: S | None) -> None:
        if not self.kind.cache or state is None:
            return
        fresh = Outcome("fresh", state, key, "use", 0.0, "remembered")
        since = self.kind.fresh_from(state)
        self._cache[key] = _Entry(state, since, self._view(key, state), fresh, {})

    def _decide(
        self, seen: S, key: str, opts: Options
    ) -> tuple[Outcome[S] | None, concurrent.futures.Future[Outcome[S]] | None, bool]:
        """(an answer now, a flight to join, whether this caller leads it)."""
        kind = self.kind
        now = self.clock()
        force = opts.force and not kind.replaced(seen, opts.rejected)
        if not force and kind.is_fresh(seen, opts.within, now):
            reason = kind.reason(seen, opts.within, now)
            log.debug("%s %s: fresh (%s)", kind.name, key, reason)
            return Outcome("fresh", seen, key, opts.layer, now, reason), None, False
        with self._guard:
            flight = self._flights.get(key)
            if flight is not None:
                left = kind.usable_until(seen) - now
                if kind.mode == "skip" or (not force and left > kind.wait_window):
                    reason = "another caller in this process is refreshing"
                    return Outcome("skipped", seen, key, opts.layer, now, reason), None, False
                return None, flight, False
            failure = self._failures.get(key)
            if failure is not None and not force and now - failure.at < self.cooldown:
                usable = now < kind.usable_until(seen)
                outcome = Outcome(
                    "failed", seen, key, opts.layer, now, COOLDOWN,
                    failure.error, usable,
                )  # fmt: skip
                return outcome, None, False
            flight = concurrent.futures.Future()
            self._flights[key] = flight
        log.info("%s %s: %s; refreshing", kind.name, key,
                 "refresh forced" if force else kind.reason(seen, opts.within, now))  # fmt: skip
        return None, flight, True

    def _joined(self, seen: S, key: str, opts: Options, leader: Outcome[S]) -> Outcome[S]:
        """A waiter's outcome from the leader's: its result, or its shared failure."""
        if leader.status == "failed":
            usable = self.clock() < self.kind.usable_until(seen)
            return dataclasses.replace(leader, state=seen, layer=opts.layer, usable=usable)
        if leader.status == "refreshed":
            return dataclasses.replace(leader, status="joined", layer=opts.layer)
        return dataclasses.replace(leader, layer=opts.layer)

    def _finish(
        self, key: str, flight: concurrent.futures.Future[Outcome[S]], outcome: Outcome[S]
    ) -> Outcome[S]:
        if outcome.status in ("refreshed", "joined", "fresh"):
            self._remember(key, outcome.state)
        with self._guard:
            if outcome.status == "failed":
                assert isinstance(outcome.error, Exception)
                self._failures[key] = _Failure(outcome.at, outcome.error)
            else:
                self._failures.pop(key, None)
            flight.set_result(outcome)
            self._flights.pop(key, None)
        return outcome

    def _abandon(
        self, key: str, flight: concurrent.futures.Future[Outcome[S]], error: BaseException
    ) -> None:
        """The leader stopped with an error that is not a failure of the kind: waiters get it."""
        with self._guard:
            if not flight.done():
                flight.set_exception(error)
            self._flights.pop(key, None)

    # -- HTTP, for the kind's requests ---------------------------------------------------

    def _http(self, effect: Http) -> HttpReply:
        from .._http import fetch

        client = self._sync_client()
        sent = dt.datetime.fromtimestamp(self.clock(), UTC)
        answer = fetch(client, effect.method, effect.url, **_policy(effect, self.timeout))
        return _reply(answer, sent, self.clock())

    async def _ahttp(self, client: httpx2.AsyncClient, effect: Http) -> HttpReply:
        from .._http import afetch

        sent = dt.datetime.fromtimestamp(self.clock(), UTC)
        answer = await afetch(client, effect.method, effect.url, **_policy(effect, self.timeout))
        return _reply(answer, sent, self.clock())

    def _sync_client(self) -> httpx2.Client:
        if self._client is None:
            from .._http import new_client

            self._client = new_client(self.timeout)
            # dropped without close(), it still closes its connections
            weakref.finalize(self, self._client.close)
        return self._client

    def _new_async_client(self) -> httpx2.AsyncClient:
        if self._async_client_factory is not None:
            return self._async_client_factory()
        from .._http import new_async_client

        return new_async_client(self.timeout)


def _policy(effect: Http, timeout: float) -> dict[str, Any]:
    """How every request of a refresh goes out (the same for both drivers)."""
    from .._http import Redirects

    return {
        "timeout": timeout,
        "max_bytes": effect.max_bytes,
        "redirects": Redirects.REFUSE,
        "data": effect.data,
        "headers": effect.headers,
    }


def _reply(answer: Answer, sent: dt.datetime, now: float) -> HttpReply:
    return HttpReply(
        status=answer.status_code,
        headers=answer.lower_headers(),
        body=answer.content,
        sent_at=sent,
        received_at=dt.datetime.fromtimestamp(now, UTC),
    )
