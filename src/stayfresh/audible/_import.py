"""Auth files of the ``audible`` package / audible-cli, for ``stayfresh account import``.

Plain JSON, or encrypted with a password (its ``json`` and ``bytes`` styles:
PBKDF2 + AES-CBC). Only the tokens, their expiry, the locale, the device
serial and the token host (``with_username: true`` → ``api.audible.<tld>``)
are kept; the other secrets in those files (device private key, cookies, ADP
token, activation bytes) are never stored, logged or printed.

:func:`stayfresh.tokens.read_import_file` detects these files and loads this
module only for them. Every malformed input raises :class:`ConfigError`,
never another exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..tokens import ImportedAccount, TokenSet
from ..tokens.internal import expiry_field, load_account_document, normalized_config, text_field

log = logging.getLogger(__name__)

_BLOCK = 16


def read_auth_file(raw: bytes, *, password: str | None = None) -> ImportedAccount:
    """An audible auth file (plain, or encrypted with ``password``) → :class:`ImportedAccount`."""
    document = load_account_document(raw, password=password)
    if isinstance(document, bytes):  # not JSON: encrypted, "bytes" style (a password was given)
        assert password is not None
        return _from_audible_text(_decrypt_bytes_style(raw, password), "audible (encrypted, bytes)")
    if not isinstance(document, dict):
        raise ConfigError("an audible auth file must hold a JSON object")
    if "ciphertext" in document:
        if password is None:
            raise ConfigError("the audible auth file is encrypted: give --password-env VAR")
        return _from_audible_text(
            _decrypt_json_style(document, password), "audible (encrypted, json)"
        )
    if password is not None:
        log.warning("the file is not encrypted; the password is not needed")
    return parse_audible_auth(document)


def parse_audible_auth(data: Mapping[str, Any], *, source: str = "audible") -> ImportedAccount:
    """An ``audible`` package auth file (decrypted) → :class:`ImportedAccount` (amazon)."""
    refresh = text_field(data, "refresh_token")
    if refresh is None:
        raise ConfigError("the audible auth file has no refresh_token (was the device registered?)")
    config: dict[str, Any] = {}
    locale = text_field(data, "locale_code")
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
    access = text_field(data, "access_token")
    expires = data.get("expires")
    expires_at = None
    if access is not None and expires is not None:
        expires_at = expiry_field(expires, "expires")
    elif access is not None:
        access = None
    tokens = TokenSet(access_token=access, expires_at=expires_at, refresh_token=refresh)
    return ImportedAccount(
        provider="amazon", config=normalized_config("amazon", config), tokens=tokens, source=source
    )


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
