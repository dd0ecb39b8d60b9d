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
  encrypted with a password (its ``json`` and ``bytes`` styles: PBKDF2 +
  AES-CBC). Only the tokens, their expiry, the locale, the device serial and
  the token host (``with_username: true`` → ``api.audible.<tld>``) are
  kept; the other secrets in those files (device private key, cookies, ADP
  token, activation bytes) are never stored, logged or printed.

Every malformed input raises :class:`ConfigError`, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import logging
import struct
from collections.abc import Mapping
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
#: keys only the audible package's auth files have
_AUDIBLE_MARKERS = (
    "adp_token",
    "locale_code",
    "device_info",
    "website_cookies",
    "device_private_key",
)
_MAX_FILE = 5 * 1024 * 1024
_BLOCK = 16


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


def _text(data: Mapping[str, Any], key: str, *, where: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}{key} must be a string, not {type(value).__name__}")
    return value.strip() or None


def _expiry(value: object, what: str) -> dt.datetime:
    try:
        return parse_expiry(value)
    except ExpiryParseError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _normalized(provider: str, config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return get_provider(provider).normalize_config(config)
    except ValueError as exc:  # e.g. urlsplit on a malformed URL
        raise ConfigError(f"invalid account configuration: {exc}") from None


def parse_account_json(data: object) -> ImportedAccount:
    """Our documented account JSON (already decoded) → :class:`ImportedAccount`."""
    if not isinstance(data, dict):
        raise ConfigError("an account file must hold a JSON object")
    config = {k: v for k in _CONFIG_FIELDS if (v := _text(data, k)) is not None}
    provider = _text(data, "provider")
    if provider is None:
        if "locale" in config or "device_serial" in config:
            provider = "amazon"
        elif "issuer" in config:
            provider = "oidc"
        else:
            raise ConfigError('say which provider: "provider": "amazon", "oauth2" or "oidc"')
    refresh = _text(data, "refresh_token")
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
        config=_normalized(provider, config),
        tokens=tokens,
        source="stayfresh",
    )


def _access_token(data: Mapping[str, Any]) -> tuple[str | None, dt.datetime | None]:
    raw = data.get("access_token")
    if raw is None:
        return None, None
    if isinstance(raw, dict):
        token = _text(raw, "token", where="access_token.")
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
    return token, _expiry(when, "access_token.expires_at")


def parse_audible_auth(data: Mapping[str, Any], *, source: str = "audible") -> ImportedAccount:
    """An ``audible`` package auth file (decrypted) → :class:`ImportedAccount` (amazon)."""
    refresh = _text(data, "refresh_token")
    if refresh is None:
        raise ConfigError("the audible auth file has no refresh_token (was the device registered?)")
    config: dict[str, Any] = {}
    locale = _text(data, "locale_code")
    if locale:
        config["locale"] = locale
    if data.get("with_username") is True:
        # registered with an Audible username (pre-Amazon account): the audible
        # package refreshes those at api.audible.<tld>, and Amazon's host refuses them
        config["token_host"] = "audible"
    device_info = data.get("device_info")
    if isinstance(device_info, dict):
        serial = device_info.get("device_serial_number")
        if isinstance(serial, str) and serial:
            config["device_serial"] = serial
    access = _text(data, "access_token")
    expires = data.get("expires")
    expires_at = None
    if access is not None and expires is not None:
        expires_at = _expiry(expires, "expires")
    elif access is not None:
        access = None
    tokens = TokenSet(access_token=access, expires_at=expires_at, refresh_token=refresh)
    return ImportedAccount(
        provider="amazon", config=_normalized("amazon", config), tokens=tokens, source=source
    )


def read_import_file(raw: bytes, *, password: str | None = None) -> ImportedAccount:
    """Detect the file's kind (ours, audible plain, audible encrypted) and parse it."""
    if len(raw) > _MAX_FILE:
        raise ConfigError("the file is too large to be an account file")
    document: Any
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if password is None:
            raise ConfigError(
                "the file is not JSON; if it is an encrypted audible auth file, "
                "give its password with --password-env VAR"
            ) from None
        return _from_audible_text(_decrypt_bytes_style(raw, password), "audible (encrypted, bytes)")
    if isinstance(document, dict) and "ciphertext" in document:
        if password is None:
            raise ConfigError("the audible auth file is encrypted: give --password-env VAR")
        return _from_audible_text(
            _decrypt_json_style(document, password), "audible (encrypted, json)"
        )
    if password is not None:
        log.warning("the file is not encrypted; the password is not needed")
    if isinstance(document, dict) and any(k in document for k in _AUDIBLE_MARKERS):
        return parse_audible_auth(document)
    return parse_account_json(document)


def _from_audible_text(text: str, source: str) -> ImportedAccount:
    data = json.loads(text)  # _decrypt_* already checked it decodes to an object
    return parse_audible_auth(data, source=source)


# -- the audible package's file encryption (audible/aescipher.py) ---------------------------
#
# The first 16 bytes ("packed salt") are: marker "$", kdf iterations as a big-endian
# 16-bit word, marker "$", then 12 random salt bytes. The AES-256 key is
# PBKDF2-HMAC(password, 12-byte salt, iterations), SHA-256 by default (SHA-1 tried
# too, for files written with hashmod=sha1). Then a 16-byte IV and AES-CBC with
# PKCS7 padding over the JSON text. "json" style stores salt/iv/ciphertext base64
# encoded in a JSON object; "bytes" style concatenates them.

_SALT_MARKER = b"$"
_DEFAULT_ITERATIONS = 1000


def _unpack_salt(packed: bytes) -> tuple[bytes, int]:
    m = len(_SALT_MARKER)
    if packed[:m] == _SALT_MARKER and packed[m + 2 : 2 * m + 2] == _SALT_MARKER:
        return packed[2 * m + 2 :], struct.unpack(">H", packed[m : m + 2])[0]
    return packed, _DEFAULT_ITERATIONS  # as audible does when the marker is absent


def _decrypt_json_style(document: Mapping[str, Any], password: str) -> str:
    try:
        salt, iv, ciphertext = (
            base64.b64decode(str(document[k]), validate=True) for k in ("salt", "iv", "ciphertext")
        )
    except (KeyError, binascii.Error, ValueError):
        raise ConfigError("the encrypted audible file is damaged (salt/iv/ciphertext)") from None
    return _decrypt(salt, iv, ciphertext, password)


def _decrypt_bytes_style(raw: bytes, password: str) -> str:
    return _decrypt(raw[:_BLOCK], raw[_BLOCK : 2 * _BLOCK], raw[2 * _BLOCK :], password)


def _decrypt(packed_salt: bytes, iv: bytes, ciphertext: bytes, password: str) -> str:
    """The decrypted JSON text, or ConfigError for a wrong password or a damaged file."""
    try:
        from cryptography.hazmat.primitives import hashes, padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    except ImportError:
        raise ConfigError(
            "decrypting audible auth files needs the cryptography package: "
            "pip install 'stayfresh[audible]'"
        ) from None
    if (
        len(packed_salt) != _BLOCK
        or len(iv) != _BLOCK
        or not ciphertext
        or len(ciphertext) % _BLOCK
    ):
        raise ConfigError("the file is not an encrypted audible auth file (wrong size)")
    salt, iterations = _unpack_salt(packed_salt)
    if iterations < 1:
        raise ConfigError("the encrypted audible file is damaged (0 KDF iterations)")
    for algorithm in (hashes.SHA256(), hashes.SHA1()):
        kdf = PBKDF2HMAC(algorithm=algorithm, length=32, salt=salt, iterations=iterations)
        key = kdf.derive(password.encode("utf-8"))
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        try:
            unpadder = padding.PKCS7(128).unpadder()
            text = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
            if isinstance(json.loads(text), dict):
                return text
        except (ValueError, RecursionError):  # bad padding, bad UTF-8 or not JSON
            continue
    raise ConfigError("cannot decrypt the audible auth file: wrong password (or a damaged file)")


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
        merged = _normalized(existing.provider, {**existing.config, **config})
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
