"""What the library sync and the downloader share: an account API client.

Both call an account's API with a token from the keeper, own (or borrow) an
httpx2 client, send every request through the HTTP policy (:mod:`stayfresh._http`:
total deadline, size cap, credentials kept to their origin), retry transient
failures with the project's one backoff function, and stop when their worker
is cancelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx2

from .._http import API_MAX_BYTES, Answer, fetch, new_client
from .._retry import backoff_delay
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
        self._sent: str | None = None  # the access token of the last request

    def close(self) -> None:
        """Close the HTTP client if this job made it."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx2.Client:
        if self._client is None:
            self._client = new_client(self.timeout)
        return self._client

    def call(
        self,
        method: str,
        url: str | httpx2.URL,
        *,
        headers: dict[str, str],
        credentials: dict[str, str],
        json: Any = None,
    ) -> Answer:
        """One API request: ``timeout`` as a total deadline, at most ``API_MAX_BYTES``,
        redirects only within the origin (the token never leaves it)."""
        return fetch(
            self._http(), method, url, headers=headers, credentials=credentials, json=json,
            timeout=self.timeout, max_bytes=API_MAX_BYTES,
        )  # fmt: skip

    def _account(self, name: str) -> Account:
        row = self.store.get_account(name)
        if row is None:
            raise AccountNotFound(f"no account named {name!r}")
        return Account.from_row(row)

    def auth_headers(self, account: Account) -> dict[str, str]:
        """The provider's auth headers for a token valid for ``threshold``.

        The access token sent is remembered, so that a 401 can name it
        (:meth:`rejected`)."""
        tokens = self.keeper.ensure_valid_token(account.name, self.threshold).tokens
        self._sent = tokens.access_token
        return get_provider(account.provider).auth_headers(tokens)

    def rejected(self, account: Account) -> None:
        """The API answered 401 to the token last sent: refresh, once for everyone.

        The keeper refreshes only if that token is still the stored one, and
        otherwise joins the refresh in flight — so a burst of 401s from several
        jobs, threads or processes costs the provider one refresh."""
        if self._sent is None:  # nothing was sent yet: a plain forced refresh
            self.keeper.ensure_valid_token(account.name, self.threshold, force=True)
        else:
            self.keeper.ensure_valid_token(account.name, self.threshold, rejected=self._sent)

    def _delay(self, attempt: int, wait: float | None = None) -> float:
        """Capped exponential backoff before attempt ``attempt + 1``, at least ``wait``."""
        return backoff_delay(
            attempt, initial=self.backoff, floor=0.0, cap=self.backoff_cap, at_least=wait
        )

    def _stopped_after(self, delay: float) -> bool:
        """Sleep ``delay``; True when the job was asked to stop meanwhile."""
        return self.sleep(delay) is True or self.cancelled()
