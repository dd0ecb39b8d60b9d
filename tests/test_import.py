"""``account import``: our account JSON and the audible package's auth files.

Encrypted fixtures are written by the audible package itself when it is
installed (``Authenticator.to_file``), and otherwise by :func:`audible_encrypt`
below, which follows audible/aescipher.py byte for byte.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import struct
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import invoke_cli
from fake_token_server import FakeTokenServer, Seen, token_reply
from stayfresh.errors import ConfigError
from stayfresh.store import Store
from stayfresh.tokens import (
    Keeper,
    get_provider,
    import_account,
    parse_account_json,
    read_import_file,
)

try:
    import audible
except ImportError:  # pragma: no cover - the dev extra installs it
    audible = None

UTC = dt.UTC
PASSWORD = "correct horse battery staple"

# secrets of an audible auth file that stayfresh must never keep or show
ACCESS = "Atna|EwICIAccessTokenValue0123456789abcdef"
REFRESH = "Atnr|IwEBIRefreshTokenValue0123456789abcdef"
SERIAL = "SERIALf00dcafe1234567890"
OTHER_SECRETS = {
    "adp_token": "{enc:ADPSECRETenc}{key:ADPSECRETkey}{iv:ADPSECRETiv}{name:QURQVG9rZW4=}{serial:Mg==}",
    "device_private_key": (
        "-----BEGIN RSA PRIVATE KEY-----\nPRIVATEKEYSECRET\n-----END RSA PRIVATE KEY-----\n"
    ),
    "website_cookies": {"session-token": "COOKIESECRET"},
    "store_authentication_cookie": {"cookie": "STORECOOKIESECRET"},
    "activation_bytes": "ACTIVATIONSECRET",
}
MARKERS = ["ADPSECRET", "PRIVATEKEYSECRET", "COOKIESECRET", "STORECOOKIESECRET", "ACTIVATIONSECRET"]
EXPIRES = 1_900_000_000.5


def audible_auth_dict() -> dict[str, Any]:
    """What ``Authenticator.to_dict()`` writes (audible 0.13)."""
    return {
        **OTHER_SECRETS,
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "device_info": {
            "device_name": "stayfresh test device",
            "device_serial_number": SERIAL,
            "device_type": "A2CZJZGLK2JJVM",
        },
        "customer_info": {"account_pool": "Amazon", "user_id": "amzn1.account.X", "name": "Reader"},
        "expires": EXPIRES,
        "locale_code": "de",
        "with_username": False,
    }


def audible_encrypt(
    text: str,
    password: str,
    style: str,
    *,
    iterations: int = 1000,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """audible's AESCipher.to_file: '$' + iterations (>H) + '$' + 12-byte salt, IV, AES-CBC."""
    header = b"$" + struct.pack(">H", iterations) + b"$"
    salt = secrets.token_bytes(16 - len(header))
    key = PBKDF2HMAC(
        algorithm=hash_algorithm or hashes.SHA256(), length=32, salt=salt, iterations=iterations
    ).derive(password.encode())
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    if style == "bytes":
        return header + salt + iv + ciphertext
    return json.dumps(
        {
            "salt": base64.b64encode(header + salt).decode(),
            "iv": base64.b64encode(iv).decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "info": "base64-encoded AES-CBC-256 of JSON object",
        },
        indent=4,
    ).encode()


def write_audible_file(path: Path, style: str | None, password: str = PASSWORD) -> Path:
    """An auth file as audible writes it (by audible itself when installed)."""
    data = audible_auth_dict()
    if audible is not None:
        auth = audible.Authenticator.from_dict(data)
        if style is None:
            auth.to_file(path, encryption=False)
        else:
            auth.to_file(path, password=password, encryption=style)
        return path
    text = json.dumps(data, indent=4)
    path.write_bytes(text.encode() if style is None else audible_encrypt(text, password, style))
    return path


def database_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


# -- parsing ----------------------------------------------------------------------------------


def test_our_json_amazon_default_and_expiry_formats() -> None:
    for when in ("2026-11-24T06:19:38Z", "Tue Nov 24 06:19:38 UTC 2026", 1795501178, 1795501178000):
        imported = parse_account_json(
            {
                "locale": "uk",
                "device_serial": "S1",
                "refresh_token": "Atnr|r",
                "access_token": {"token": "Atna|a", "expires_at": when},
            }
        )
        assert imported.provider == "amazon"
        assert imported.config == {"locale": "uk", "device_serial": "S1", "token_host": "amazon"}
        assert imported.tokens.expires_at == dt.datetime(2026, 11, 24, 6, 19, 38, tzinfo=UTC)
        assert "Atn" not in repr(imported)


def test_our_json_oauth2_and_oidc() -> None:
    oauth2 = parse_account_json(
        {
            "provider": "oauth2",
            "token_url": "https://auth.example/token",
            "client_id": "app",
            "client_secret": "shh",
            "scope": "read",
            "refresh_token": "r1",
        }
    )
    assert oauth2.config["auth_method"] == "client_secret_basic"
    assert oauth2.tokens.access_token is None and oauth2.tokens.scope == "read"
    oidc = parse_account_json(
        {"issuer": "https://id.example", "client_id": "app", "refresh_token": "r"}
    )
    assert oidc.provider == "oidc"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"refresh_token": "r"}, "which provider"),
        ({"locale": "us"}, "no refresh_token"),
        ({"locale": "mars", "refresh_token": "r"}, "unknown Amazon locale"),
        ({"locale": 3, "refresh_token": "r"}, "locale must be a string"),
        ({"provider": "nope", "refresh_token": "r"}, "unknown provider"),
        ({"provider": "oauth2", "refresh_token": "r"}, "client id"),
        (
            {
                "provider": "oauth2",
                "client_id": "c",
                "token_url": "http://x.example/t",
                "refresh_token": "r",
            },
            "https",
        ),
        ({"locale": "us", "refresh_token": "r", "access_token": 5}, "access_token must be"),
        (
            {
                "locale": "us",
                "refresh_token": "r",
                "access_token": {"token": "a", "expires_at": "soon"},
            },
            "expires_at",
        ),
    ],
)
def test_our_json_errors_are_clear(document: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_account_json(document)


def test_access_token_without_expiry_is_dropped() -> None:
    imported = parse_account_json({"locale": "us", "refresh_token": "r", "access_token": "a"})
    assert imported.tokens.access_token is None  # unknown expiry: the first use refreshes


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
known_keys = st.sampled_from(
    [
        "provider", "locale", "device_serial", "refresh_token", "access_token", "token_url",
        "client_id", "client_secret", "issuer", "scope", "auth_method", "expires_at",
        "locale_code", "device_info", "expires", "adp_token",
    ]
)  # fmt: skip
field_values = (
    json_values
    | st.sampled_from(["amazon", "oauth2", "oidc", "us", "http://[::1", "https://x.example/t", ""])
    | st.fixed_dictionaries(
        {}, optional={"token": json_values | st.text(), "expires_at": json_values}
    )
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.dictionaries(known_keys, field_values, max_size=10)))
def test_account_json_parser_never_crashes(document: Any) -> None:
    try:
        imported = parse_account_json(document)
    except ConfigError:
        return
    assert imported.tokens.refresh_token
    assert imported.tokens.expires_at is None or imported.tokens.expires_at.tzinfo is not None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        known_keys,
        field_values | st.fixed_dictionaries({}, optional={"device_serial_number": json_values}),
        max_size=10,
    )
)
def test_any_json_file_gives_an_account_or_a_clear_error(document: dict[str, Any]) -> None:
    """Through the file reader, so audible-looking documents take the audible parser."""
    try:
        imported = read_import_file(json.dumps(document).encode())
    except ConfigError:
        return
    assert imported.tokens.refresh_token


@settings(max_examples=150, deadline=None)
@given(
    raw=st.binary(max_size=200)
    | st.integers(2, 6).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
    password=st.none() | st.text(max_size=10),
)
def test_import_file_reader_never_crashes(raw: bytes, password: str | None) -> None:
    with contextlib.suppress(ConfigError):
        read_import_file(raw, password=password)


# -- audible auth files -------------------------------------------------------------------------


@pytest.mark.parametrize("style", [None, "json", "bytes"])
def test_audible_files_keep_only_what_we_need(tmp_path: Path, style: str | None) -> None:
    path = write_audible_file(tmp_path / "auth.json", style)
    imported = read_import_file(path.read_bytes(), password=PASSWORD if style else None)
    assert imported.provider == "amazon"
    assert imported.config == {"locale": "de", "device_serial": SERIAL, "token_host": "amazon"}
    assert imported.tokens.access_token == ACCESS
    assert imported.tokens.refresh_token == REFRESH
    assert imported.tokens.expires_at == dt.datetime.fromtimestamp(EXPIRES, UTC)
    assert imported.source == ("audible" if style is None else f"audible (encrypted, {style})")
    for marker in MARKERS:
        assert marker not in repr(imported)


@pytest.mark.parametrize("style", ["json", "bytes"])
def test_encrypted_with_other_kdf_settings(style: str) -> None:
    text = json.dumps(audible_auth_dict())
    if audible is not None:
        from audible.aescipher import AESCipher

        cipher = AESCipher(PASSWORD, kdf_iterations=2345, hashmod=hashlib.sha1)
        raw = (
            json.dumps(cipher.to_dict(text)).encode() if style == "json" else cipher.to_bytes(text)
        )
    else:
        raw = audible_encrypt(text, PASSWORD, style, iterations=2345, hash_algorithm=hashes.SHA1())
    assert read_import_file(raw, password=PASSWORD).tokens.refresh_token == REFRESH


@pytest.mark.parametrize("style", ["json", "bytes"])
def test_wrong_or_missing_password(tmp_path: Path, style: str) -> None:
    raw = write_audible_file(tmp_path / "auth", style).read_bytes()
    with pytest.raises(ConfigError, match="wrong password"):
        read_import_file(raw, password="not it")
    with pytest.raises(ConfigError, match="--password-env"):
        read_import_file(raw)


def need_audible() -> None:
    """Skip without the real ``audible`` package locally; in CI its absence fails."""
    if audible is None:
        if os.environ.get("CI"):
            pytest.fail("the audible package is missing in CI (it is in the dev extra)")
        pytest.skip("the audible package is not installed")


def test_our_encryptor_matches_audible() -> None:
    """The fallback fixture writer produces files audible itself decrypts."""
    need_audible()
    from audible.aescipher import AESCipher

    text = json.dumps(audible_auth_dict())
    cipher = AESCipher(PASSWORD)
    assert cipher.from_bytes(audible_encrypt(text, PASSWORD, "bytes")) == text
    assert cipher.from_dict(json.loads(audible_encrypt(text, PASSWORD, "json"))) == text


# -- storing ----------------------------------------------------------------------------------


def test_import_then_refresh_through_the_keeper(
    store: Store, keeper: Keeper, token_server: FakeTokenServer, tmp_path: Path
) -> None:
    token_server.handler = lambda seen: token_reply("Atna|fresh", expires_in=3600)
    imported = read_import_file(
        write_audible_file(tmp_path / "a", "json").read_bytes(), password=PASSWORD
    )
    account = import_account(
        store, "books", imported, overrides={"token_url": token_server.token_url}
    )
    assert account.status == "ok" and account.config["device_serial"] == SERIAL

    result = keeper.ensure_valid_token("books", force=True)
    assert result.access_token == "Atna|fresh"
    sent: Seen = token_server.requests[-1]
    assert sent.form["source_token"] == REFRESH and sent.form["app_name"] == "Audible"
    row = store.get_account("books")
    assert row is not None and row.tokens.refresh_token == REFRESH  # Amazon does not rotate


def test_replace_heals_needs_login(store: Store, tmp_path: Path) -> None:
    first = parse_account_json({"locale": "de", "refresh_token": "Atnr|old"})
    import_account(store, "books", first)
    with pytest.raises(ConfigError, match="--replace"):
        import_account(store, "books", first)
    store.set_status("books", "needs_login", "invalid parameter : source_token")

    imported = read_import_file(write_audible_file(tmp_path / "a", None).read_bytes())
    account = import_account(store, "books", imported, replace=True)
    assert account.status == "ok"
    assert account.tokens.refresh_token == REFRESH
    assert account.config["device_serial"] == SERIAL

    with pytest.raises(ConfigError, match="no account"):
        import_account(store, "other", imported, replace=True)
    oauth = parse_account_json(
        {
            "provider": "oauth2",
            "client_id": "c",
            "token_url": "https://x.example/t",
            "refresh_token": "r",
        }
    )
    with pytest.raises(ConfigError, match="amazon account"):
        import_account(store, "books", oauth, replace=True)


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_imports_every_kind_without_leaking(db_path: Path, tmp_path: Path) -> None:
    outputs: list[str] = []
    for name, style in (("plain", None), ("encjson", "json"), ("encbytes", "bytes")):
        path = write_audible_file(tmp_path / f"{name}.auth", style)
        args = ["-vv", "account", "import", name, str(path)]
        if style:
            args += ["--password-env", "AUDIBLE_PW"]
        done = invoke_cli(*args, db=db_path, env={"AUDIBLE_PW": PASSWORD})
        assert done.returncode == 0, done.stderr
        assert f"imported {name} (amazon): status ok" in done.stdout
        outputs += [done.stdout, done.stderr]
        shown = invoke_cli("-vv", "account", "show", name, "--json", db=db_path)
        assert json.loads(shown.stdout)["config"] == {"locale": "de", "token_host": "amazon"}
        outputs += [shown.stdout, shown.stderr]

    ours = json.dumps(
        {
            "locale": "us",
            "device_serial": SERIAL,
            "refresh_token": REFRESH,
            "access_token": {"token": ACCESS, "expires_at": "Tue Nov 24 06:19:38 UTC 2026"},
        }
    )
    done = invoke_cli("-vv", "account", "import", "ours", "-", "--json", db=db_path, input=ours)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["expires_at"] == "2026-11-24T06:19:38+00:00"
    outputs += [done.stdout, done.stderr]

    for text in outputs:
        for secret in [ACCESS, REFRESH, SERIAL, PASSWORD, ACCESS[:12], REFRESH[:12], *MARKERS]:
            assert secret not in text
    stored = database_bytes(db_path)
    for marker in MARKERS:
        assert marker.encode() not in stored


def test_cli_replace_and_errors(db_path: Path, tmp_path: Path, store: Store) -> None:
    path = write_audible_file(tmp_path / "enc", "json")
    env = {"AUDIBLE_PW": PASSWORD, "WRONG_PW": "wrong"}
    assert (
        invoke_cli(
            "account", "import", "b", str(path), "--password-env", "AUDIBLE_PW", db=db_path, env=env
        ).returncode
        == 0
    )

    again = invoke_cli(
        "account", "import", "b", str(path), "--password-env", "AUDIBLE_PW", db=db_path, env=env
    )
    assert again.returncode == 2 and "--replace" in again.stderr

    wrong = invoke_cli(
        "account",
        "import",
        "b",
        str(path),
        "--replace",
        "--password-env",
        "WRONG_PW",
        db=db_path,
        env=env,
    )
    assert wrong.returncode == 2 and "wrong password" in wrong.stderr
    assert "wrong" not in wrong.stderr.replace("wrong password", "")

    missing = invoke_cli("account", "import", "b", str(path), "--replace", db=db_path)
    assert missing.returncode == 2 and "--password-env" in missing.stderr
    unset = invoke_cli("account", "import", "b", str(path), "--password-env", "NOPE", db=db_path)
    assert unset.returncode == 2
    nofile = invoke_cli("account", "import", "c", str(tmp_path / "absent"), db=db_path)
    assert nofile.returncode == 2

    store.set_status("b", "needs_login", "rejected")
    healed = invoke_cli(
        "account",
        "import",
        "b",
        str(path),
        "--replace",
        "--password-env",
        "AUDIBLE_PW",
        db=db_path,
        env=env,
    )
    assert healed.returncode == 0, healed.stderr
    assert "status ok" in healed.stdout
    row = store.get_account("b")
    assert row is not None and row.status == "ok"


# -- pre-Amazon (username) accounts refresh where the audible package refreshes them ------------


class ConnectRecorder:
    """An HTTPS proxy on 127.0.0.1 that writes down which host a client wants, then refuses.

    The ``audible`` package honours ``HTTPS_PROXY``, so the CONNECT line shows
    the token host it picks for a refresh, without any network.
    """

    def __init__(self) -> None:
        import socketserver
        import threading

        self.hosts: list[str] = []
        outer = self

        class H(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(4096).decode("latin-1").split()
                if len(line) >= 2 and line[0] == "CONNECT":
                    outer.hosts.append(line[1])
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


AUDIBLE_REFRESH = r"""
import sys
from audible.auth import refresh_access_token
try:
    refresh_access_token("Atnr|x", sys.argv[1], with_username=sys.argv[2] == "1")
except Exception:
    pass
"""


@pytest.mark.parametrize("with_username", [True, False])
def test_username_accounts_refresh_at_the_audible_host_like_audible_does(
    db_path: Path, tmp_path: Path, with_username: bool
) -> None:
    import subprocess
    import sys

    need_audible()
    data = {**audible_auth_dict(), "with_username": with_username}
    path = tmp_path / "auth.json"
    audible.Authenticator.from_dict(data).to_file(path, encryption=False)
    imported = read_import_file(path.read_bytes())
    host = "audible" if with_username else "amazon"
    assert imported.config["token_host"] == host

    done = invoke_cli("account", "import", "books", str(path), db=db_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(invoke_cli("account", "show", "books", "--json", db=db_path).stdout)
    assert shown["config"]["token_host"] == host
    ours = urllib.parse.urlsplit(get_provider("amazon").token_url(shown["config"]))

    proxy = ConnectRecorder()
    try:
        env = {**os.environ, "HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "NO_PROXY": ""}
        flag = "1" if with_username else "0"
        subprocess.run(
            [sys.executable, "-c", AUDIBLE_REFRESH, "de", flag], env=env, timeout=60, check=True
        )
    finally:
        proxy.stop()
    assert proxy.hosts == [f"{ours.hostname}:443"] == [f"api.{host}.de:443"]
    assert ours.path == "/auth/token"


def test_account_add_takes_the_token_host(db_path: Path) -> None:
    env = {"RT": "Atnr|x"}
    args = ["account", "add", "old", "--provider", "amazon", "--locale", "uk"]
    done = invoke_cli(
        *args, "--token-host", "audible", "--refresh-token-env", "RT", db=db_path, env=env
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(invoke_cli("account", "show", "old", "--json", db=db_path).stdout)
    assert shown["config"]["token_host"] == "audible"
    assert (
        get_provider("amazon").token_url(shown["config"]) == "https://api.audible.co.uk/auth/token"
    )
    bad = invoke_cli(*args, "--token-host", "evil", "--refresh-token-env", "RT", db=db_path, env=env)
    assert bad.returncode == 2
    with pytest.raises(ConfigError, match="token host"):
        parse_account_json({"locale": "us", "refresh_token": "r", "token_host": "evil.example"})
