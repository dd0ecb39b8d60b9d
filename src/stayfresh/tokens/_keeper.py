"""The token keeper: ``ensure_valid_token`` for threads, asyncio and processes.

:class:`Keeper` is the common core (:class:`stayfresh.fresh.Fresh`) for the
:class:`~._flow.TokenKind`, with the token vocabulary on top: a threshold
instead of a margin, a :class:`TokenResult`, ``background=True`` for the
safety net's layer. The valid path, single flight, the lock, the re-read
after it, the shared failure and its cooldown, and the telemetry are the
core's — the same code the notification window and users' own kinds run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..fresh import Fresh, Layer, Outcome
from ..store import Store
from ._deadline import DEFAULT_THRESHOLD_SECONDS
from ._flow import TokenKind
from ._model import Account, TokenResult

if TYPE_CHECKING:
    import httpx2

DEFAULT_THRESHOLD = dt.timedelta(seconds=DEFAULT_THRESHOLD_SECONDS)
BACKGROUND_THRESHOLD = dt.timedelta(minutes=5)


def _seconds(value: dt.timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class Keeper(Fresh[Account]):
    """Keeps the tokens of one store's accounts valid. Share one per process.

    ``clock`` returns POSIX seconds (inject a fake one in tests). ``client``
    and ``async_client_factory`` let tests and applications bring their own
    httpx2 clients (proxies, CA bundles); by default every request has a
    ``timeout``-second limit and TLS verification stays on. Closer to expiry
    than ``mandatory_window``, a caller waits for a refresh in progress
    instead of using the current token.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        mandatory_window: dt.timedelta | float = dt.timedelta(minutes=2),
        cooldown: dt.timedelta | float = dt.timedelta(seconds=30),
        lock_timeout: float = 60.0,
        client: httpx2.Client | None = None,
        async_client_factory: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        super().__init__(
            TokenKind(wait_window=_seconds(mandatory_window)),
            store,
            clock=clock,
            timeout=timeout,
            cooldown=cooldown,
            lock_timeout=lock_timeout,
            client=client,
            async_client_factory=async_client_factory,
        )
        self.mandatory_window = _seconds(mandatory_window)

    def ensure_valid_token(
        self,
        account: str,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
        *,
        force: bool = False,
        background: bool = False,
        rejected: str | None = None,
    ) -> TokenResult:
        """The account's tokens, refreshed first if ``now >= expires_at - threshold``.

        ``force`` refreshes now. ``rejected`` is the access token a server just
        refused (401) and implies ``force``, but only while that token is the
        stored one: a burst of 401s for one token makes one refresh, and the
        callers that come after it get its result instead of refreshing again.
        """
        entry = self._cache.get(account)  # the core's valid path, inlined: ~200 ns
        if (
            entry is not None
            and not force
            and rejected is None
            and self.clock() < entry.deadline(self.kind, threshold)
        ):
            result: TokenResult = entry.view
            return result
        layer: Layer = "background" if background else "use"
        outcome = self.ensure(account, threshold, force=force, layer=layer, rejected=rejected)
        return self._result(outcome, force or rejected is not None)

    async def aensure_valid_token(
        self,
        account: str,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
        *,
        force: bool = False,
        background: bool = False,
        rejected: str | None = None,
    ) -> TokenResult:
        """Async twin of :meth:`ensure_valid_token` (same cache, flights and lock)."""
        entry = self._cache.get(account)
        if (
            entry is not None
            and not force
            and rejected is None
            and self.clock() < entry.deadline(self.kind, threshold)
        ):
            result: TokenResult = entry.view
            return result
        layer: Layer = "background" if background else "use"
        outcome = await self.aensure(
            account, threshold, force=force, layer=layer, rejected=rejected
        )
        return self._result(outcome, force or rejected is not None)

    def _result(self, outcome: Outcome[Account], force: bool) -> TokenResult:
        account = self.usable(outcome, force=force)
        return TokenResult(
            account=account.name, tokens=account.tokens, was_refreshed=outcome.changed
        )

    def _view(self, key: str, state: Account) -> TokenResult:
        return TokenResult(account=key, tokens=state.tokens, was_refreshed=False)
