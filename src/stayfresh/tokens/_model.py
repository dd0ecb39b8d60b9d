"""Value objects of the token keeper: frozen, keyword-only, aware UTC datetimes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..errors import AccountNotFound
from ..store import AccountRow, Store, TokenRow

UTC = dt.UTC


def secret_prefix(value: str | None, keep: int = 4) -> str:
    """A loggable hint of a secret: its first few characters and an ellipsis."""
    if not value:
        return "<none>"
    return f"{value[:keep]}…" if len(value) > keep * 3 else "…"


def to_datetime(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TokenSet:
    """An access token with its expiry, and the refresh token that renews it.

    ``repr`` never shows the tokens themselves. Only what you have need be
    given: ``TokenSet(refresh_token=rt)`` is an account whose first use
    refreshes; an access token without ``expires_at`` is valid until a 401.
    """

    access_token: str | None = None
    expires_at: dt.datetime | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    obtained_at: dt.datetime | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={secret_prefix(self.access_token)!r}, "
            f"expires_at={self.expires_at!r}, token_type={self.token_type!r}, scope={self.scope!r})"
        )

    @property
    def authorization(self) -> str:
        """The value of an ``Authorization`` header for this token."""
        kind = "Bearer" if self.token_type.lower() == "bearer" else self.token_type
        return f"{kind} {self.access_token}"

    def to_row(self) -> TokenRow:
        return TokenRow(
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            token_type=self.token_type,
            scope=self.scope,
            expires_at=self.expires_at.timestamp() if self.expires_at else None,
            obtained_at=self.obtained_at.timestamp() if self.obtained_at else None,
        )

    @classmethod
    def from_row(cls, row: TokenRow) -> TokenSet:
        return cls(
            access_token=row.access_token,
            refresh_token=row.refresh_token,
            token_type=row.token_type or "Bearer",
            scope=row.scope,
            expires_at=to_datetime(row.expires_at),
            obtained_at=to_datetime(row.obtained_at),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TokenResult:
    """What :func:`ensure_valid_token` returns."""

    account: str
    tokens: TokenSet
    was_refreshed: bool

    @property
    def access_token(self) -> str | None:
        return self.tokens.access_token

    @property
    def expires_at(self) -> dt.datetime | None:
        return self.tokens.expires_at

    def to_json(self) -> dict[str, Any]:
        """The ``stayfresh token --json`` document."""
        return {
            "account": self.account,
            "access_token": self.tokens.access_token,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "was_refreshed": self.was_refreshed,
        }


#: configuration values that are secrets: never shown, logged or printed
SECRET_CONFIG_KEYS = frozenset({"client_secret", "device_serial", "password"})


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Account:
    """An account as the keeper sees it: configuration, tokens, version."""

    name: str
    provider: str
    config: dict[str, Any]
    tokens: TokenSet
    version: int
    status: str
    status_message: str | None = None

    def __repr__(self) -> str:
        public = {k: v for k, v in self.config.items() if k not in SECRET_CONFIG_KEYS}
        hidden = sorted(k for k in self.config if k in SECRET_CONFIG_KEYS)
        return (
            f"Account(name={self.name!r}, provider={self.provider!r}, config={public!r}, "
            f"hidden={hidden!r}, tokens={self.tokens!r}, version={self.version}, "
            f"status={self.status!r})"
        )

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(
            name=row.name,
            provider=row.provider,
            config=dict(row.config),
            tokens=TokenSet.from_row(row.tokens),
            version=row.version,
            status=row.status,
            status_message=row.status_message,
        )

    @property
    def needs_login(self) -> bool:
        return self.status == "needs_login"


def seconds_left(tokens: TokenSet, now: float) -> float:
    """Seconds until the access token expires (inf when unknown, ≤0 when expired)."""
    if tokens.access_token is None:
        return float("-inf")
    if tokens.expires_at is None:
        return float("inf")
    return tokens.expires_at.timestamp() - now


def load_account(store: Store, name: str) -> Account:
    row = store.get_account(name)
    if row is None:
        raise AccountNotFound(f"no account named {name!r}")
    return Account.from_row(row)
