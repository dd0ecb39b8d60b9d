"""The refresh decision, written once and free of I/O.

:func:`refresh_flow` is a generator in the style of httpx's ``auth_flow``: it
yields effects (:class:`Call` for store and lock operations, :class:`Http` for
the provider) and is sent their results. The sync and async drivers in
``_keeper.py`` perform the effects; the logic — re-read after the lock, skip
when another process already refreshed, keep the refresh token, compare-and-
swap, the ``invalid_grant`` rotation race, metrics — lives only here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

from ..errors import AccountNotFound, ProviderError, ReauthRequired, TokenError, TransientError
from ..store import RefreshLock, Store
from ._deadline import deadline, margin
from ._model import Account, TokenResult, TokenSet, secret_prefix
from ._providers import Provider, RefreshRequest, get_provider
from ._scrub import Scrubber

log = logging.getLogger("stayfresh.tokens")

UTC = dt.UTC


# -- pure decisions ---------------------------------------------------------------


def effective_threshold(tokens: TokenSet, threshold: float) -> float:
    """The refresh margin in seconds, never more than half the token's lifetime."""
    return margin(_seconds(tokens.expires_at), _seconds(tokens.obtained_at), threshold)


def refresh_deadline(tokens: TokenSet, threshold: float) -> float:
    """The POSIX time from which the token must be refreshed (inf if never).

    No access token at all means "refresh now"; no known expiry means "valid
    until a server says 401" (the auth integrations then force a refresh).
    """
    return deadline(
        tokens.access_token is not None,
        _seconds(tokens.expires_at),
        _seconds(tokens.obtained_at),
        threshold,
    )


def _seconds(at: dt.datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def seconds_left(tokens: TokenSet, now: float) -> float:
    """Seconds until the access token expires (inf when unknown, ≤0 when expired)."""
    if tokens.access_token is None:
        return float("-inf")
    if tokens.expires_at is None:
        return float("inf")
    return tokens.expires_at.timestamp() - now


def replaced(tokens: TokenSet, rejected: str | None) -> bool:
    """Has the access token a server refused (401) already been replaced by another?

    Then a refresh forced by that 401 is moot: the new token has not been tried yet.
    """
    return rejected is not None and tokens.access_token not in (None, rejected)


def usable(tokens: TokenSet, now: float) -> bool:
    """Can the current access token still be sent (not yet expired)?"""
    return seconds_left(tokens, now) > 0


# -- effects -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """Run a function (store or lock) and send back its result.

    ``blocking=False`` marks calls that return at once (a lock *try*), which
    the async driver runs inline instead of in a worker thread.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    blocking: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Http:
    """Send one HTTP request; the driver sends back an :class:`HttpReply`."""

    method: str
    url: str
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:  # the form and headers carry secrets
        return f"Http({self.method} {self.url}, fields={sorted(self.data or {})!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    sent_at: dt.datetime
    received_at: dt.datetime


Effect = Call | Http
Flow = Generator[Effect, Any, TokenResult]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FlowOptions:
    threshold: float
    force: bool
    background: bool
    mandatory_window: float
    lock_timeout: float
    #: the access token a server refused (401): a forced refresh is moot once it is replaced
    rejected: str | None = None


def load_account(store: Store, name: str) -> Account:
    row = store.get_account(name)
    if row is None:
        raise AccountNotFound(f"no account named {name!r}")
    return Account.from_row(row)


def refresh_flow(
    store: Store, seen: Account, opts: FlowOptions, clock: Callable[[], float]
) -> Flow:
    """Make ``seen``'s token fresh, coordinating with other processes via the store.

    Runs in at most one thread of this process per account (the keeper's single
    flight makes sure); the store lock extends that to other processes.
    """
    name = seen.name
    lock: RefreshLock = store.refresh_lock(name)
    if not (yield Call(lock.acquire, (0,), blocking=False)):
        left = seconds_left(seen.tokens, clock())
        if not opts.force and left > opts.mandatory_window:
            log.info(
                "%s: another process is refreshing; token still valid for %.0f min, using it",
                name,
                left / 60,
            )
            return TokenResult(account=name, tokens=seen.tokens, was_refreshed=False)
        log.info("%s: another process is refreshing; waiting for its result", name)
        if not (yield Call(lock.acquire, (opts.lock_timeout,))):
            raise TransientError(f"{name}: timed out waiting for another process's refresh")
    try:
        return (yield from _refresh_locked(store, seen, opts, clock))
    finally:
        yield Call(lock.release)


def _refresh_locked(
    store: Store, seen: Account, opts: FlowOptions, clock: Callable[[], float]
) -> Flow:
    name = seen.name
    current: Account = yield Call(load_account, (store, name))
    newer = current.version != seen.version
    now = clock()
    if opts.force and replaced(current.tokens, opts.rejected):
        opts = dataclasses.replace(opts, force=False)
    if newer and (opts.force or now < refresh_deadline(current.tokens, opts.threshold)):
        log.info("%s: another process refreshed the token meanwhile; using it", name)
        return TokenResult(account=name, tokens=current.tokens, was_refreshed=True)
    if not opts.force and now < refresh_deadline(current.tokens, opts.threshold):
        return TokenResult(account=name, tokens=current.tokens, was_refreshed=False)
    if current.needs_login and not opts.force:
        raise ReauthRequired(
            f"{name} needs a new login ({current.status_message or 'refresh token rejected'})",
            account=name,
        )
    provider = get_provider(current.provider)
    started = time.perf_counter()
    try:
        config = yield from _discovered_config(store, provider, current)
        yield Call(store.begin_refresh, (name, current.version))  # durable before the request
        try:
            tokens = yield from _request_tokens(provider, config, current.tokens)
        except ReauthRequired:
            # the rotation race: did another process store a newer refresh token?
            latest: Account = yield Call(load_account, (store, name))
            if latest.tokens.refresh_token == current.tokens.refresh_token:
                raise
            log.warning("%s: refresh token was rotated by another process; retrying with it", name)
            current = latest
            if clock() < refresh_deadline(latest.tokens, opts.threshold) and not opts.force:
                return TokenResult(account=name, tokens=latest.tokens, was_refreshed=True)
            tokens = yield from _request_tokens(provider, config, latest.tokens)
    except TokenError as exc:
        if isinstance(exc, ReauthRequired):
            exc.account = name  # what the user must log in to: every message names it
        kind = "background" if opts.background else "jit"
        yield Call(_record_failure, (store, name, kind, clock(), exc))
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    if tokens.refresh_token == current.tokens.refresh_token:
        log.info("%s: refresh token kept (%s)", name, secret_prefix(tokens.refresh_token))
    else:
        log.info("%s: provider rotated the refresh token", name)
    version = yield Call(_swap, (store, name, current.version, tokens))
    if version is None:
        # our lock lapsed and someone wrote a newer token: theirs wins
        winner: Account = yield Call(load_account, (store, name))
        log.warning("%s: a newer token was stored concurrently; discarding ours", name)
        return TokenResult(account=name, tokens=winner.tokens, was_refreshed=True)
    kind = "background" if opts.background else "jit"
    yield Call(_record_success, (store, name, kind, clock(), latency_ms))
    expiry = tokens.expires_at.isoformat() if tokens.expires_at else "unknown"
    log.info("%s: token refreshed, new expiry %s (%.0f ms)", name, expiry, latency_ms)
    return TokenResult(account=name, tokens=tokens, was_refreshed=True)


def _discovered_config(
    store: Store, provider: Provider, account: Account
) -> Generator[Effect, Any, dict[str, Any]]:
    url = provider.discovery_url(account.config)
    if url is None:
        return account.config
    with Scrubber.for_request(None, {}, account.config, account.tokens).guard():
        reply: HttpReply = yield Http("GET", url, headers={"Accept": "application/json"})
        if reply.status != 200:
            raise _http_failure(reply, "OIDC discovery")
        try:
            document = json.loads(reply.body)
        except ValueError:
            document = None
        config = provider.apply_discovery(account.config, document)
    yield Call(store.update_config, (account.name, config))
    return config


def _request_tokens(
    provider: Provider, config: Mapping[str, Any], tokens: TokenSet
) -> Generator[Effect, Any, TokenSet]:
    if not tokens.refresh_token:
        raise ReauthRequired("the account has no refresh token")
    request: RefreshRequest = provider.refresh_request(config, tokens.refresh_token)
    log.debug("POST %s with refresh token %s", request.url, secret_prefix(tokens.refresh_token))
    # the one door provider texts come in by: whatever they echo of ours is blanked
    with Scrubber.for_request(request.data, request.headers, config, tokens).guard():
        reply: HttpReply = yield Http("POST", request.url, request.data, request.headers)
        return provider.parse_response(
            reply.status,
            reply.headers,
            reply.body,
            sent_at=reply.sent_at,
            received_at=reply.received_at,
            previous=tokens,
        )


def _http_failure(reply: HttpReply, what: str) -> TokenError:
    if reply.status >= 500 or reply.status == 429:
        return TransientError(f"{what} answered {reply.status}")
    return ProviderError(f"{what} answered {reply.status}", status=reply.status)


def _swap(store: Store, name: str, version: int, tokens: TokenSet) -> int | None:
    return store.swap_tokens(name, version, tokens.to_row())


def _record_success(store: Store, name: str, kind: Any, at: float, latency_ms: float) -> None:
    store.record_refresh(name, kind=kind, ok=True, at=at, latency_ms=latency_ms)


def _record_failure(store: Store, name: str, kind: Any, at: float, exc: Exception) -> None:
    if isinstance(exc, ReauthRequired):
        store.set_status(name, "needs_login", str(exc))
    store.record_refresh(name, kind=kind, ok=False, at=at, error=f"{type(exc).__name__}: {exc}")
