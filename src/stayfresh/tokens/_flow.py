"""Tokens as a kind of state kept fresh: the decision and the refresh, free of I/O.

:class:`TokenKind` declares what is specific to OAuth tokens to the common
core (:mod:`stayfresh.fresh`), which owns the valid path, single flight, the
lock, the re-read after it and telemetry. :func:`refresh_tokens` is the
refresh itself, a generator of effects (store calls, the provider's HTTP
requests) that the core drives for sync and async callers alike: discovery,
the durable intent, keep the refresh token, compare-and-swap, the
``invalid_grant`` rotation race.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..errors import ProviderError, ReauthRequired, TokenError, TransientError
from ..fresh import Call, Flow, Http, HttpReply, Kind, Request
from ..store import RefreshIntent, Store
from ._deadline import DEFAULT_THRESHOLD_SECONDS, deadline, margin
from ._model import Account, TokenSet, load_account, seconds_left, secret_prefix
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


def replaced(tokens: TokenSet, rejected: str | None) -> bool:
    """Has the access token a server refused (401) already been replaced by another?

    Then a refresh forced by that 401 is moot: the new token has not been tried yet.
    """
    return rejected is not None and tokens.access_token not in (None, rejected)


def usable(tokens: TokenSet, now: float) -> bool:
    """Can the current access token still be sent (not yet expired)?"""
    return seconds_left(tokens, now) > 0


# -- the kind -----------------------------------------------------------------------


class TokenKind(Kind[Account]):
    """OAuth tokens as a kind of state kept fresh: what is specific to them.

    Stale ``threshold`` seconds before expiry (at most half the token's
    lifetime); shared (waiters take the leader's token); the old access token
    stays usable until it expires; an account that needs a login is never
    refreshed without one; a 401 on a token already replaced is moot.
    """

    name = "token"
    mode = "share"
    failures = (TokenError,)

    def __init__(self, *, within: float = DEFAULT_THRESHOLD_SECONDS, wait_window: float = 120.0):
        self.within = within
        self.background_within = within
        self.wait_window = wait_window

    def load(self, store: Store, key: str) -> Account:
        return load_account(store, key)

    def stale_from(self, state: Account, within: float) -> float:
        return refresh_deadline(state.tokens, within)

    def usable_until(self, state: Account) -> float:
        return seconds_left(state.tokens, 0.0)

    def version(self, state: Account) -> int:
        return state.version

    def blocked(self, state: Account) -> Exception | None:
        if not state.needs_login:
            return None
        why = state.status_message or "refresh token rejected"
        return ReauthRequired(f"{state.name} needs a new login ({why})", account=state.name)

    def replaced(self, state: Account, rejected: Any) -> bool:
        return replaced(state.tokens, rejected)

    def reason(self, state: Account, within: float, now: float) -> str:
        left = seconds_left(state.tokens, now)
        if now < self.stale_from(state, within):
            return f"token still valid ({left / 60:.0f} min left)"
        return (
            "no access token"
            if left == float("-inf")
            else f"expiring soon ({left / 60:.1f} min left)"
        )

    def refresh(self, store: Store, key: str, state: Account, request: Request) -> Flow[Account]:
        return refresh_tokens(store, state, request)


def refresh_tokens(store: Store, current: Account, request: Request) -> Flow[Account]:
    """Spend ``current``'s refresh token for new tokens and store them (under the lock).

    The intent is durable before the request goes out; the provider's answer
    is stored by compare-and-swap on the version; a failure ends the intent
    (and marks the account ``needs_login`` when the refresh token is refused).
    """
    name = current.name
    newer = yield from _after_another_spender(store, current, request)
    if newer is not None:
        return newer
    provider = get_provider(current.provider)
    spent = current.tokens.refresh_token
    try:
        config = yield from _discovered_config(store, provider, current)
        while True:  # durable before the request, and decided with the account row locked
            intent = yield Call(store.begin_refresh, (name, current.version))
            if intent is not None and not intent.held_elsewhere(time.time()):
                break  # ours
            newer = yield from _after_another_spender(store, current, request)
            if newer is not None:
                return newer  # another process stored newer tokens meanwhile
        try:
            tokens = yield from _request_tokens(provider, config, current.tokens)
        except ReauthRequired:
            # the rotation race: did another process store a newer refresh token?
            latest: Account = yield Call(load_account, (store, name))
            if latest.tokens.refresh_token == current.tokens.refresh_token:
                raise
            log.warning("%s: refresh token was rotated by another process; retrying with it", name)
            current = latest
            if (
                request.clock() < refresh_deadline(latest.tokens, request.within)
                and not request.force
            ):
                return latest
            tokens = yield from _request_tokens(provider, config, latest.tokens)
    except TokenError as exc:
        needs_login = None
        if isinstance(exc, ReauthRequired):
            exc.account = name  # what the user must log in to: every message names it
            needs_login = str(exc)
        yield Call(store.end_refresh, (name,), {"needs_login": needs_login, "rejected": spent})
        raise
    if tokens.refresh_token == current.tokens.refresh_token:
        log.info("%s: refresh token kept (%s)", name, secret_prefix(tokens.refresh_token))
    else:
        log.info("%s: provider rotated the refresh token", name)
    version = yield Call(store.swap_tokens, (name, current.version, tokens.to_row()))
    if version is None:
        # our lock lapsed and someone wrote a newer token: theirs wins
        winner: Account = yield Call(load_account, (store, name))
        log.warning("%s: a newer token was stored concurrently; discarding ours", name)
        return winner
    expiry = tokens.expires_at.isoformat() if tokens.expires_at else "unknown"
    log.info("%s: token refreshed, new expiry %s", name, expiry)
    return dataclasses.replace(current, tokens=tokens, version=version)


#: how often a caller waiting for another process's refresh looks at the store again
INTENT_POLL = 0.2


def _after_another_spender(
    store: Store, current: Account, request: Request
) -> Flow[Account | None]:
    """Wait while another process is spending this very refresh token; its result, or None.

    Holding the lock, we may still find a live intent to spend our refresh
    token: its owner lost the lock with its database connection and is still
    waiting for the provider. Sending the token again would be a reuse that a
    rotating provider answers by revoking the login, so we wait for its
    result (a newer version of the account), for the intent to end or expire
    or its owner to die on this host, at most ``request.patience`` seconds.
    """
    deadline = time.monotonic() + request.patience
    while True:
        found: Account | RefreshIntent | None = yield Call(other_spender, (store, current))
        if not isinstance(found, RefreshIntent):
            return found
        if time.monotonic() >= deadline:
            raise TransientError(
                f"{current.name}: another process ({found.owner}) is spending this refresh"
                " token; not sending it twice"
            )
        log.info("%s: %s is spending this refresh token; waiting", current.name, found.owner)
        yield Call(time.sleep, (INTENT_POLL,))


def other_spender(store: Store, current: Account) -> Account | RefreshIntent | None:
    """One look: the newer account if another process refreshed it meanwhile; else the live
    intent of another process to spend ``current``'s refresh token; else None."""
    latest = load_account(store, current.name)
    if latest.version != current.version:
        log.info("%s: another process refreshed the token meanwhile; using it", current.name)
        return latest
    intent = store.refresh_intent(current.name)
    if intent is not None and intent.spends(current.tokens.refresh_token):
        return intent if intent.held_elsewhere(time.time()) else None
    return None


def _discovered_config(store: Store, provider: Provider, account: Account) -> Flow[dict[str, Any]]:
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
) -> Flow[TokenSet]:
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
