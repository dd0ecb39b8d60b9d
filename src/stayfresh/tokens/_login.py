"""Interactive logins that give an oauth2/oidc account its first (or a new) refresh token.

Two flows, both ending in :func:`replace_tokens` (or :func:`add_account` for a
new account), so an account marked ``needs_login`` is healthy again:

- :func:`login_browser`: authorization code with PKCE (S256) on a loopback
  redirect (RFC 8252): a one-shot HTTP server on ``127.0.0.1`` receives the
  code, so no secret ever passes through the terminal or argv.
- :func:`~._login_device.login_device` (in its own module): the device
  authorization grant (RFC 8628) for machines without a browser.

The token response is read by the account's provider (``parse_response``), so
expiry handling and error classification are the keeper's own.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from ..errors import ConfigError, ProviderError, ReauthRequired
from ..store import Store
from ._accounts import add_account, check_name, replace_tokens
from ._model import Account, TokenSet, secret_prefix
from ._providers import OAuth2Provider, check_endpoint, client_auth, get_provider
from ._scrub import Scrubber

if TYPE_CHECKING:  # the HTTP client loads when a login talks to a server, not with the module
    import httpx2

    from .._http import Answer
    from ._login_callback import CallbackServer

log = logging.getLogger(__name__)

UTC = dt.UTC

#: what an oidc login asks for when the account has no scope of its own
DEFAULT_OIDC_SCOPE = "openid offline_access"
#: set to 1 to never open a browser (CI, SSH sessions, tests)
NO_BROWSER_ENV = "STAYFRESH_NO_BROWSER"
CALLBACK_PATH = "/callback"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewAccount:
    """The account to create when a login for an unknown name succeeds."""

    provider: str
    config: Mapping[str, Any]

    def __repr__(self) -> str:  # the config may hold a client secret
        return f"NewAccount(provider={self.provider!r}, config_keys={sorted(self.config)!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    provider: OAuth2Provider
    provider_name: str
    config: dict[str, Any]
    exists: bool


# -- shared steps -----------------------------------------------------------------------


def _check_url(url: str, what: str) -> str:
    try:
        return check_endpoint(url)
    except (ConfigError, ValueError):
        raise ConfigError(f"{what} must be an https URL (http only on loopback): {url!r}") from None


def _send(
    client: httpx2.Client,
    method: str,
    url: str,
    *,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Answer, dt.datetime, dt.datetime]:
    """One request under the HTTP policy: the client's timeout as a total deadline,
    1 MiB at most, no redirect followed (a 3xx is reported by the caller as an
    answer it cannot use). Transport trouble becomes TransientError naming the host."""
    sent = dt.datetime.now(UTC)
    from .. import _http

    answer = _http.fetch(
        client, method, url, data=data, headers=headers, timeout=_http.client_timeout(client),
        max_bytes=_http.TOKEN_MAX_BYTES, redirects=_http.Redirects.REFUSE,
    )  # fmt: skip
    return answer, sent, dt.datetime.now(UTC)


def _prepare(
    store: Store, name: str, new_account: NewAccount | None, client: httpx2.Client
) -> _Target:
    """The provider and configuration to log in with, discovered when needed."""
    check_name(name)
    row = store.get_account(name)
    if row is not None:
        if new_account is not None:
            raise ConfigError(
                f"account {name!r} already exists; log in without provider options "
                "(or remove the account first)"
            )
        provider_name, config = row.provider, dict(row.config)
    elif new_account is None:
        raise ConfigError(
            f"no account named {name!r}; give --provider and its options to create it at login"
        )
    else:
        provider_name = new_account.provider
        try:
            config = get_provider(provider_name).normalize_config(new_account.config)
        except ValueError as exc:
            raise ConfigError(f"invalid account configuration: {exc}") from None
    provider = get_provider(provider_name)
    if not isinstance(provider, OAuth2Provider):
        raise ConfigError(
            f"`login` works for oauth2/oidc accounts; {provider_name!r} accounts get their "
            "tokens with `stayfresh account import`"
        )
    target = _Target(provider, provider_name, config, row is not None)
    if config.get("issuer") and not (
        config.get("authorization_endpoint") and config.get("device_authorization_endpoint")
    ):
        _discover(store, name, target, client)
    return target


def _discover(store: Store, name: str, target: _Target, client: httpx2.Client) -> None:
    """Complete the config from the issuer's discovery document (kept in the store)."""
    url = str(target.config["issuer"]).rstrip("/") + "/.well-known/openid-configuration"
    response, _, _ = _send(client, "GET", url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        from .._http import show_url

        raise ProviderError(f"OIDC discovery at {show_url(url)} answered {response.status_code}")
    try:
        document = json.loads(response.content)
    except ValueError:
        document = None
    explicit_token_url = target.config.get("token_url")
    updated = target.provider.apply_discovery(target.config, document)
    if explicit_token_url:  # an explicit --token-url (proxy, test server) wins
        updated["token_url"] = explicit_token_url
    target.config.clear()
    target.config.update(updated)
    if target.exists:
        store.update_config(name, target.config)


def _exchange(target: _Target, client: httpx2.Client, form: Mapping[str, str]) -> TokenSet:
    """POST a grant to the token endpoint and read the answer with the provider."""
    fields, headers = client_auth(target.config)
    url = target.provider.token_url(target.config)
    response, sent, received = _send(client, "POST", url, data={**form, **fields}, headers=headers)
    try:
        with Scrubber.for_request({**form, **fields}, headers, target.config).guard():
            tokens = target.provider.parse_response(
                response.status_code,
                response.lower_headers(),
                response.content,
                sent_at=sent,
                received_at=received,
                previous=TokenSet(access_token=None, expires_at=None),
            )
    except ReauthRequired as exc:  # invalid_grant here means the code, not a refresh token
        raise ProviderError(
            f"the token endpoint rejected the login: {exc}", error="invalid_grant"
        ) from None
    if not tokens.refresh_token:
        raise ProviderError(
            "the provider issued no refresh token; request the offline_access scope "
            "(--scope) or allow the refresh_token grant for this client"
        )
    return tokens


def _store(store: Store, name: str, target: _Target, tokens: TokenSet) -> Account:
    if target.exists:
        account = replace_tokens(store, name, tokens)
    else:
        account = add_account(store, name, target.provider_name, target.config, tokens)
    log.info(
        "%s: logged in; refresh token %s, access token expires %s",
        name,
        secret_prefix(tokens.refresh_token),
        tokens.expires_at.isoformat() if tokens.expires_at else "unknown",
    )
    return account


def _scope(target: _Target, scope: str | None) -> str | None:
    chosen = scope or target.config.get("scope")
    if not chosen and (target.provider_name == "oidc" or target.config.get("issuer")):
        chosen = DEFAULT_OIDC_SCOPE
    return str(chosen) if chosen else None


@contextmanager
def _http_client(client: httpx2.Client | None, timeout: float) -> Iterator[httpx2.Client]:
    if client is not None:
        yield client
        return
    from .._http import new_client

    with new_client(timeout) as own:
        yield own


# -- authorization code + PKCE on a loopback redirect ----------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _browser_disabled() -> bool:
    return os.environ.get(NO_BROWSER_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def login_browser(
    store: Store,
    name: str,
    *,
    new_account: NewAccount | None = None,
    authorize_url: str | None = None,
    scope: str | None = None,
    timeout: float = 300.0,
    open_browser: bool = True,
    on_url: Callable[[str], None] | None = None,
    http_timeout: float = 10.0,
    client: httpx2.Client | None = None,
) -> Account:
    """Log in with the authorization code flow and PKCE; returns the stored account.

    ``on_url`` receives the authorization URL (the CLI prints it; tests drive a
    headless browser with it). The browser is opened unless ``open_browser`` is
    false or ``STAYFRESH_NO_BROWSER=1``. Waits up to ``timeout`` seconds for
    the redirect to ``http://127.0.0.1:<port>/callback``.
    """
    with _http_client(client, http_timeout) as http:
        target = _prepare(store, name, new_account, http)
        if authorize_url:
            target.config["authorization_endpoint"] = _check_url(
                authorize_url, "the authorization URL"
            )
            if target.exists:
                store.update_config(name, target.config)
        endpoint = target.config.get("authorization_endpoint")
        if not endpoint:
            raise ConfigError(
                f"account {name!r} has no authorization endpoint: give --authorize-url "
                "(or use an oidc issuer, or --device)"
            )
        endpoint = _check_url(str(endpoint), "the authorization endpoint")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        from ._login_callback import CallbackServer  # http.server loads for a login only

        server = CallbackServer(state)
        try:
            params = {
                "response_type": "code",
                "client_id": str(target.config["client_id"]),
                "redirect_uri": server.redirect_uri,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            chosen = _scope(target, scope)
            if chosen:
                params["scope"] = chosen
                if "offline_access" in chosen.split():
                    params["prompt"] = "consent"  # OIDC only issues offline access on consent
            joiner = "&" if urlsplit(endpoint).query else "?"
            url = f"{endpoint}{joiner}{urlencode(params)}"
            if on_url is not None:
                on_url(url)
            if open_browser and not _browser_disabled():
                try:
                    webbrowser.open(url)
                except webbrowser.Error as exc:
                    log.info("could not open a browser (%s); open the URL yourself", exc)
            query = _wait_for_callback(server, timeout)
            redirect_uri = server.redirect_uri
        finally:
            server.server_close()
        if "error" in query:
            detail = ": ".join(x for x in (query["error"], query.get("error_description")) if x)
            raise ProviderError(f"the authorization server refused the login ({detail})")
        if not hmac.compare_digest(query.get("state", "").encode(), state.encode()):
            raise ProviderError("the login callback had the wrong state; try again")
        code = query.get("code")
        if not code:
            raise ProviderError("the login callback had no authorization code")
        tokens = _exchange(
            target,
            http,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        return _store(store, name, target, tokens)


def _wait_for_callback(server: CallbackServer, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while server.result is None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(f"no login callback within {timeout:.0f} s; run login again")
        server.timeout = min(left, 0.5)
        server.handle_request()
    return server.result


# -- device authorization grant (RFC 8628) -----------------------------------------------------
