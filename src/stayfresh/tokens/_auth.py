"""HTTP client integrations: put a valid token on every request, retry once on 401.

The decision is written once, in :meth:`_AuthCore.steps` — a generator in the
spirit of httpx's ``auth_flow`` that asks for a token, asks for the request to
be sent with it, and, if the answer is 401, asks for a forced refresh and one
resend. The drivers for httpx2 (sync and async), legacy ``httpx`` and
``requests`` only perform those steps.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx2

from ._keeper import DEFAULT_THRESHOLD, Keeper, default_keeper
from ._model import TokenResult
from ._providers import get_provider

if TYPE_CHECKING:
    import requests

#: what a step asks of its driver
ENSURE = "ensure"  # a token, refreshed if stale
FORCE = "force"  # a token refreshed now (the server said 401)

Step = str | TokenResult  # ENSURE/FORCE, or "send the request with these tokens"


class _AuthCore:
    """State shared by every driver: which account, which keeper, which threshold."""

    def __init__(
        self,
        account: str,
        *,
        keeper: Keeper | None = None,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
    ) -> None:
        self.account = account
        self.threshold = threshold
        self._keeper = keeper
        self._last: TokenResult | None = None
        self._last_headers: dict[str, str] = {}

    @property
    def keeper(self) -> Keeper:
        if self._keeper is None:
            self._keeper = default_keeper()
        return self._keeper

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account!r})"

    @staticmethod
    def steps() -> Generator[Step, Any, None]:
        """The decision: token, send, and on 401 one forced refresh and one resend."""
        tokens = yield ENSURE
        status = yield tokens
        if status == 401:
            tokens = yield FORCE
            yield tokens

    def headers_for(self, result: TokenResult) -> dict[str, str]:
        """The provider's auth headers for ``result`` (cached while the token is the same)."""
        if result.tokens is not (self._last.tokens if self._last else None):
            account = self.keeper.store.get_account(self.account)
            provider = get_provider(account.provider if account else "oauth2")
            self._last_headers = provider.auth_headers(result.tokens)
            self._last = result
        return self._last_headers

    def ensure(self, step: Step) -> TokenResult:
        return self.keeper.ensure_valid_token(self.account, self.threshold, force=step == FORCE)

    async def aensure(self, step: Step) -> TokenResult:
        return await self.keeper.aensure_valid_token(
            self.account, self.threshold, force=step == FORCE
        )


class _HttpxDriver(_AuthCore):
    """``sync_auth_flow``/``async_auth_flow`` for any httpx-compatible client."""

    requires_request_body = True  # the body must be replayable for the 401 resend
    requires_response_body = False

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        steps = self.steps()
        step = next(steps)
        while True:
            if isinstance(step, TokenResult):
                request.headers.update(self.headers_for(step))
                response = yield request
                reply: Any = response.status_code
            else:
                reply = self.ensure(step)
            try:
                step = steps.send(reply)
            except StopIteration:
                return

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        steps = self.steps()
        step = next(steps)
        while True:
            if isinstance(step, TokenResult):
                request.headers.update(self.headers_for(step))
                response = yield request
                reply: Any = response.status_code
            else:
                reply = await self.aensure(step)
            try:
                step = steps.send(reply)
            except StopIteration:
                return


class StayfreshAuth(_HttpxDriver, httpx2.Auth):
    """``httpx2.Client(auth=StayfreshAuth("work"))``: a valid token on every request."""


@functools.cache
def _legacy_class() -> type:
    import httpx  # not a dependency: only for applications still on httpx

    return type("LegacyHttpxAuth", (_HttpxDriver, httpx.Auth), {"__doc__": StayfreshAuth.__doc__})


def legacy_httpx_auth(
    account: str,
    *,
    keeper: Keeper | None = None,
    threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
) -> Any:
    """The same auth for clients of the legacy ``httpx`` package (same Auth protocol)."""
    return _legacy_class()(account, keeper=keeper, threshold=threshold)


class StayfreshRequestsAuth(_AuthCore):
    """``requests.get(url, auth=StayfreshRequestsAuth("work"))``.

    Sets the header before sending; a response hook performs the 401 step by
    re-sending a copy of the request on the same connection adapter (as
    requests' own digest auth does).
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        steps = self.steps()
        step = next(steps)
        while not isinstance(step, TokenResult):
            step = steps.send(self.ensure(step))
        request.headers.update(self.headers_for(step))
        request.register_hook("response", functools.partial(self._on_response, steps))  # type: ignore[no-untyped-call]
        return request

    def _on_response(
        self, steps: Generator[Step, Any, None], response: requests.Response, **kwargs: Any
    ) -> requests.Response:
        reply: Any = response.status_code
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return response
            if not isinstance(step, TokenResult):
                reply = self.ensure(step)
                continue
            # resend: drain the old response, copy the request, put the new token on it
            response.content  # noqa: B018
            response.close()
            retry = response.request.copy()
            retry.headers.update(self.headers_for(step))
            retry.hooks = {"response": []}
            new = response.connection.send(retry, **kwargs)
            new.history.append(response)
            new.request = retry
            response = new
            reply = new.status_code
