"""The token keeper: ``ensure_valid_token`` for threads, asyncio and processes.

Three layers of "never twice at once":

1. In memory, per account: the valid path reads a cached deadline and returns
   without touching the database or any lock.
2. In the process: the first caller that finds the token stale becomes the
   leader of a *flight* (a ``concurrent.futures.Future``); threads and asyncio
   tasks that arrive meanwhile either use the current token at once (it is
   valid for longer than the mandatory window) or wait for the flight's result.
   A failure is shared by every waiter, and a cooldown stops retry storms.
3. Between processes: the leader runs :func:`~._flow.refresh_flow` under the
   store's refresh lock, re-reading the row after taking it. Writes are
   compare-and-swap on the row's version, so the row stays the truth.
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
from typing import TYPE_CHECKING, Any

from ..errors import TokenError
from ..store import Store
from ._deadline import DEFAULT_THRESHOLD_SECONDS
from ._flow import (
    Call,
    Flow,
    FlowOptions,
    Http,
    HttpReply,
    load_account,
    refresh_deadline,
    refresh_flow,
    replaced,
    seconds_left,
    usable,
)
from ._model import Account, TokenResult

if TYPE_CHECKING:  # the HTTP client loads only when a request goes out (not on the valid path)
    import httpx2

    from .._http import Answer

log = logging.getLogger("stayfresh.tokens")

UTC = dt.UTC
DEFAULT_THRESHOLD = dt.timedelta(seconds=DEFAULT_THRESHOLD_SECONDS)
BACKGROUND_THRESHOLD = dt.timedelta(minutes=5)


def _seconds(value: dt.timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


@dataclasses.dataclass(slots=True)
class _Entry:
    """What the keeper remembers of one account between calls."""

    result: TokenResult  # the stored tokens, was_refreshed=False
    deadlines: dict[dt.timedelta | float, float]  # threshold → refresh deadline

    def deadline(self, threshold: dt.timedelta | float) -> float:
        """The refresh deadline for ``threshold``, computed once per threshold value."""
        found = self.deadlines.get(threshold)
        if found is None:
            found = refresh_deadline(self.result.tokens, _seconds(threshold))
            if len(self.deadlines) < 32:  # callers use a handful of thresholds
                self.deadlines[threshold] = found
        return found


@dataclasses.dataclass(slots=True)
class _Failure:
    at: float
    error: BaseException


class Keeper:
    """Keeps the tokens of one store's accounts valid. Share one per process.

    ``clock`` returns POSIX seconds (inject a fake one in tests). ``client``
    and ``async_client_factory`` let tests and applications bring their own
    httpx2 clients (proxies, CA bundles); by default every request has a
    ``timeout``-second limit and TLS verification stays on.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        mandatory_window: dt.timedelta | float = dt.timedelta(minutes=2),
        cooldown: dt.timedelta | float = dt.timedelta(seconds=30),
        lock_timeout: float = 60.0,
        client: httpx2.Client | None = None,
        async_client_factory: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.timeout = timeout
        self.mandatory_window = _seconds(mandatory_window)
        self.cooldown = _seconds(cooldown)
        self.lock_timeout = lock_timeout
        self._client = client
        self._async_client_factory = async_client_factory
        self._cache: dict[str, _Entry] = {}
        self._flights: dict[str, concurrent.futures.Future[TokenResult]] = {}
        self._failures: dict[str, _Failure] = {}
        self._guard = threading.Lock()

    # -- public API ------------------------------------------------------------------

    def ensure_valid_token(
        self,
        account: str,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
        *,
        force: bool = False,
        background: bool = False,
        rejected: str | None = None,
    ) -> TokenResult:
        """The account's tokens, refreshed first if ``now >= expires_at - threshold``.

        ``force`` refreshes now. ``rejected`` is the access token a server just
        refused (401) and implies ``force``, but only while that token is the
        stored one: a burst of 401s for one token makes one refresh, and the
        callers that come after it get its result instead of refreshing again.
        """
        entry = self._cache.get(account)
        if (
            entry is not None
            and not force
            and rejected is None
            and self.clock() < entry.deadline(threshold)
        ):
            return entry.result
        force = force or rejected is not None
        return self._ensure_slow(account, _seconds(threshold), force, background, rejected)

    async def aensure_valid_token(
        self,
        account: str,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
        *,
        force: bool = False,
        background: bool = False,
        rejected: str | None = None,
    ) -> TokenResult:
        """Async twin of :meth:`ensure_valid_token` (same cache, flights and lock)."""
        entry = self._cache.get(account)
        if (
            entry is not None
            and not force
            and rejected is None
            and self.clock() < entry.deadline(threshold)
        ):
            return entry.result
        force = force or rejected is not None
        return await self._aensure_slow(account, _seconds(threshold), force, background, rejected)

    def forget(self, account: str | None = None) -> None:
        """Drop cached state (all accounts with None), e.g. after a login or removal."""
        with self._guard:
            if account is None:
                self._cache.clear()
                self._failures.clear()
            else:
                self._cache.pop(account, None)
                self._failures.pop(account, None)

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keeper's HTTP connections (it can still be used afterwards)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the slow path, shared shape -------------------------------------------------

    def _load(self, name: str) -> Account:
        account = load_account(self.store, name)
        self._remember(TokenResult(account=name, tokens=account.tokens, was_refreshed=False))
        return account

    def _remember(self, result: TokenResult) -> TokenResult:
        plain = dataclasses.replace(result, was_refreshed=False) if result.was_refreshed else result
        self._cache[result.account] = _Entry(result=plain, deadlines={})
        return result

    def _decide(
        self, account: Account, threshold: float, force: bool, rejected: str | None
    ) -> tuple[TokenResult | None, concurrent.futures.Future[TokenResult] | None, bool]:
        """(answer now, flight to join, am I the leader).

        A refresh forced by a 401 (``rejected``) joins the flight in progress,
        or is moot when the stored token is no longer the rejected one.
        """
        now = self.clock()
        tokens = account.tokens
        if replaced(tokens, rejected):
            force = False
        if not force and now < refresh_deadline(tokens, threshold):
            log.debug(
                "%s: token still valid (%.0f min left)",
                account.name,
                seconds_left(tokens, now) / 60,
            )
            return (
                TokenResult(account=account.name, tokens=tokens, was_refreshed=False),
                None,
                False,
            )
        with self._guard:
            flight = self._flights.get(account.name)
            if flight is not None:
                if not force and seconds_left(tokens, now) > self.mandatory_window:
                    return (
                        TokenResult(account=account.name, tokens=tokens, was_refreshed=False),
                        None,
                        False,
                    )
                return None, flight, False
            failure = self._failures.get(account.name)
            if failure is not None and not force and now - failure.at < self.cooldown:
                return self._after_failure(account, failure.error, cooldown=True), None, False
            flight = concurrent.futures.Future()
            self._flights[account.name] = flight
        left = seconds_left(tokens, now)
        log.info(
            "%s: token %s, refreshing",
            account.name,
            "refresh forced" if force else f"expiring soon ({left / 60:.1f} min left)",
        )
        return None, flight, True

    def _after_failure(
        self, account: Account, error: BaseException, *, cooldown: bool = False
    ) -> TokenResult:
        """Use the current token if it still works; raise the shared error if not."""
        if usable(account.tokens, self.clock()) and isinstance(error, TokenError):
            log.warning(
                "%s: refresh %s (%s); using the current token, still valid for %.0f s",
                account.name,
                "in cooldown after a failure" if cooldown else "failed",
                error,
                seconds_left(account.tokens, self.clock()),
            )
            return TokenResult(account=account.name, tokens=account.tokens, was_refreshed=False)
        raise error

    def _finish(
        self,
        account: Account,
        flight: concurrent.futures.Future[TokenResult],
        result: TokenResult | None,
        error: BaseException | None,
    ) -> None:
        with self._guard:
            if error is None:
                assert result is not None
                self._failures.pop(account.name, None)
                flight.set_result(result)
            else:
                self._failures[account.name] = _Failure(self.clock(), error)
                flight.set_exception(error)
            self._flights.pop(account.name, None)

    def _options(
        self, threshold: float, force: bool, background: bool, rejected: str | None
    ) -> FlowOptions:
        return FlowOptions(
            threshold=threshold,
            force=force,
            background=background,
            mandatory_window=self.mandatory_window,
            lock_timeout=self.lock_timeout,
            rejected=rejected,
        )

    # -- sync driver ---------------------------------------------------------------------

    def _ensure_slow(
        self, name: str, threshold: float, force: bool, background: bool, rejected: str | None
    ) -> TokenResult:
        account = self._load(name)
        answer, flight, leader = self._decide(account, threshold, force, rejected)
        if answer is not None:
            return answer
        assert flight is not None
        if not leader:
            try:
                return flight.result()
            except TokenError as exc:
                if force:
                    raise
                return self._after_failure(account, exc)
        try:
            flow = refresh_flow(
                self.store,
                account,
                self._options(threshold, force, background, rejected),
                self.clock,
            )
            result = self._remember(self._drive(flow))
        except BaseException as exc:
            self._finish(account, flight, None, exc)
            if force or not isinstance(exc, TokenError):
                raise
            return self._after_failure(account, exc)
        self._finish(account, flight, result, None)
        return result

    def _drive(self, flow: Flow) -> TokenResult:
        client = self._sync_client()  # made before the flow times the refresh
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                result: TokenResult = stop.value
                return result
            error = None
            try:
                if isinstance(effect, Call):
                    reply = effect.fn(*effect.args)
                else:
                    reply = self._http(client, effect)
            except BaseException as exc:  # handed to the flow, which decides
                reply, error = None, exc

    def _sync_client(self) -> httpx2.Client:
        if self._client is None:
            from .._http import new_client

            self._client = new_client(self.timeout)
            # a keeper dropped without close() still closes its connections
            weakref.finalize(self, self._client.close)
        return self._client

    def _http(self, client: httpx2.Client, effect: Http) -> HttpReply:
        from .._http import fetch

        sent = dt.datetime.fromtimestamp(self.clock(), UTC)
        answer = fetch(client, effect.method, effect.url, **_policy(effect, self.timeout))
        return _reply(answer, sent, self.clock())

    # -- async driver ----------------------------------------------------------------------

    async def _aensure_slow(
        self, name: str, threshold: float, force: bool, background: bool, rejected: str | None
    ) -> TokenResult:
        import asyncio  # already loaded by the running loop; not at import time (the CLI)

        account = await asyncio.to_thread(self._load, name)
        answer, flight, leader = self._decide(account, threshold, force, rejected)
        if answer is not None:
            return answer
        assert flight is not None
        if not leader:
            try:
                return await asyncio.wrap_future(flight)
            except TokenError as exc:
                if force:
                    raise
                return self._after_failure(account, exc)
        try:
            flow = refresh_flow(
                self.store,
                account,
                self._options(threshold, force, background, rejected),
                self.clock,
            )
            result = self._remember(await self._adrive(flow))
        except BaseException as exc:
            self._finish(account, flight, None, exc)
            if force or not isinstance(exc, TokenError):
                raise
            return self._after_failure(account, exc)
        self._finish(account, flight, result, None)
        return result

    async def _adrive(self, flow: Flow) -> TokenResult:
        import asyncio  # as in _aensure_slow

        reply: Any = None
        error: BaseException | None = None
        async with self._new_async_client() as client:
            while True:
                try:
                    effect = flow.throw(error) if error is not None else flow.send(reply)
                except StopIteration as stop:
                    result: TokenResult = stop.value
                    return result
                error = None
                try:
                    if isinstance(effect, Call):
                        if not effect.blocking:
                            reply = effect.fn(*effect.args)
                        else:
                            reply = await asyncio.to_thread(effect.fn, *effect.args)
                    else:
                        reply = await self._ahttp(client, effect)
                except BaseException as exc:
                    reply, error = None, exc

    def _new_async_client(self) -> httpx2.AsyncClient:
        if self._async_client_factory is not None:
            return self._async_client_factory()
        from .._http import new_async_client

        return new_async_client(self.timeout)

    async def _ahttp(self, client: httpx2.AsyncClient, effect: Http) -> HttpReply:
        from .._http import afetch

        sent = dt.datetime.fromtimestamp(self.clock(), UTC)
        answer = await afetch(client, effect.method, effect.url, **_policy(effect, self.timeout))
        return _reply(answer, sent, self.clock())


def _policy(effect: Http, timeout: float) -> dict[str, Any]:
    """How token and discovery requests go out (the same for both drivers).

    A total ``timeout``, 1 MiB at most, and no redirect followed: a 3xx goes to
    the provider, which reports it. Network failures become TransientError.
    """
    from .._http import TOKEN_MAX_BYTES, Redirects

    return {
        "timeout": timeout,
        "max_bytes": TOKEN_MAX_BYTES,
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
