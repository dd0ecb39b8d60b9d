"""Every branch of the token refresh under the lock, driven by hand: no HTTP, no SQLite, no threads.

The common core's :func:`stayfresh.fresh._lock.locked_refresh`, run for the
:class:`~stayfresh.tokens.TokenKind` (whose refresh is
:func:`stayfresh.tokens._flow.refresh_tokens`), is a sans-IO generator: it
yields effects (a store or lock :class:`Call`, an :class:`Http` request) and is
sent their results. Here a table gives the account as the caller saw it, the options,
and the replies to send in order (a lock answer, an account as loaded, an HTTP
reply, a swap's new version, or an exception to throw into the flow, as the
keeper's drivers do when an effect fails); each row checks the effects the flow
asked for, in order, and how it ended (a result or an exception).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from stayfresh.errors import AccountNotFound, ProviderError, ReauthRequired, TransientError
from stayfresh.fresh import Call, Http, HttpReply, Outcome
from stayfresh.fresh._lock import Options, _count, locked_refresh
from stayfresh.store import RefreshIntent, Store
from stayfresh.store._guard import intent_owner
from stayfresh.testing import FakeClock
from stayfresh.tokens import TokenKind
from stayfresh.tokens._flow import load_account, other_spender
from stayfresh.tokens._model import Account, TokenSet

UTC = dt.UTC
NOW = 1_700_000_000.0
TOKEN_URL = "https://idp.example/token"
ISSUER = "https://idp.example"
DISCOVERY = "https://idp.example/.well-known/openid-configuration"
THRESHOLD = 1800.0  # refresh from 30 min before expiry
WINDOW = 120.0  # the mandatory window: closer to expiry, wait for another's refresh
LOCK_TIMEOUT = 30.0


# -- a store that only names things: the flow never calls it, it yields calls to it -------


class FakeLock:
    def acquire(self, timeout: float) -> bool:
        raise AssertionError("the table answers lock calls")

    def release(self) -> None:
        raise AssertionError("the table answers lock calls")


class FakeStore:
    def __init__(self) -> None:
        self.the_lock = FakeLock()
        self.locked: list[str] = []

    def lock(self, kind: str, key: str) -> FakeLock:
        self.locked.append(f"{kind}:{key}")
        return self.the_lock

    def begin_refresh(self, name: str, version: int) -> None:
        raise AssertionError("the table answers store calls")

    def update_config(self, name: str, config: dict[str, Any]) -> None:
        raise AssertionError("the table answers store calls")

    def swap_tokens(self, name: str, version: int, tokens: Any) -> None:
        raise AssertionError("the table answers store calls")

    def end_refresh(self, name: str, *, needs_login: str | None = None) -> None:
        raise AssertionError("the table answers store calls")


# -- the accounts, replies and options of the table --------------------------------------


def account(
    *,
    left: float = 3600,
    access: str | None = "a1",
    refresh: str | None = "r1",
    version: int = 1,
    status: str = "ok",
    provider: str = "oauth2",
    config: dict[str, Any] | None = None,
) -> Account:
    """Account ``acct`` whose access token expires ``left`` s after NOW (lived 2 h before)."""
    expires = dt.datetime.fromtimestamp(NOW + left, UTC)
    return Account(
        name="acct",
        provider=provider,
        config=config if config is not None else {"token_url": TOKEN_URL, "client_id": "cid"},
        tokens=TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires,
            obtained_at=dt.datetime.fromtimestamp(NOW - 7200, UTC),
        ),
        version=version,
        status=status,
        status_message="refresh token rejected" if status == "needs_login" else None,
    )


OIDC = {"issuer": ISSUER, "client_id": "cid"}

VALID = account(left=3600)  # outside the 30 min threshold
STALE = account(left=20 * 60)  # inside the threshold, outside the mandatory window
URGENT = account(left=60)  # inside the mandatory window
EXPIRED = account(left=-5)
NEWER_VALID = account(left=3600, access="a2", refresh="r2", version=2)
NEWER_STALE = account(left=-5, access="a2", refresh="r2", version=2)
NEEDS_LOGIN = account(left=-5, status="needs_login")
NO_REFRESH = account(left=-5, refresh=None)
OIDC_EXPIRED = account(left=-5, provider="oidc", config=OIDC)


def http(status: int, body: Any, **headers: str) -> HttpReply:
    at = dt.datetime.fromtimestamp(NOW, UTC)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, {k.replace("_", "-"): v for k, v in headers.items()}, data, at, at)


def token(access: str = "a-new", refresh: str | None = None, expires_in: int = 3600) -> HttpReply:
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
    body["expires_in"] = expires_in
    if refresh is not None:
        body["refresh_token"] = refresh
    return http(200, body)


INVALID_GRANT = http(400, {"error": "invalid_grant"})
#: another process's intent that ``begin_refresh`` found live (its lease runs for real)
LIVE_ELSEWHERE = RefreshIntent(
    account="acct", owner="elsewhere:1", fingerprint="x", version=1, started_at=NOW,
    expires_at=time.time() + 3600,
)  # fmt: skip
#: this process's intent, as ``begin_refresh`` returns it when it may spend the token
MINE = RefreshIntent(
    account="acct", owner=intent_owner(), fingerprint="x", version=1, started_at=NOW,
    expires_at=NOW + 300,
)  # fmt: skip
#: another process's live intent to spend r1 (it lost the lock with its connection)
ELSEWHERE = RefreshIntent(
    account="acct", owner="elsewhere:1", fingerprint="x", version=1, started_at=NOW,
    expires_at=NOW + 300,
)  # fmt: skip
BUSY = http(503, {"error": "temporarily_unavailable"})
DISCOVERED = http(200, {"token_endpoint": "https://idp.example/oidc/token"})


def options(**overrides: Any) -> Options:
    background = overrides.pop("background", False)
    base: dict[str, Any] = {
        "within": THRESHOLD,
        "force": False,
        "layer": "background" if background else "use",
        "lock_timeout": LOCK_TIMEOUT,
    }
    return Options(**{**base, **overrides})


# -- the driver ----------------------------------------------------------------------------

#: effects whose result the flow uses (their reply may also be an exception to throw)
ANSWERED = {"try-lock", "lock", "load", "swap", "GET", "POST", "spender"}


@dataclasses.dataclass(frozen=True)
class Begin:
    """The reply to ``begin_refresh``: None (the account moved) or another process's intent."""

    intent: Any


@dataclasses.dataclass(frozen=True)
class Spender:
    """The reply to a look for another process spending the token (what ``other_spender`` found)."""

    found: Any


@dataclasses.dataclass(frozen=True)
class Fail:
    """A reply for an effect whose result is unused: it raised ``error``."""

    at: str
    error: BaseException


def describe(effect: Any, store: FakeStore) -> tuple[Any, ...]:
    """A readable name for one effect (and the arguments that matter)."""
    if isinstance(effect, Http):
        return (effect.method, effect.url, dict(effect.data or {}).get("refresh_token"))
    assert isinstance(effect, Call)
    fn, args, kwargs = effect.fn, effect.args, effect.kwargs
    owner = getattr(fn, "__self__", None)
    if owner is store.the_lock:
        if fn.__name__ == "release":
            return ("release",)
        assert effect.blocking == (args[0] != 0)  # a try runs inline in the async driver
        return ("try-lock",) if args == (0,) else ("lock", args[0])
    if owner is store:
        if fn.__name__ == "begin_refresh":
            return ("begin", args[1])
        if fn.__name__ == "swap_tokens":
            return ("swap", args[1], args[2].access_token, args[2].refresh_token)
        if fn.__name__ == "end_refresh":
            return ("end", "needs_login" if kwargs.get("needs_login") else None)
        assert fn.__name__ == "update_config"
        return ("config", args[1]["token_url"])
    if fn is load_account or (isinstance(owner, TokenKind) and fn.__name__ == "load"):
        return ("load",)
    if fn is other_spender:
        return ("spender",)
    if fn is time.sleep:
        return ("sleep",)
    if fn is _count:
        outcome, layer = args[4], args[3]
        if outcome == "failure":
            return ("failure", layer, kwargs["error"].split(":")[0])
        return (outcome, layer)
    raise AssertionError(f"unexpected effect {effect!r}")


def drive(
    seen: Account, opts: Options, replies: list[Any]
) -> tuple[list[tuple[Any, ...]], tuple[str | None, bool] | BaseException]:
    """Run the flow to its end, answering from ``replies``; (effects seen, outcome)."""
    store = FakeStore()
    kind = TokenKind(within=THRESHOLD, wait_window=WINDOW)
    flow = locked_refresh(kind, cast(Store, store), "acct", seen, opts, FakeClock(NOW))
    effects: list[tuple[Any, ...]] = []
    pending = list(replies)
    send: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(send)
            except StopIteration as stop:
                done: Outcome[Account] = stop.value
                outcome: Any = done.error if done.status == "failed" else done
                break
            except Exception as exc:
                outcome = exc
                break
            effects.append(describe(effect, store))
            send, error = None, None
            name = effects[-1][0]
            if pending and isinstance(pending[0], Fail) and pending[0].at == name:
                error = pending.pop(0).error
            elif name == "spender" and not (pending and isinstance(pending[0], Spender)):
                send = None  # nobody else is spending the token: the usual case
            elif name == "begin" and not (pending and isinstance(pending[0], Begin)):
                send = MINE  # the intent is this process's: the usual case
            elif name == "begin":
                send = pending.pop(0).intent
            elif name in ANSWERED:
                assert pending, f"no reply left for {effects[-1]} after {effects}"
                reply = pending.pop(0)
                if isinstance(reply, Spender):
                    reply = reply.found
                if isinstance(reply, BaseException):
                    error = reply
                else:
                    send = reply
    finally:
        # an aborted test ends the flow here, not in the garbage collector (RuntimeError:
        # its ``finally`` asks for a release that nobody answers)
        with contextlib.suppress(RuntimeError):
            flow.close()
    assert pending == [], f"replies left over: {pending} after {effects}"
    assert store.locked == ["token:acct"]
    return effects, outcome


# -- the table -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    seen: Account
    replies: list[Any]
    effects: list[tuple[Any, ...]]
    #: (access token, was_refreshed), or the exception type and a part of its message
    outcome: tuple[str | None, bool] | tuple[type[BaseException], str]
    opts: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: a last look at the result or exception
    check: Callable[[Any], bool] | None = None


LOCKED = ("try-lock",)
REFRESH = [("spender",), ("begin", 1), ("POST", TOKEN_URL, "r1")]
SWAP = ("swap", 1, "a-new", "r1")

ROWS = {
    # -- the lock is held by another process
    "busy/valid-beyond-window: use the seen token at once, no wait, counted as a skip": Row(
        STALE, [False], [LOCKED, ("skip", "use")], ("a1", False)
    ),
    "busy/inside-window: wait for the other's refresh, then use what it stored": Row(
        URGENT,
        [False, True, NEWER_VALID],
        [LOCKED, ("lock", LOCK_TIMEOUT), ("load",), ("release",)],
        ("a2", True),
    ),
    "busy/forced: wait even with time left": Row(
        VALID,
        [False, True, NEWER_VALID],
        [LOCKED, ("lock", LOCK_TIMEOUT), ("load",), ("release",)],
        ("a2", True),
        opts={"force": True},
    ),
    "busy/wait-times-out: transient error, nothing to release": Row(
        URGENT,
        [False, False],
        [LOCKED, ("lock", LOCK_TIMEOUT)],
        (TransientError, "timed out waiting for another process's refresh"),
    ),
    "busy/waited-but-other-failed: refresh ourselves": Row(
        URGENT,
        [False, True, URGENT, token(), 2],
        [
            LOCKED,
            ("lock", LOCK_TIMEOUT),
            ("load",),
            *REFRESH,
            SWAP,
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
    ),
    # -- locked: the re-read decides
    "locked/valid-after-reread: nothing to do": Row(
        VALID, [True, VALID], [LOCKED, ("load",), ("release",)], ("a1", False)
    ),
    "locked/another-process-refreshed: use its token": Row(
        EXPIRED, [True, NEWER_VALID], [LOCKED, ("load",), ("release",)], ("a2", True)
    ),
    "locked/newer-but-stale-too: refresh with the newer refresh token": Row(
        EXPIRED,
        [True, NEWER_STALE, token(), 3],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("begin", 2),
            ("POST", TOKEN_URL, "r2"),
            ("swap", 2, "a-new", "r2"),
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
    ),
    "locked/forced-and-newer: the other's refresh counts as ours": Row(
        VALID,
        [True, NEWER_VALID],
        [LOCKED, ("load",), ("release",)],
        ("a2", True),
        opts={"force": True},
    ),
    "locked/forced-and-newer-even-if-stale: a forced refresh wants a newer token, not a fresh one": Row(
        VALID,
        [True, NEWER_STALE],
        [LOCKED, ("load",), ("release",)],
        ("a2", True),
        opts={"force": True},
    ),
    "locked/forced: refresh a valid token": Row(
        VALID,
        [True, VALID, token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "use"), ("release",)],
        ("a-new", True),
        opts={"force": True},
    ),
    "locked/forced-by-401-of-current-token: refresh": Row(
        VALID,
        [True, VALID, token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "use"), ("release",)],
        ("a-new", True),
        opts={"force": True, "rejected": "a1"},
    ),
    "locked/forced-by-401-of-a-replaced-token: moot, use the new one": Row(
        VALID,
        [True, VALID],
        [LOCKED, ("load",), ("release",)],
        ("a1", False),
        opts={"force": True, "rejected": "a0"},
    ),
    "locked/needs-login: reauth without asking the provider": Row(
        NEEDS_LOGIN,
        [True, NEEDS_LOGIN],
        [LOCKED, ("load",), ("release",)],
        (ReauthRequired, "acct needs a new login (refresh token rejected)"),
    ),
    "locked/needs-login-but-forced: try the refresh token anyway": Row(
        NEEDS_LOGIN,
        [True, NEEDS_LOGIN, token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "use"), ("release",)],
        ("a-new", True),
        opts={"force": True},
    ),
    "locked/account-deleted: not found, lock released": Row(
        EXPIRED,
        [True, AccountNotFound("no account named 'acct'")],
        [LOCKED, ("load",), ("release",)],
        (AccountNotFound, "no account named 'acct'"),
    ),
    # -- the refresh request
    "refresh/stale-token: refreshed, refresh token kept": Row(
        STALE,
        [True, STALE, token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "use"), ("release",)],
        ("a-new", True),
        check=lambda r: (
            r.tokens.refresh_token == "r1" and r.tokens.expires_at.timestamp() == NOW + 3600
        ),
    ),
    "refresh/rotated-refresh-token: the new one is stored": Row(
        EXPIRED,
        [True, EXPIRED, token(refresh="r-new"), 2],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("swap", 1, "a-new", "r-new"),
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
        check=lambda r: r.tokens.refresh_token == "r-new",
    ),
    "refresh/no-access-token-at-all: refresh now": Row(
        account(access=None),
        [True, account(access=None), token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "use"), ("release",)],
        ("a-new", True),
    ),
    "refresh/background: metrics say background": Row(
        EXPIRED,
        [True, EXPIRED, token(), 2],
        [LOCKED, ("load",), *REFRESH, SWAP, ("success", "background"), ("release",)],
        ("a-new", True),
        opts={"background": True},
    ),
    "refresh/swap-lost: a newer token was stored meanwhile, theirs wins": Row(
        EXPIRED,
        [True, EXPIRED, token(), None, NEWER_VALID],
        [LOCKED, ("load",), *REFRESH, SWAP, ("load",), ("success", "use"), ("release",)],
        ("a2", True),
    ),
    "refresh/no-refresh-token: reauth after a re-read, recorded, no request": Row(
        NO_REFRESH,
        [True, NO_REFRESH, NO_REFRESH],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("begin", 1),
            ("load",),
            ("end", "needs_login"),
            ("failure", "use", "ReauthRequired"),
            ("release",),
        ],
        (ReauthRequired, "the account has no refresh token"),
        check=lambda e: e.account == "acct",
    ),
    "refresh/provider-5xx: transient, recorded": Row(
        EXPIRED,
        [True, EXPIRED, BUSY],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("end", None),
            ("failure", "use", "TransientError"),
            ("release",),
        ],
        (TransientError, "token endpoint answered 503"),
    ),
    "refresh/provider-5xx-in-background: recorded as background": Row(
        EXPIRED,
        [True, EXPIRED, BUSY],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("end", None),
            ("failure", "background", "TransientError"),
            ("release",),
        ],
        (TransientError, "token endpoint answered 503"),
        opts={"background": True},
    ),
    "refresh/provider-4xx: provider error, recorded": Row(
        EXPIRED,
        [True, EXPIRED, http(400, {"error": "invalid_request"})],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("end", None),
            ("failure", "use", "ProviderError"),
            ("release",),
        ],
        (ProviderError, "token endpoint answered 400: invalid_request"),
    ),
    "refresh/transport-error: thrown into the flow, recorded": Row(
        EXPIRED,
        [True, EXPIRED, TransientError("connection refused")],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("end", None),
            ("failure", "use", "TransientError"),
            ("release",),
        ],
        (TransientError, "connection refused"),
    ),
    "refresh/store-fails-before-the-request: not a token error, not recorded": Row(
        EXPIRED,
        [True, EXPIRED, Fail("begin", OSError("disk full"))],
        [LOCKED, ("load",), ("spender",), ("begin", 1), ("release",)],
        (OSError, "disk full"),
    ),
    # -- another process lost the lock with its connection but still spends the token
    "spender/another-process-spends-the-token-then-commits: wait, use its token": Row(
        EXPIRED,
        [True, EXPIRED, Spender(ELSEWHERE), Spender(NEWER_VALID)],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("sleep",),
            ("spender",),
            ("success", "use"),
            ("release",),
        ],
        ("a2", True),
    ),
    "spender/another-process-wins-the-intent-first: wait, use its token": Row(
        EXPIRED,
        [True, EXPIRED, Begin(LIVE_ELSEWHERE), Spender(NEWER_VALID)],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("begin", 1),
            ("spender",),
            ("success", "use"),
            ("release",),
        ],
        ("a2", True),
    ),
    "spender/the-account-moved-before-the-intent: use the stored newer token": Row(
        EXPIRED,
        [True, EXPIRED, Begin(None), Spender(NEWER_VALID)],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("begin", 1),
            ("spender",),
            ("success", "use"),
            ("release",),
        ],
        ("a2", True),
    ),
    # -- invalid_grant: the rotation race
    "rotation/invalid-grant-same-refresh-token: reauth, recorded": Row(
        EXPIRED,
        [True, EXPIRED, INVALID_GRANT, EXPIRED],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("load",),
            ("end", "needs_login"),
            ("failure", "use", "ReauthRequired"),
            ("release",),
        ],
        (ReauthRequired, "the refresh token was rejected (invalid_grant)"),
        check=lambda e: e.account == "acct",
    ),
    "rotation/another-process-rotated-and-its-token-is-fresh: use it": Row(
        EXPIRED,
        [True, EXPIRED, INVALID_GRANT, NEWER_VALID],
        [LOCKED, ("load",), *REFRESH, ("load",), ("success", "use"), ("release",)],
        ("a2", True),
    ),
    "rotation/another-process-rotated-but-forced: retry with its refresh token": Row(
        EXPIRED,
        [True, EXPIRED, INVALID_GRANT, NEWER_VALID, token(), 3],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("load",),
            ("POST", TOKEN_URL, "r2"),
            ("swap", 2, "a-new", "r2"),
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
        opts={"force": True},
    ),
    "rotation/another-process-rotated-stale-token: retry with its refresh token": Row(
        EXPIRED,
        [True, EXPIRED, INVALID_GRANT, NEWER_STALE, token(), 3],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("load",),
            ("POST", TOKEN_URL, "r2"),
            ("swap", 2, "a-new", "r2"),
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
    ),
    "rotation/retry-rejected-too: reauth, recorded": Row(
        EXPIRED,
        [True, EXPIRED, INVALID_GRANT, NEWER_STALE, INVALID_GRANT],
        [
            LOCKED,
            ("load",),
            *REFRESH,
            ("load",),
            ("POST", TOKEN_URL, "r2"),
            ("end", "needs_login"),
            ("failure", "use", "ReauthRequired"),
            ("release",),
        ],
        (ReauthRequired, "the refresh token was rejected"),
    ),
    # -- OIDC discovery before the first refresh
    "discovery/ok: the token endpoint is stored, then used": Row(
        OIDC_EXPIRED,
        [True, OIDC_EXPIRED, DISCOVERED, token(), 2],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("GET", DISCOVERY, None),
            ("config", "https://idp.example/oidc/token"),
            ("begin", 1),
            ("POST", "https://idp.example/oidc/token", "r1"),
            SWAP,
            ("success", "use"),
            ("release",),
        ],
        ("a-new", True),
    ),
    "discovery/5xx: transient, recorded": Row(
        OIDC_EXPIRED,
        [True, OIDC_EXPIRED, http(502, b"bad gateway")],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("GET", DISCOVERY, None),
            ("end", None),
            ("failure", "use", "TransientError"),
            ("release",),
        ],
        (TransientError, "OIDC discovery answered 502"),
    ),
    "discovery/429: transient": Row(
        OIDC_EXPIRED,
        [True, OIDC_EXPIRED, http(429, b"slow down")],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("GET", DISCOVERY, None),
            ("end", None),
            ("failure", "use", "TransientError"),
            ("release",),
        ],
        (TransientError, "OIDC discovery answered 429"),
    ),
    "discovery/404: provider error, recorded": Row(
        OIDC_EXPIRED,
        [True, OIDC_EXPIRED, http(404, b"not found")],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("GET", DISCOVERY, None),
            ("end", None),
            ("failure", "use", "ProviderError"),
            ("release",),
        ],
        (ProviderError, "OIDC discovery answered 404"),
    ),
    "discovery/not-json: provider error": Row(
        OIDC_EXPIRED,
        [True, OIDC_EXPIRED, http(200, b"<html>")],
        [
            LOCKED,
            ("load",),
            ("spender",),
            ("GET", DISCOVERY, None),
            ("end", None),
            ("failure", "use", "ProviderError"),
            ("release",),
        ],
        (ProviderError, "OIDC discovery document has no token_endpoint"),
    ),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_refresh_flow(row: Row) -> None:
    effects, outcome = drive(row.seen, options(**row.opts), row.replies)
    assert effects == row.effects
    expected = row.outcome
    if isinstance(expected[0], type):
        assert isinstance(outcome, expected[0]), outcome
        assert str(expected[1]) in str(outcome)
    else:
        assert isinstance(outcome, Outcome), outcome
        assert outcome.state is not None and outcome.key == "acct"
        assert (outcome.state.tokens.access_token, outcome.changed) == expected
    if row.check is not None:
        assert row.check(outcome if isinstance(outcome, BaseException) else outcome.state)


def test_the_table_names_every_effect_the_flow_can_ask_for() -> None:
    """A new kind of effect must get a row (``describe`` refuses unknown ones)."""
    seen = {effect[0] for row in ROWS.values() for effect in row.effects}
    assert seen == {
        "try-lock",
        "lock",
        "load",
        "release",
        "begin",
        "config",
        "GET",
        "POST",
        "swap",
        "success",
        "failure",
        "end",
        "skip",
        "spender",
        "sleep",
    }
