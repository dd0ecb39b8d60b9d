"""What the library sync and the downloader share: an account API client.

Both call an account's API with a token from the keeper, own (or borrow) an
httpx2 client, retry transient failures with capped exponential backoff, and
stop when their worker is cancelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx2

from ..errors import AccountNotFound
from ..tokens import Account, Keeper, get_provider

P = TypeVar("P")

#: attempts per request before the job gives up (the engine's backoff takes over)
ATTEMPTS = 5


class ApiJob(Generic[P]):
    """Base of :class:`~._library.LibrarySync` and :class:`~._download.Downloader`.

    ``sleep`` waits between attempts and may return True to mean "stop" (a
    worker passes ``ctx.wait_cancelled``); tests pass a recorder. ``P`` is the
    progress value given to ``on_progress``.
    """

    def __init__(
        self,
        keeper: Keeper,
        *,
        client: httpx2.Client | None,
        timeout: float,
        sleep: Callable[[float], object],
        clock: Callable[[], float],
        attempts: int,
        backoff: float,
        backoff_cap: float,
        threshold: dt.timedelta | float,
        on_progress: Callable[[P], None] | None,
        cancelled: Callable[[], bool],
    ) -> None:
        self.keeper = keeper
        self.store = keeper.store
        self._client = client
        self._own_client = client is None
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.threshold = threshold
        self.on_progress = on_progress
        self.cancelled = cancelled

    def close(self) -> None:
        """Close the HTTP client if this job made it."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx2.Client:
        if self._client is None:
            self._client = httpx2.Client(timeout=self.timeout, follow_redirects=True)
        return self._client

    def _account(self, name: str) -> Account:
        row = self.store.get_account(name)
        if row is None:
            raise AccountNotFound(f"no account named {name!r}")
        return Account.from_row(row)

    def _auth(self, account: Account, *, force: bool = False) -> dict[str, str]:
        """The provider's auth headers for a token valid for ``threshold`` (or forced new)."""
        tokens = self.keeper.ensure_valid_token(account.name, self.threshold, force=force).tokens
        return get_provider(account.provider).auth_headers(tokens)

    def _delay(self, attempt: int, wait: float | None = None) -> float:
        """Capped exponential backoff before attempt ``attempt + 1``, at least ``wait``."""
        delay = min(self.backoff_cap, self.backoff * 2.0 ** (attempt - 1))
        return max(delay, min(wait or 0.0, self.backoff_cap))

    def _stopped_after(self, delay: float) -> bool:
        """Sleep ``delay``; True when the job was asked to stop meanwhile."""
        return self.sleep(delay) is True or self.cancelled()
