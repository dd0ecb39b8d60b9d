"""The store contract: every backend implements :class:`Store`.

The interface is deliberately narrow. It speaks in plain rows (dataclasses of
primitive values) so that the store never imports the parts built on top of it
(``tokens``, ``work``, ``notify``). Each method documents the guarantee callers
rely on; the shared contract tests in ``tests/test_store_contract.py`` hold
every backend to it.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Collection, Mapping
from typing import Any, Literal

from ..errors import StoreError
from ._guard import INTENT_LEASE
from ._library_base import LibraryStore
from ._notify_base import NotifyStore
from ._work_base import WorkStore

RefreshKind = Literal["jit", "background"]


class AccountExists(StoreError):
    """An account with that name is already stored."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TokenRow:
    """A token set as stored. Times are POSIX seconds (UTC)."""

    access_token: str | None
    refresh_token: str | None
    token_type: str = "Bearer"
    scope: str | None = None
    expires_at: float | None = None
    obtained_at: float | None = None

    def __repr__(self) -> str:  # never show secrets
        return (
            f"TokenRow(expires_at={self.expires_at!r}, token_type={self.token_type!r}, "
            f"scope={self.scope!r})"
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AccountRow:
    """One account: its provider configuration, its tokens and their version.

    ``version`` grows by one on every token write; writes are compare-and-swap
    on it (see :meth:`Store.swap_tokens`).
    """

    name: str
    provider: str
    config: Mapping[str, Any]
    tokens: TokenRow
    version: int
    status: str  # "ok" | "needs_login"
    status_message: str | None
    created_at: float
    updated_at: float

    def __repr__(self) -> str:
        return (
            f"AccountRow(name={self.name!r}, provider={self.provider!r}, "
            f"version={self.version}, status={self.status!r}, tokens={self.tokens!r})"
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RefreshMetrics:
    """Persisted refresh counters for one account."""

    jit_refreshes: int
    background_refreshes: int
    failures: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    last_refresh_at: float | None
    last_failure_at: float | None
    last_error: str | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RefreshIntent:
    """A refresh about to spend an account's refresh token (see :meth:`Store.begin_refresh`).

    ``fingerprint`` is a SHA-256 prefix of that refresh token, never the token.
    """

    account: str
    owner: str  # host:pid
    fingerprint: str
    version: int
    started_at: float
    expires_at: float


class RefreshLock(abc.ABC):
    """A lock shared by every process (and, on PostgreSQL, every machine).

    Used as the "never twice at once" guard of DESIGN.md. It is not reentrant,
    may be released from another thread than the one that took it, and is
    only an optimisation for tokens: the truth is the compare-and-swap write.
    """

    @abc.abstractmethod
    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; wait at most ``timeout`` seconds (None: forever, 0: try once).

        Returns False when it could not be taken in time.
        """

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock back. Releasing a lock not held is an error."""

    def __enter__(self) -> RefreshLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Store(WorkStore, LibraryStore, NotifyStore, abc.ABC):
    """Everything stayfresh keeps, behind one narrow interface.

    Implementations are safe to share between threads, and several processes
    may open the same database at once.
    """

    #: a short human label: the file path or the server's address (no password)
    location: str

    # -- accounts and tokens -------------------------------------------------

    @abc.abstractmethod
    def create_account(
        self, name: str, provider: str, config: Mapping[str, Any], tokens: TokenRow
    ) -> AccountRow:
        """Store a new account at version 1; raise :class:`AccountExists` if taken."""

    @abc.abstractmethod
    def get_account(self, name: str) -> AccountRow | None:
        """The account as committed now, or None. Always reads the database."""

    @abc.abstractmethod
    def list_accounts(self) -> list[AccountRow]:
        """All accounts, ordered by name."""

    @abc.abstractmethod
    def delete_account(self, name: str) -> bool:
        """Remove the account and its metrics; False when it did not exist."""

    @abc.abstractmethod
    def clear_secrets(
        self, name: str, *, config_keys: Collection[str], message: str | None = None
    ) -> bool:
        """Forget the account's tokens and the ``config_keys`` of its configuration.

        For logout: the row stays (other tables may refer to it) with no
        access or refresh token, status ``needs_login`` and ``message``, and
        its version bumped so that no in-flight refresh can write old tokens
        back. The old values must not survive in the database files
        (overwritten, not merely unlinked). False when there is no such account.
        """

    @abc.abstractmethod
    def update_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Replace the provider configuration (no token change, no version bump)."""

    @abc.abstractmethod
    def swap_tokens(
        self, name: str, expected_version: int, tokens: TokenRow, *, mark_ok: bool = True
    ) -> int | None:
        """Write ``tokens`` only if the stored version is still ``expected_version``.

        Returns the new version, or None when another writer got there first
        (the stored row is then left as it is). The write is durable when this
        returns. With ``mark_ok`` the account's status becomes ``ok``. Either
        way the account's refresh intent ends, and the room it reserved is
        given back just before this commit (it is what lets it succeed on a
        full disk).
        """

    @abc.abstractmethod
    def set_status(self, name: str, status: str, message: str | None = None) -> None:
        """Set the account's status (``ok`` or ``needs_login``) and its message."""

    @abc.abstractmethod
    def record_refresh(
        self,
        name: str,
        *,
        kind: RefreshKind,
        ok: bool,
        at: float,
        latency_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        """Count one refresh attempt in the account's persisted metrics.

        A failure (``ok=False``) also ends the account's refresh intent.
        """

    @abc.abstractmethod
    def begin_refresh(
        self, name: str, version: int, *, now: float | None = None, lease: float = INTENT_LEASE
    ) -> RefreshIntent | None:
        """Durably record that this process is about to spend ``name``'s refresh token.

        Called (holding :meth:`refresh_lock`) right before the refresh request
        is sent; committed when it returns. A database that cannot take this
        write (disk full, busy) raises here, before the provider can rotate
        the refresh token, so no login is lost to a commit that cannot
        happen. It also sets aside room for the commit that ends it
        (:meth:`swap_tokens`, or :meth:`record_refresh` with ``ok=False``).
        Replaces any earlier intent of the account; None when the account
        does not exist. The intent expires ``lease`` seconds after ``now``.
        """

    @abc.abstractmethod
    def refresh_intent(self, name: str) -> RefreshIntent | None:
        """The account's unfinished refresh intent, or None (expired ones included)."""

    @abc.abstractmethod
    def refresh_metrics(self, name: str) -> RefreshMetrics:
        """The account's counters and latency figures (recent refreshes only)."""

    @abc.abstractmethod
    def refresh_lock(self, name: str) -> RefreshLock:
        """The cross-process lock for refreshing account ``name``."""

    # -- small key/value settings --------------------------------------------

    @abc.abstractmethod
    def get_setting(self, key: str) -> str | None:
        """A stored setting, or None."""

    @abc.abstractmethod
    def set_setting(self, key: str, value: str | None) -> None:
        """Store (or, with None, delete) a setting."""

    # -- lifecycle -------------------------------------------------------------

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections held by this process."""
