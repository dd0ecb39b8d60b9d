"""The device authorization grant (RFC 8628): log in on a machine without a browser.

The user approves on another device; this side polls the token endpoint at the
server's ``interval``, slowing down when told. It shares the preparation,
exchange and storing steps with the browser login in ``_login.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError, ProviderError, TransientError
from ..store import Store
from ._login import (
    NewAccount,
    _check_url,
    _exchange,
    _http_client,
    _prepare,
    _scope,
    _send,
    _store,
    _Target,
)
from ._model import Account, TokenSet
from ._providers import client_auth
from ._scrub import Scrubber

if TYPE_CHECKING:  # the HTTP client loads when a login talks to a server
    import httpx2

    from .._http import Answer

log = logging.getLogger(__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DevicePrompt:
    """What the user needs to approve a device login on another device."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


def login_device(
    store: Store,
    name: str,
    *,
    new_account: NewAccount | None = None,
    scope: str | None = None,
    timeout: float = 300.0,
    on_prompt: Callable[[DevicePrompt], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    http_timeout: float = 10.0,
    client: httpx2.Client | None = None,
) -> Account:
    """Log in with the device authorization grant; returns the stored account.

    ``on_prompt`` shows the user where to go and which code to enter. Polling
    honours ``interval`` and ``slow_down`` (+5 s), and gives up after
    ``timeout`` seconds or when the code expires. ``sleep`` and ``clock`` are
    injectable so tests need not wait.
    """
    with _http_client(client, http_timeout) as http:
        target = _prepare(store, name, new_account, http)
        endpoint = target.config.get("device_authorization_endpoint")
        if not endpoint:
            raise ConfigError(
                f"account {name!r} has no device authorization endpoint "
                "(the provider must support RFC 8628; oidc issuers advertise it)"
            )
        endpoint = _check_url(str(endpoint), "the device authorization endpoint")
        fields, headers = client_auth(target.config)
        form = dict(fields)
        chosen = _scope(target, scope)
        if chosen:
            form["scope"] = chosen
        response, _, _ = _send(http, "POST", endpoint, data=form, headers=headers)
        with Scrubber.for_request(form, headers, target.config).guard():
            prompt, device_code = _read_device_answer(response)
        if on_prompt is not None:
            on_prompt(prompt)
        tokens = _poll(target, http, device_code, prompt, timeout, sleep, clock)
        return _store(store, name, target, tokens)


def _read_device_answer(response: Answer) -> tuple[DevicePrompt, str]:
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        error = ""
        if isinstance(data, dict):
            error = str(data.get("error_description") or data.get("error") or "")
        raise ProviderError(
            f"device authorization answered {response.status_code}: {error or 'no details'}",
            status=response.status_code,
        )
    device_code, user_code = data.get("device_code"), data.get("user_code")
    uri = data.get("verification_uri") or data.get("verification_url")  # Google's spelling
    if not all(isinstance(x, str) and x for x in (device_code, user_code, uri)):
        raise ProviderError("device authorization answer lacks device_code/user_code/uri")
    complete = data.get("verification_uri_complete")
    prompt = DevicePrompt(
        user_code=str(user_code),
        verification_uri=str(uri),
        verification_uri_complete=complete if isinstance(complete, str) else None,
        expires_in=_positive(data.get("expires_in"), 600.0),
        interval=_positive(data.get("interval"), 5.0),
    )
    return prompt, str(device_code)


def _positive(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def _poll(
    target: _Target,
    http: httpx2.Client,
    device_code: str,
    prompt: DevicePrompt,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> TokenSet:
    deadline = clock() + min(timeout, prompt.expires_in)
    interval = prompt.interval
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
    while True:
        if clock() + interval > deadline:
            raise ProviderError("the device login was not approved in time; run login again")
        sleep(interval)
        try:
            return _exchange(target, http, form)
        except TransientError as exc:
            interval *= 2  # RFC 8628 §3.5: back off on connection trouble
            log.warning("device login poll failed (%s); retrying in %.0f s", exc, interval)
        except ProviderError as exc:
            if exc.error == "authorization_pending":
                log.debug("device login: authorization pending")
            elif exc.error == "slow_down":
                interval += 5
                log.debug("device login: slowing down to every %.0f s", interval)
            elif exc.error == "expired_token":
                raise ProviderError(
                    "the device code expired before the login was approved; run login again",
                    error=exc.error,
                ) from None
            elif exc.error == "access_denied":
                raise ProviderError("the login was denied on the device", error=exc.error) from None
            else:
                raise
