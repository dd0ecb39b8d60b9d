"""``account import``: accounts from our JSON file or from the ``audible`` package's auth files.

Accepted inputs (detected from the content, not the file name):

- stayfresh account JSON::

    {"provider": "amazon", "locale": "us", "device_serial": "…",
     "refresh_token": "Atnr|…",
     "access_token": {"token": "Atna|…", "expires_at": "2026-11-24T06:19:38Z"}}

  ``provider`` is ``amazon`` (the default when ``locale`` or ``device_serial``
  is present), ``oauth2`` or ``oidc`` (the default when ``issuer`` is
  present); optional ``token_url``, ``client_id``, ``client_secret``,
  ``auth_method``, ``issuer``, ``scope``, ``token_host`` (amazon: ``amazon``
  or ``audible``). ``expires_at`` takes every format :func:`parse_expiry`
  reads.
- auth files written by the ``audible`` package / audible-cli, plain JSON or
  encrypted with a password: recognised here by keys only they have, and read
  by :func:`stayfresh.audible.read_auth_file` (loaded only for them).

Every malformed input raises :class:`ConfigError`, never another exception.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..store import Store
from ._accounts import add_account, check_name, replace_tokens
from ._expiry import ExpiryParseError, parse_expiry
from ._model import Account, TokenSet, secret_prefix
from ._providers import get_provider

log = logging.getLogger(__name__)

#: the string fields of our account JSON besides the tokens
_CONFIG_FIELDS = (
    "locale", "device_serial", "token_url", "client_id", "client_secret",
    "auth_method", "issuer", "scope", "token_host",
)  # fmt: skip
#: keys only the audible package's auth files have (``ciphertext``: an encrypted one);
#: such a file is read by the Audible client, which our own JSON never loads
_AUDIBLE_MARKERS = (
    "ciphertext",
    "adp_token",
    "locale_code",
    "device_info",
    "website_cookies",
    "device_private_key",
)
#: reads an audible auth file (plain or encrypted) given its bytes and password
_AUDIBLE_READER = "stayfresh.audible:read_auth_file"
MAX_IMPORT_FILE = 5 * 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ImportedAccount:
    """An account read from a file, not yet stored. ``repr`` shows no secret."""

    provider: str
    config: dict[str, Any]
    tokens: TokenSet
    #: ``stayfresh``, ``audible``, ``audible (encrypted, json)`` or ``… bytes)``
    source: str

    def __repr__(self) -> str:
        return (
            f"ImportedAccount(provider={self.provider!r}, source={self.source!r}, "
            f"config_keys={sorted(self.config)!r}, tokens={self.tokens!r})"
        )


# -- parsing ------------------------------------------------------------------------------


def text_field(data: Mapping[str, Any], key: str, *, where: str = "") -> str | None:
    """A string field of an account file, stripped (None when absent or blank)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}{key} must be a string, not {type(value).__name__}")
    return value.strip() or None


def expiry_field(value: object, what: str) -> dt.datetime:
    """An expiry of an account file in any format :func:`parse_expiry` reads."""
    try:
        return parse_expiry(value)
    except ExpiryParseError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def normalized_config(provider: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` checked by its provider; every problem is a :class:`ConfigError`."""
    try:
        return get_provider(provider).normalize_config(config)
    except ValueError as exc:  # e.g. urlsplit on a malformed URL
        raise ConfigError(f"invalid account configuration: {exc}") from None


def parse_account_json(data: object) -> ImportedAccount:
    """Our documented account JSON (already decoded) → :class:`ImportedAccount`."""
    if not isinstance(data, dict):
        raise ConfigError("an account file must hold a JSON object")
    config = {k: v for k in _CONFIG_FIELDS if (v := text_field(data, k)) is not None}
    provider = text_field(data, "provider")
    if provider is None:
        if "locale" in config or "device_serial" in config:
            provider = "amazon"
        elif "issuer" in config:
            provider = "oidc"
        else:
            raise ConfigError('say which provider: "provider": "amazon", "oauth2" or "oidc"')
    refresh = text_field(data, "refresh_token")
    if refresh is None:
        raise ConfigError("the account file has no refresh_token")
    access, expires_at = _access_token(data)
    tokens = TokenSet(
        access_token=access,
        expires_at=expires_at,
        refresh_token=refresh,
        scope=config.get("scope"),
    )
    return ImportedAccount(
        provider=provider,
        config=normalized_config(provider, config),
        tokens=tokens,
        source="stayfresh",
    )


def _access_token(data: Mapping[str, Any]) -> tuple[str | None, dt.datetime | None]:
    raw = data.get("access_token")
    if raw is None:
        return None, None
    if isinstance(raw, dict):
        token = text_field(raw, "token", where="access_token.")
        when = raw.get("expires_at")
    elif isinstance(raw, str):  # also accepted: a bare string with a top-level expires_at
        token = raw.strip() or None
        when = data.get("expires_at")
    else:
        raise ConfigError('access_token must be {"token": …, "expires_at": …}')
    if token is None:
        return None, None
    if when is None:
        # an expiry we don't know would keep the token forever: drop it, the first use refreshes
        log.info("access token without expires_at ignored; the first use will refresh")
        return None, None
    return token, expiry_field(when, "access_token.expires_at")


def load_account_document(raw: bytes, *, password: str | None) -> Any:
    """An account file's JSON document, bounded; its bytes when it is not JSON.

    Bytes come back only with a ``password``: an encrypted audible auth file
    ("bytes" style) is not JSON. Without one, a file that is not JSON is refused.
    """
    if len(raw) > MAX_IMPORT_FILE:
        raise ConfigError("the file is too large to be an account file")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if password is None:
            raise ConfigError(
                "the file is not JSON; if it is an encrypted audible auth file, "
                "give its password with --password-env VAR"
            ) from None
        return raw


def read_import_file(raw: bytes, *, password: str | None = None) -> ImportedAccount:
    """Detect the file's kind (ours, audible plain, audible encrypted) and parse it."""
    document = load_account_document(raw, password=password)
    if isinstance(document, bytes) or (
        isinstance(document, dict) and any(k in document for k in _AUDIBLE_MARKERS)
    ):
        return _audible_reader()(raw, password=password)
    if password is not None:
        log.warning("the file is not encrypted; the password is not needed")
    return parse_account_json(document)


def _audible_reader() -> Callable[..., ImportedAccount]:
    module, _, attr = _AUDIBLE_READER.partition(":")
    reader: Callable[..., ImportedAccount] = getattr(importlib.import_module(module), attr)
    return reader


# -- storing --------------------------------------------------------------------------------


def import_account(
    store: Store,
    name: str,
    imported: ImportedAccount,
    *,
    replace: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> Account:
    """Create account ``name`` from ``imported``, or with ``replace`` renew its tokens.

    ``overrides`` (e.g. ``token_url``, ``locale``) win over the file's config.
    Replacing stores the tokens with :func:`replace_tokens`, so an account that
    needed a login is healthy again.
    """
    check_name(name)
    config = {**imported.config, **{k: v for k, v in (overrides or {}).items() if v}}
    existing = store.get_account(name)
    if not replace:
        if existing is not None:
            raise ConfigError(f"account {name!r} already exists; use --replace to renew its tokens")
        account = add_account(store, name, imported.provider, config, imported.tokens)
    else:
        if existing is None:
            raise ConfigError(f"no account named {name!r} to replace; import without --replace")
        if existing.provider != imported.provider:
            raise ConfigError(
                f"account {name!r} is a {existing.provider} account; the file holds "
                f"{imported.provider} tokens"
            )
        merged = normalized_config(existing.provider, {**existing.config, **config})
        if merged != dict(existing.config):
            store.update_config(name, merged)
        account = replace_tokens(store, name, imported.tokens)
    log.info(
        "%s: imported %s tokens from %s (refresh token %s)",
        name,
        imported.provider,
        imported.source,
        secret_prefix(imported.tokens.refresh_token),
    )
    return account
