"""HTTP client integrations: put a valid token on every request, retry once on 401.

Before a request every driver asks the keeper for a valid token. What to do
with the response is written once, in :meth:`_AuthCore.after_response` — a
generator in the spirit of httpx's ``auth_flow`` that, on a 401, asks for a
forced refresh and for one resend. The forced refresh names the token the
server refused, so a burst of 401s (threads, tasks, processes) makes one
refresh. The drivers for httpx2 (sync and async), legacy ``httpx`` and
``requests`` only perform those steps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx2

from ._default import default_keeper
from ._keeper import DEFAULT_THRESHOLD, Keeper
from ._model import TokenResult, TokenSet
from ._providers import get_provider

if TYPE_CHECKING:
    import requests

#: what a step asks of its driver
ENSURE = "ensure"  # a token, refreshed if stale


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """A step: a token newer than ``access_token``, which the server refused (401)."""

    access_token: str | None

    def __repr__(self) -> str:
        return "Rejected(…)"


Step = str | Rejected | TokenResult  # ENSURE, Rejected, or "send the request with these tokens"


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
        # (tokens, their headers) as one value: threads sharing this auth see a matching pair
        self._headers: tuple[TokenSet, dict[str, str]] | None = None

    @property
    def keeper(self) -> Keeper:
        if self._keeper is None:
            self._keeper = default_keeper()
        return self._keeper

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account!r})"

    @staticmethod
    def after_response(status: int, sent: TokenResult) -> Generator[Step, Any, None]:
        """The decision once a response is in: on 401, one forced refresh and one resend.

        The refresh names the token that was refused (``sent``): if another
        caller has replaced it meanwhile, the keeper hands over the new one.
        (Before sending, every driver simply asks the keeper for a valid token.)
        """
        if status == 401:
            tokens = yield Rejected(sent.tokens.access_token)
            yield tokens

    def headers_for(self, result: TokenResult) -> dict[str, str]:
        """The provider's auth headers for ``result`` (cached while the token is the same)."""
        cached = self._headers
        if cached is not None and cached[0] is result.tokens:
            return cached[1]
        account = self.keeper.store.get_account(self.account)
        provider = get_provider(account.provider if account else "oauth2")
        headers = provider.auth_headers(result.tokens)
        self._headers = (result.tokens, headers)
        return headers

    def apply(self, request: Any, result: TokenResult) -> None:
        """Put the token's headers on ``request`` (item by item: cheaper than update)."""
        headers = request.headers
        for key, value in self.headers_for(result).items():
            headers[key] = value

    def ensure(self, step: Step) -> TokenResult:
        rejected = step.access_token if isinstance(step, Rejected) else None
        return self.keeper.ensure_valid_token(
            self.account, self.threshold, force=isinstance(step, Rejected), rejected=rejected
        )

    async def aensure(self, step: Step) -> TokenResult:
        rejected = step.access_token if isinstance(step, Rejected) else None
        return await self.keeper.aensure_valid_token(
            self.account, self.threshold, force=isinstance(step, Rejected), rejected=rejected
        )


class _HttpxDriver(_AuthCore):
    """``sync_auth_flow``/``async_auth_flow`` for any httpx-compatible client."""

    requires_request_body = True  # the body must be replayable for the 401 resend
    requires_response_body = False

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        sent = self.ensure(ENSURE)
        self.apply(request, sent)
        response = yield request
        steps = self.after_response(response.status_code, sent)
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return
            if isinstance(step, TokenResult):
                self.apply(request, step)
                response = yield request
                reply = response.status_code
            else:
                reply = self.ensure(step)

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        sent = await self.aensure(ENSURE)
        self.apply(request, sent)
        response = yield request
        steps = self.after_response(response.status_code, sent)
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return
            if isinstance(step, TokenResult):
                self.apply(request, step)
                response = yield request
                reply = response.status_code
            else:
                reply = await self.aensure(step)


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
        sent = self.ensure(ENSURE)
        self.apply(request, sent)
        request.hooks["response"].append(functools.partial(self._on_response, sent))
        return request

    def _on_response(
        self, sent: TokenResult, response: requests.Response, **kwargs: Any
    ) -> requests.Response:
        steps = self.after_response(response.status_code, sent)
        reply: Any = None
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
            self.apply(retry, step)
            retry.hooks = {"response": []}
            new = response.connection.send(retry, **kwargs)
            new.history.append(response)
            new.request = retry
            response = new
            reply = new.status_code
