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
