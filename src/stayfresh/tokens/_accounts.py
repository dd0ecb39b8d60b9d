"""Account lifecycle on the store: add, replace tokens (login/import), describe, remove."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from .._input import check_name as _check_name
from ..errors import AccountNotFound, ConfigError
from ..store import AccountExists, Store, TelemetryRow
from ._model import Account, TokenSet, load_account, seconds_left

#: account names are used in file names, work names and command lines
MAX_ACCOUNT_NAME = 100


def check_name(name: str) -> str:
    """The one name rule (:func:`stayfresh._input.check_name`), at most 100 characters."""
    try:
        return _check_name(name, "account name", max_len=MAX_ACCOUNT_NAME)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_tokens(provider: str, tokens: TokenSet) -> None:
    """Refuse tokens given by the user that the provider could not have issued."""
    from ._providers import get_provider  # not on the describe path (status, account list)

    problem = get_provider(provider).check_tokens(tokens)
    if problem:
        raise ConfigError(problem)


def add_account(
    store: Store, name: str, provider: str, config: Mapping[str, Any], tokens: TokenSet
) -> Account:
    """Validate the provider configuration and store a new account."""
    check_name(name)
    from ._providers import get_provider

    normalized = get_provider(provider).normalize_config(config)
    if not tokens.refresh_token:
        raise ConfigError("an account needs a refresh token")
    check_tokens(provider, tokens)
    try:
        row = store.create_account(name, provider, normalized, tokens.to_row())
    except AccountExists:
        raise ConfigError(f"account {name!r} already exists") from None
    return Account.from_row(row)


def replace_tokens(store: Store, name: str, tokens: TokenSet) -> Account:
    """Store tokens from a login or import; the account becomes healthy (``ok``)."""
    for _ in range(10):
        current = load_account(store, name)
        check_tokens(current.provider, tokens)
        if store.swap_tokens(name, current.version, tokens.to_row(), mark_ok=True) is not None:
            return load_account(store, name)
    raise ConfigError(f"could not store tokens for {name!r}: too much concurrent activity")


def remove_account(store: Store, name: str) -> None:
    if not store.delete_account(name):
        raise AccountNotFound(f"no account named {name!r}")


def describe(store: Store, name: str, now: float | None = None) -> dict[str, Any]:
    """Everything ``account show`` prints: status, expiry, metrics — never a secret."""
    account = load_account(store, name)
    return _describe(store, account, time.time() if now is None else now)


def describe_all(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    at = time.time() if now is None else now
    return [_describe(store, Account.from_row(row), at) for row in store.list_accounts()]


def _iso(value: dt.datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.isoformat()


_PUBLIC_CONFIG = (
    "token_url", "issuer", "client_id", "auth_method", "scope", "locale", "api_url",
    "authorization_endpoint", "device_authorization_endpoint", "token_host",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RefreshMetrics:
    """An account's refresh figures, from the store's telemetry (all layers).

    ``p95_latency_ms`` is the upper bound of the histogram bucket holding the
    95th percentile (None above 10 s); ``avg_latency_ms`` is exact.
    """

    jit_refreshes: int
    background_refreshes: int
    failures: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    last_refresh_at: float | None
    last_failure_at: float | None
    last_error: str | None


def refresh_metrics(store: Store, name: str) -> RefreshMetrics:
    """``name``'s refresh figures: successes by layer, failures, latency, last times."""
    rows = store.fresh_telemetry("token", name)
    total = TelemetryRow.total(rows, kind="token", key=name)
    p95 = total.latency_ms(0.95)
    count = total.latency_count
    return RefreshMetrics(
        jit_refreshes=sum(r.successes for r in rows if r.layer == "use"),
        background_refreshes=sum(r.successes for r in rows if r.layer != "use"),
        failures=total.failures,
        avg_latency_ms=total.latency_sum_ms / count if count else None,
        p95_latency_ms=None if p95 is None or p95 == float("inf") else p95,
        last_refresh_at=total.last_success_at,
        last_failure_at=total.last_failure_at,
        last_error=total.last_error,
    )


def _describe(store: Store, account: Account, now: float) -> dict[str, Any]:
    metrics = refresh_metrics(store, account.name)
    left = seconds_left(account.tokens, now)
    return {
        "name": account.name,
        "provider": account.provider,
        "status": account.status,
        "status_message": account.status_message,
        "config": {k: account.config[k] for k in _PUBLIC_CONFIG if k in account.config},
        "has_client_secret": bool(account.config.get("client_secret")),
        "has_refresh_token": bool(account.tokens.refresh_token),
        "expires_at": _iso(account.tokens.expires_at),
        "expires_in_minutes": None
        if left in (float("inf"), float("-inf"))
        else round(left / 60, 1),
        "scope": account.tokens.scope,
        "version": account.version,
        "metrics": {
            **dataclasses.asdict(metrics),
            "avg_latency_ms": None
            if metrics.avg_latency_ms is None
            else round(metrics.avg_latency_ms, 1),
            "last_refresh_at": _iso(metrics.last_refresh_at),
            "last_failure_at": _iso(metrics.last_failure_at),
        },
    }
