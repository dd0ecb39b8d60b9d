"""The typed error hierarchy every part raises, and the CLI's exit codes."""

from __future__ import annotations


class StayfreshError(Exception):
    """Base of every error stayfresh raises on purpose. Exit code 1."""

    exit_code = 1


class ConfigError(StayfreshError):
    """Bad configuration or input given by the user. Exit code 2."""

    exit_code = 2


class AccountNotFound(StayfreshError):
    """No account of that name in the store."""


class TokenError(StayfreshError):
    """A token could not be made fresh. The stored tokens are unchanged."""


class ReauthRequired(TokenError):
    """The refresh token is no longer accepted: the user must log in again. Exit 3.

    Never retried; the account is marked ``needs_login``.
    """

    exit_code = 3

    def __init__(self, message: str, *, account: str | None = None) -> None:
        super().__init__(message)
        self.account = account

    @property
    def hint(self) -> str:
        """What the user must do, naming the account when it is known."""
        return login_hint(self.account) if self.account else "sign in again with `stayfresh login`"


def login_hint(name: str) -> str:
    """The words every "log in again" message uses (CLI, history, notification sinks)."""
    return f"run `stayfresh login {name}` to sign in again"


class TransientError(TokenError):
    """Network trouble, a timeout, a 5xx or a 429: worth retrying later. Exit 4."""

    exit_code = 4

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(TokenError):
    """The provider refused the refresh for another reason; carries its message."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.error = error


class UnsafeRedirect(ProviderError):
    """A server redirected a request where its credentials must not follow.

    Another origin (scheme, host or port), https to http, or too many hops.
    Refused, never retried: the server is misconfigured or hostile.
    """


class ResponseTooLarge(ProviderError):
    """An answer was bigger than its cap or than the size announced for it.

    Nothing from it was stored; not retried (the same server sends the same).
    """


class StoreError(StayfreshError):
    """The database failed an operation (the CLI prints it as one line, exit 1)."""


class DatabaseRefused(StoreError, ConfigError):
    """The file or database is not one this stayfresh can use. Exit code 2.

    Not SQLite, corrupt or truncated, another program's database, or a schema
    newer than this version knows. Raised before anything is written (and
    before any ``chmod``): the file is left exactly as it was, so the fix is
    the user's to choose (another ``--db``, a backup, an upgrade).
    """

    exit_code = 2


class SchemaTooNew(DatabaseRefused):
    """The database was migrated by a newer stayfresh; this one must not write to it."""

    def __init__(self, message: str, *, found: int, known: int) -> None:
        super().__init__(message)
        self.found = found
        self.known = known


class StoreUnavailable(StoreError, TransientError):
    """The database cannot do this now but may later: retried like network trouble. Exit 4."""

    exit_code = 4


class StoreBusy(StoreUnavailable):
    """Another writer held the database lock longer than the busy timeout."""


class StoreFull(StoreUnavailable):
    """The disk holding the database is full; nothing was written."""
