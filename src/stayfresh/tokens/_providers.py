"""Token providers: how to ask for a refresh, and how to read the answer.

Providers are pure: they build a :class:`RefreshRequest` and turn a response
(status, headers, body) into a :class:`TokenSet` or a typed error. The keeper
does the I/O, so the same provider serves the sync and the async driver.
Third-party providers register under the ``stayfresh.providers`` entry point
group (a :class:`Provider` subclass or instance). The built-in ``amazon``
provider (Audible's token exchange) lives in :mod:`stayfresh.audible` and is
loaded by name the first time an account uses it.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import datetime as dt
import email.utils
import importlib
import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from .._retry import parse_retry_after
from ..errors import ConfigError, ProviderError, ReauthRequired, TransientError
from ._expiry import ExpiryParseError, from_expires_in, parse_expiry
from ._model import TokenSet
from ._syntax import (
    B64TOKEN,
    BEARER,
    VSCHAR,
    json_body,
    one_line,
    short_text,
    token_problem,
)

log = logging.getLogger(__name__)

UTC = dt.UTC


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RefreshRequest:
    """One form-encoded POST to a token endpoint."""

    url: str
    data: dict[str, str]
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"RefreshRequest(url={self.url!r}, fields={sorted(self.data)!r})"


def check_endpoint(url: str) -> str:
    """Token endpoints must be https, except on loopback addresses."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return url
        raise ConfigError(f"token endpoint must use https (http only on loopback): {url}")
    raise ConfigError(f"not an http(s) URL: {url!r}")


def _http_date(headers: Mapping[str, str]) -> dt.datetime | None:
    value = headers.get("date")
    if not value:
        return None
    try:
        return _aware(email.utils.parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _aware(when: dt.datetime) -> dt.datetime:
    # RFC 5322's "-0000" parses as naive: it is UTC with no local zone given
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class Provider(abc.ABC):
    """How one kind of authorization server refreshes tokens."""

    name: str = ""
    #: what its access tokens look like (RFC 6750's b64token unless declared otherwise)
    access_token_syntax: re.Pattern[str] = B64TOKEN
    #: what its refresh tokens look like (RFC 6749's VSCHAR: no control characters)
    refresh_token_syntax: re.Pattern[str] = VSCHAR
    #: the ``token_type`` values it issues, lower case; others are refused
    token_types: frozenset[str] = BEARER

    def check_tokens(self, tokens: TokenSet) -> str | None:
        """Why ``tokens`` must be refused (None if they are fine); never quotes a token."""
        return token_problem(
            tokens,
            access_syntax=self.access_token_syntax,
            refresh_syntax=self.refresh_token_syntax,
            token_types=self.token_types,
        )

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validate an account's configuration; raise :class:`ConfigError` when wrong."""
        cfg = dict(config)
        if cfg.get("token_url"):
            check_endpoint(str(cfg["token_url"]))
        return cfg

    def discovery_url(self, config: Mapping[str, Any]) -> str | None:
        """A document to fetch before the first refresh, or None."""
        return None

    def apply_discovery(self, config: Mapping[str, Any], document: Any) -> dict[str, Any]:
        """The configuration completed from the fetched discovery document."""
        return dict(config)

    @abc.abstractmethod
    def token_url(self, config: Mapping[str, Any]) -> str:
        """Where refresh requests go (``config["token_url"]`` overrides the default)."""

    @abc.abstractmethod
    def refresh_request(self, config: Mapping[str, Any], refresh_token: str) -> RefreshRequest:
        """The request that trades ``refresh_token`` for a new access token."""

    def auth_headers(self, tokens: TokenSet) -> dict[str, str]:
        """Headers that carry the access token to the provider's APIs."""
        return {"Authorization": tokens.authorization}

    def parse_response(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        sent_at: dt.datetime,
        received_at: dt.datetime,
        previous: TokenSet,
    ) -> TokenSet:
        """The new token set, or a typed error. Header names are lower case."""
        data = json_body(body)
        if status >= 400 or status < 200:
            raise self.classify_error(status, headers, body, data, received_at)
        if not isinstance(data, dict):
            raise ProviderError(
                f"token endpoint answered {status} without a JSON object: '{short_text(body)}'",
                status=status,
            )
        if "error" in data and "access_token" not in data:
            raise self.classify_error(400, headers, body, data, received_at)
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderError("token response has no access_token", status=status)
        expires_at = self._expiry(data, headers, sent_at, received_at)
        new_refresh = data.get("refresh_token")
        refresh: str | None
        if isinstance(new_refresh, str) and new_refresh:
            refresh = new_refresh
        else:
            refresh = previous.refresh_token
            log.info("provider returned no refresh token; keeping %s", "the old one")
        token_type = data.get("token_type")
        scope = data.get("scope")
        tokens = TokenSet(
            access_token=access,
            expires_at=expires_at,
            refresh_token=refresh,
            token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
            scope=scope if isinstance(scope, str) else previous.scope,
            obtained_at=sent_at,
        )
        problem = self.check_tokens(tokens)
        if problem:
            raise ProviderError(f"token response refused: {problem}", status=status)
        return tokens

    def _expiry(
        self,
        data: Mapping[str, Any],
        headers: Mapping[str, str],
        sent_at: dt.datetime,
        received_at: dt.datetime,
    ) -> dt.datetime | None:
        try:
            if data.get("expires_in") is not None:
                return from_expires_in(data["expires_in"], sent_at)
            for key in ("expires_at", "expires", "expiration", "expiry"):
                if data.get(key) is not None:
                    absolute = parse_expiry(data[key])
                    server_now = _http_date(headers)
                    if server_now is not None:
                        # the server's clock wrote the timestamp: move it onto ours
                        skew = server_now - received_at
                        if abs(skew) > dt.timedelta(seconds=2):
                            log.info(
                                "correcting expiry for %.0f s of clock skew", skew.total_seconds()
                            )
                            absolute -= skew
                    return absolute
        except ExpiryParseError as exc:
            raise ProviderError(f"token response has an unreadable expiry: {exc}") from None
        except OverflowError:  # the Date header moved the expiry out of datetime's range
            raise ProviderError(
                "token response has an expiry out of range after clock-skew correction"
            ) from None
        return None

    def classify_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        data: Any,
        now: dt.datetime,
    ) -> Exception:
        """Map an error response to ReauthRequired, TransientError or ProviderError."""
        error = description = None
        if isinstance(data, dict):
            raw_error = data.get("error")
            error = one_line(raw_error, 100) if isinstance(raw_error, str) else None
            raw_desc = data.get("error_description") or data.get("message")
            description = one_line(raw_desc, 300) if isinstance(raw_desc, str) else None
        message = ": ".join(x for x in (error, description) if x) or short_text(body) or "no body"
        if status == 429 or status >= 500:
            wait = parse_retry_after(headers.get("retry-after"), now)  # capped at a day
            return TransientError(f"token endpoint answered {status}: {message}", retry_after=wait)
        if self.is_reauth(status, error, description):
            return ReauthRequired(f"the refresh token was rejected ({message})")
        return ProviderError(
            f"token endpoint answered {status}: {message}", status=status, error=error
        )

    def is_reauth(self, status: int, error: str | None, description: str | None) -> bool:
        """Does this error mean the refresh token is dead (log in again)?"""
        return error == "invalid_grant"


def client_auth(config: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) that authenticate the client at the token endpoint.

    ``client_secret_basic`` (the default when there is a secret), ``client_secret_post``,
    or ``none`` (a public client: only ``client_id`` in the form).
    """
    headers = {"Accept": "application/json"}
    client_id = str(config["client_id"])
    secret = config.get("client_secret")
    if secret and config.get("auth_method", "client_secret_basic") == "client_secret_basic":
        # RFC 6749 §2.3.1: form-urlencode both parts before base64
        pair = f"{quote(client_id, safe='')}:{quote(str(secret), safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return {}, headers
    fields = {"client_id": client_id}
    if secret:
        fields["client_secret"] = str(secret)
    return fields, headers


class OAuth2Provider(Provider):
    """RFC 6749 §6 refresh_token grant."""

    name = "oauth2"

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = super().normalize_config(config)
        if not cfg.get("client_id"):
            raise ConfigError(f"the {self.name} provider needs a client id")
        method = cfg.setdefault("auth_method", "client_secret_basic")
        if method not in ("client_secret_basic", "client_secret_post", "none"):
            raise ConfigError(f"unknown client auth method {method!r}")
        if self.discovery_url(cfg) is None and not cfg.get("token_url"):
            raise ConfigError(f"the {self.name} provider needs --token-url")
        return cfg

    def token_url(self, config: Mapping[str, Any]) -> str:
        url = config.get("token_url")
        if not url:
            raise ConfigError("no token URL configured")
        return check_endpoint(str(url))

    def refresh_request(self, config: Mapping[str, Any], refresh_token: str) -> RefreshRequest:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if config.get("scope"):
            data["scope"] = str(config["scope"])
        fields, headers = client_auth(config)
        return RefreshRequest(url=self.token_url(config), data={**data, **fields}, headers=headers)


class OIDCProvider(OAuth2Provider):
    """OAuth2 whose token URL comes from ``/.well-known/openid-configuration``."""

    name = "oidc"

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = dict(config)
        if not cfg.get("issuer") and not cfg.get("token_url"):
            raise ConfigError("the oidc provider needs --issuer")
        if cfg.get("issuer"):
            check_endpoint(str(cfg["issuer"]))
        return super().normalize_config(cfg)

    def discovery_url(self, config: Mapping[str, Any]) -> str | None:
        if config.get("token_url") or not config.get("issuer"):
            return None
        return str(config["issuer"]).rstrip("/") + "/.well-known/openid-configuration"

    def apply_discovery(self, config: Mapping[str, Any], document: Any) -> dict[str, Any]:
        if not isinstance(document, dict) or not isinstance(document.get("token_endpoint"), str):
            raise ProviderError("OIDC discovery document has no token_endpoint")
        cfg = dict(config)
        cfg["token_url"] = check_endpoint(document["token_endpoint"])
        for key in ("authorization_endpoint", "device_authorization_endpoint"):
            if isinstance(document.get(key), str):
                cfg[key] = document[key]
        return cfg


_BUILTIN: dict[str, Provider] = {p.name: p for p in (OAuth2Provider(), OIDCProvider())}
#: built-in providers that live outside this module, loaded when an account names them
#: (``amazon`` belongs to the Audible client, which the generic core does not import)
_SHIPPED = {"amazon": "stayfresh.audible:AmazonProvider"}
_registry: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The provider called ``name``: built-in, registered, or from an entry point."""
    if name in _registry:
        return _registry[name]
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name in _SHIPPED:
        module, _, attr = _SHIPPED[name].partition(":")
        loaded = getattr(importlib.import_module(module), attr)
        provider = _BUILTIN[name] = _provider(loaded, _SHIPPED[name])
        return provider
    from importlib.metadata import entry_points  # only for plugins: slow to import

    for ep in entry_points(group="stayfresh.providers"):
        if ep.name == name:
            provider = _registry[name] = _provider(ep.load(), f"entry point {ep.value}")
            return provider
    raise ConfigError(f"unknown provider {name!r}")


def _provider(loaded: object, what: str) -> Provider:
    """A loaded :class:`Provider` subclass (instantiated) or instance."""
    provider = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(provider, Provider):
        raise ConfigError(f"{what} is not a stayfresh Provider")
    return provider


def register_provider(provider: Provider) -> None:
    """Make a provider available by its name (for code that embeds stayfresh)."""
    _registry[provider.name] = provider


def provider_names() -> list[str]:
    from importlib.metadata import entry_points  # as in get_provider

    names = set(_BUILTIN) | set(_SHIPPED) | set(_registry)
    names.update(ep.name for ep in entry_points(group="stayfresh.providers"))
    return sorted(names)
