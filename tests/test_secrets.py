"""Secrets stay secret; files stay private; writes go through transactions.

Every CLI command and error path runs in a real subprocess with DEBUG logging
(``-vv`` and ``STAYFRESH_LOG_LEVEL=DEBUG``) and distinctive secret values; no
secret may appear in any output, except an access token on the stdout of
``stayfresh token`` (printing it is that command's purpose).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from fake_token_server import FakeTokenServer, Reply, Seen, token_reply
from stayfresh.errors import StayfreshError, TokenError
from stayfresh.store import SQLiteStore, Store
from stayfresh.tokens import Account, Keeper, TokenResult, TokenSet, add_account, refresh_metrics

UTC = dt.UTC

REFRESH = "SECRET-RT-4f8e1c2a9b7d6e53"
REFRESH_PIPED = "SECRET-RTPIPE-c0ffee00deadbeef"
REFRESH_NEW = "SECRET-RTNEW-5e5e4d4d3c3c2b2b"
REFRESH_NEWER = "SECRET-RTNEWER-0a0b0c0d0e0f1a1b"
AMAZON_REFRESH = "SECRET-AMZRT-9d8c7b6a5f4e3d2c"
ACCESS = "SECRET-AT-a1b2c3d4e5f60718"
ACCESS_NEW = "SECRET-ATNEW-99aa88bb77cc66dd"
ACCESS_NEWER = "SECRET-ATNEWER-1234abcd5678ef90"
AMAZON_ACCESS_NEW = "SECRET-AMZAT-77e6d5c4b3a29180"
CLIENT_ID = "stayfresh-client"
CLIENT_SECRET = "SECRET-CS-0f1e2d3c4b5a6978"
SERIAL = "SECRET-SERIAL-7a6b5c4d3e2f1a0b"
IMPORT_REFRESH = "SECRET-IMPRT-3141592653589793"
IMPORT_ACCESS = "SECRET-IMPAT-2718281828459045"

ACCESS_TOKENS = (ACCESS, ACCESS_NEW, ACCESS_NEWER, AMAZON_ACCESS_NEW, IMPORT_ACCESS)
NEVER_SHOWN = (REFRESH, REFRESH_PIPED, REFRESH_NEW, REFRESH_NEWER, AMAZON_REFRESH, IMPORT_REFRESH)
NEVER_SHOWN += (CLIENT_SECRET, SERIAL)

SECRET_ENV = {
    "SF_RT": REFRESH,
    "SF_AT": ACCESS,
    "SF_CS": CLIENT_SECRET,
    "SF_SERIAL": SERIAL,
    "SF_AMZ_RT": AMAZON_REFRESH,
    "SF_EMPTY": "   ",
}
CLI = [sys.executable, "-c", "from stayfresh.cli import main; main()"]
DEBUG_ENV = {"STAYFRESH_LOG_LEVEL": "DEBUG", **SECRET_ENV}


def forms(secret: str) -> list[str]:
    """The secret, its random tail, and the encodings it travels in."""
    tail = secret.rsplit("-", 1)[1]
    found = [secret, tail, base64.b64encode(secret.encode()).decode()]
    if secret == CLIENT_SECRET:
        pair = f"{CLIENT_ID}:{CLIENT_SECRET}".encode()
        found.append(base64.b64encode(pair).decode())
    return found


def assert_no_secret(text: str, where: str, *, allow_access_tokens: bool = False) -> None:
    secrets = NEVER_SHOWN if allow_access_tokens else NEVER_SHOWN + ACCESS_TOKENS
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{secret!r} (as {form!r}) leaked in {where}:\n{text}"


def check(proc: subprocess.CompletedProcess[str], *, token_stdout: bool = False) -> None:
    """No secret anywhere in the output; ``token`` may print access tokens on stdout."""
    label = " ".join(str(a) for a in proc.args[3:])
    assert_no_secret(proc.stdout, f"stdout of `{label}`", allow_access_tokens=token_stdout)
    assert_no_secret(proc.stderr, f"stderr of `{label}`")
    for arg in proc.args:
        assert_no_secret(str(arg), "argv")


def sf(
    *args: str, db: Path, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``stayfresh --db DB -vv ARGS`` with STAYFRESH_LOG_LEVEL=DEBUG and the secrets in env."""
    return run_cli("-vv", *args, db=db, env={**DEBUG_ENV, **(env or {})}, input=input)


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    """conftest's server (it polls for shutdown every 20 ms: stopping it is quick)."""
    with FakeTokenServer() as server:
        yield server


# -- every command, with DEBUG logging -----------------------------------------------------


@pytest.mark.slow  # real deadlines or a subprocess per command: not in make test-quick
def test_no_secret_in_any_cli_output(tmp_path: Path, token_server: FakeTokenServer) -> None:
    db = tmp_path / "data" / "stayfresh.db"
    release = threading.Event()
    issued = {"n": 0}

    def handler(seen: Seen) -> Reply:
        if seen.path == "/amazon":
            return token_reply(AMAZON_ACCESS_NEW, expires_in=3600)
        if seen.path == "/500":
            return Reply(500, "<html><title>Oops</title><body>down</body></html>")
        if seen.path == "/grant":
            return Reply(
                400,
                {"error": "invalid_grant", "error_description": "refresh token revoked"},
            )
        if seen.path == "/hang":
            release.wait(20)
            return Reply(drop=True)
        issued["n"] += 1
        if issued["n"] == 1:
            return token_reply(ACCESS_NEW, REFRESH_NEW, expires_in=3600)
        return token_reply(ACCESS_NEWER, REFRESH_NEWER, expires_in=3600)

    token_server.handler = handler
    base = token_server.url

    # the three fault runs go first and in parallel: the timeout one waits the CLI's 10 s
    for name, path in (("f500", "/500"), ("fgrant", "/grant"), ("fhang", "/hang")):
        add = sf(
            "account", "add", name, "--provider", "oauth2", "--token-url", base + path,
            "--client-id", CLIENT_ID, "--client-secret-env", "SF_CS",
            "--refresh-token-env", "SF_RT", "--access-token-env", "SF_AT",
            "--expires-at", "2020-01-01T00:00:00Z",
            db=db,
        )  # fmt: skip
        assert add.returncode == 0, add.stderr
        check(add)
    faults = {
        name: subprocess.Popen(
            [*CLI, "--db", str(db), "-vv", "token", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**_clean_env(), **DEBUG_ENV},
        )
        for name in ("f500", "fgrant", "fhang")
    }
    try:
        runs = _every_other_command(db, base, token_server)
    finally:
        finished = {}
        for name, proc in faults.items():
            if name != "fhang":
                finished[name] = _communicate(proc)
        release_timer = threading.Timer(15, release.set)  # in case the CLI never times out
        release_timer.start()
        finished["fhang"] = _communicate(faults["fhang"])
        release.set()
        release_timer.cancel()

    assert finished["f500"].returncode == 4, finished["f500"].stderr
    assert finished["fgrant"].returncode == 3, finished["fgrant"].stderr
    assert "stayfresh login fgrant" in finished["fgrant"].stderr
    assert finished["fhang"].returncode == 4, finished["fhang"].stderr
    for proc in finished.values():
        assert proc.stdout == ""
        check(proc)
    assert len(runs) >= 20
    for proc, token_stdout in runs:
        check(proc, token_stdout=token_stdout)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}


def _communicate(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@dataclasses.dataclass(frozen=True)
class Run:
    """One ``stayfresh`` invocation and the exit code it must give."""

    args: tuple[str, ...]
    code: int = 0
    token: bool = False  # `token` may print access tokens on stdout
    input: str | None = None


def cmd(*args: str, code: int = 0, token: bool = False, input: str | None = None) -> Run:
    return Run(args, code, token, input)


def _every_other_command(
    db: Path, base: str, server: FakeTokenServer
) -> list[tuple[subprocess.CompletedProcess[str], bool]]:
    runs: list[tuple[subprocess.CompletedProcess[str], bool]] = []

    def batch(*specs: Run) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands at once (they share the database, as users' do)."""
        procs = [
            subprocess.Popen(
                [*CLI, "--db", str(db), "-vv", *spec.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**_clean_env(), **DEBUG_ENV},
            )
            for spec in specs
        ]
        done = []
        for spec, proc in zip(specs, procs, strict=True):
            out, err = proc.communicate(spec.input, timeout=60)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            assert result.returncode == spec.code, (spec.args, result.returncode, err)
            assert "Traceback" not in err, err
            runs.append((result, spec.token))
            done.append(result)
        return done

    token_url = base + "/token"
    oauth2 = ("--provider", "oauth2", "--token-url", token_url, "--client-id", CLIENT_ID)
    secret_file = db.parent / "client-secret.txt"
    secret_file.write_text(CLIENT_SECRET + "\n")
    document = {
        "provider": "amazon",
        "locale": "us",
        "device_serial": SERIAL,
        "token_url": base + "/amazon",
        "refresh_token": IMPORT_REFRESH,
        "access_token": {"token": IMPORT_ACCESS, "expires_at": "2099-01-01T00:00:00Z"},
    }
    import_file = db.parent / "account.json"
    import_file.write_text(json.dumps(document))
    broken_imports = [
        json.dumps(document)[:-7],  # truncated JSON
        json.dumps({**document, "provider": "nope"}),
        json.dumps({**document, "refresh_token": 12345, "client_secret": CLIENT_SECRET}),
        json.dumps({**document, "access_token": {"token": IMPORT_ACCESS, "expires_at": "soon"}}),
        json.dumps({**document, "access_token": [IMPORT_ACCESS]}),
        json.dumps({**document, "token_url": "http://example.com/token"}),
        json.dumps([IMPORT_REFRESH, IMPORT_ACCESS]),
        json.dumps({"ciphertext": IMPORT_REFRESH, "salt": "x", "iv": "y"}),
    ]

    # adds (secrets by environment, by stdin, by file), import, and every error path
    added = batch(
        cmd(
            "account", "add", "work", *oauth2, "--client-secret-env", "SF_CS",
            "--refresh-token-env", "SF_RT", "--access-token-env", "SF_AT",
            "--expires-at", "2020-01-01T00:00:00Z", "--scope", "openid offline_access",
        ),
        cmd(
            "account", "add", "piped", *oauth2, "--auth-method", "client_secret_post",
            "--client-secret-file", str(secret_file), "--refresh-token-file", "-", "--json",
            input=REFRESH_PIPED + "\n",
        ),
        cmd(
            "account", "add", "audible", "--provider", "amazon", "--locale", "us",
            "--token-url", base + "/amazon", "--refresh-token-env", "SF_AMZ_RT",
            "--device-serial-env", "SF_SERIAL", "--json",
        ),
        cmd("account", "import", "imported", "-", "--json", input=json.dumps(document)),
        # errors
        cmd("account", "add", "x1", "--provider", "oauth2", "--token-url",
            "http://example.com/t", "--client-id", CLIENT_ID, "--refresh-token-env", "SF_RT",
            "--client-secret-env", "SF_CS", code=2),
        cmd("account", "add", "x2", *oauth2, "--refresh-token-env", "SF_MISSING", code=2),
        cmd("account", "add", "x3", *oauth2, "--refresh-token-env", "SF_EMPTY", code=2),
        cmd("account", "add", "x4", *oauth2, "--refresh-token-env", "SF_RT",
            "--refresh-token-file", str(secret_file), code=2),
        cmd("account", "add", "x5", *oauth2, "--refresh-token-env", "SF_RT",
            "--access-token-env", "SF_AT", "--expires-at", "whenever", code=2),
        cmd("account", "add", "x6", "--provider", "oauth2", "--token-url", token_url,
            "--refresh-token-env", "SF_RT", "--client-secret-env", "SF_CS", code=2),
        cmd("account", "add", "x7", *oauth2,
            "--refresh-token-file", str(db.parent / "missing.txt"), code=2),
        cmd("account", "add", "x8", *oauth2, code=2, input=REFRESH),  # no refresh token given
        cmd("account", "add", "bad name!", "--provider", "amazon",
            "--refresh-token-env", "SF_AMZ_RT", "--device-serial-env", "SF_SERIAL", code=2),
        *(cmd("account", "import", "broken", "-", input=text, code=2) for text in broken_imports),
        cmd("account", "import", "broken", "-", "--password-env", "SF_CS",
            input=IMPORT_REFRESH, code=2),
        cmd("login", "nobody", code=2),
        cmd("token", "nobody", code=1),
        cmd("account", "show", "nobody", "--json", code=1),
        cmd("account", "remove", "nobody", code=1),
    )  # fmt: skip
    assert json.loads(added[1].stdout)["has_client_secret"] is True

    batch(
        cmd("account", "add", "work", *oauth2, "--refresh-token-env", "SF_RT",
            "--client-secret-env", "SF_CS", code=2),  # exists
        cmd("account", "import", "imported", str(import_file), code=2),  # exists
        cmd("account", "import", "imported", str(import_file), "--replace"),
        cmd("account", "list"),
        cmd("account", "list", "--json"),
        *(cmd("account", "show", name) for name in ("work", "piped", "audible", "imported")),
        *(cmd("account", "show", n, "--json") for n in ("work", "piped", "audible", "imported")),
        cmd("token", "work", "--threshold", "nonsense", code=2),
    )  # fmt: skip

    # token: the refresh happens (DEBUG logs on), the new access token only on stdout
    (first,) = batch(cmd("token", "work", token=True))
    assert first.stdout.strip() == ACCESS_NEW
    assert "DEBUG" in first.stderr  # the logging under test is really on
    seen = server.requests[-1]
    assert seen.form["refresh_token"] == REFRESH
    assert (
        seen.headers["authorization"]
        == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    )
    (as_json,) = batch(cmd("token", "work", "--json", token=True))
    assert json.loads(as_json.stdout)["access_token"] == ACCESS_NEW
    (forced,) = batch(cmd("token", "work", "--force", "--json", token=True))
    assert json.loads(forced.stdout)["access_token"] == ACCESS_NEWER
    assert server.requests[-1].form["refresh_token"] == REFRESH_NEW
    (piped,) = batch(cmd("token", "piped", "--threshold", "5m", token=True))
    assert piped.stdout.strip() == ACCESS_NEWER
    assert server.requests[-1].form["refresh_token"] == REFRESH_PIPED
    assert server.requests[-1].form.get("client_secret") == CLIENT_SECRET
    amazon, imported, *_ = batch(
        cmd("token", "audible", "--json", token=True),
        cmd("token", "imported", token=True),
    )
    assert json.loads(amazon.stdout)["access_token"] == AMAZON_ACCESS_NEW
    assert AMAZON_REFRESH in {r.form.get("source_token") for r in server.requests}
    assert imported.stdout.strip() == IMPORT_ACCESS  # valid until 2099: no refresh
    batch(cmd("account", "show", "work"), cmd("account", "list", "--json"))

    # remove
    batch(*(cmd("account", "remove", n) for n in ("work", "piped", "audible", "imported")))
    batch(
        cmd("account", "remove", "work", code=1),
        cmd("token", "work", code=1),
        cmd("account", "list"),
    )
    return runs


# -- library: reprs and errors ------------------------------------------------------------


def _secret_account(store: Store, name: str, url: str, *, expired: bool = True) -> None:
    now = dt.datetime.now(UTC)
    add_account(
        store,
        name,
        "oauth2",
        {"token_url": url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
         "device_serial": SERIAL},
        TokenSet(
            access_token=ACCESS,
            refresh_token=REFRESH,
            expires_at=now + dt.timedelta(minutes=-1 if expired else 10),
            obtained_at=now - dt.timedelta(hours=1),
            scope="openid",
        ),
    )  # fmt: skip


def test_reprs_hold_no_secret(store: Store) -> None:
    _secret_account(store, "acct", "http://127.0.0.1:9/token")
    row = store.get_account("acct")
    assert row is not None
    tokens = TokenSet.from_row(row.tokens)
    assert tokens.refresh_token == REFRESH  # the objects do hold the secrets
    result = TokenResult(account="acct", tokens=tokens, was_refreshed=False)
    for obj in (row, row.tokens, tokens, result):
        assert_no_secret(repr(obj), f"repr of {type(obj).__name__}")
        assert_no_secret(str(obj), f"str of {type(obj).__name__}")


def test_account_repr_holds_no_secret(store: Store) -> None:
    """``Account`` (what the keeper works with) carries the client secret in its config."""
    _secret_account(store, "acct", "http://127.0.0.1:9/token")
    row = store.get_account("acct")
    assert row is not None
    account = Account.from_row(row)
    assert_no_secret(repr(account), "repr of Account")
    assert_no_secret(str(account), "str of Account")


FAULT_REPLIES = {
    "500": lambda: Reply(500, "<html><title>Server Error</title></html>"),
    "429": lambda: Reply(429, {"error": "slow_down"}, {"Retry-After": "30"}),
    "garbage": lambda: Reply(200, b"not json"),
    "no-access-token": lambda: Reply(200, {"refresh_token": REFRESH_NEW}),
    "bad-expiry": lambda: Reply(200, {"access_token": ACCESS_NEW, "expires_in": "soon"}),
    "invalid_grant": lambda: Reply(400, {"error": "invalid_grant"}),
    "invalid_client": lambda: Reply(401, {"error": "invalid_client"}),
    "drop": lambda: Reply(drop=True),
    "timeout": lambda: Reply(delay=1.5, body={"access_token": ACCESS_NEW}),
}


@pytest.mark.parametrize("fault", sorted(FAULT_REPLIES))
def test_errors_hold_no_secret(
    fault: str, store: Store, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    token_server.handler = lambda seen: FAULT_REPLIES[fault]()
    _secret_account(store, "acct", token_server.token_url)
    keeper = Keeper(store, timeout=0.5)
    caplog.set_level("DEBUG")
    try:
        with pytest.raises(TokenError) as info:
            keeper.ensure_valid_token("acct")
    finally:
        keeper.close()
    exc: BaseException | None = info.value
    while exc is not None:  # the whole chain
        assert_no_secret(str(exc), f"str of {type(exc).__name__}")
        assert_no_secret(repr(exc), f"repr of {type(exc).__name__}")
        exc = exc.__cause__ or exc.__context__
    assert_no_secret(caplog.text, "log records")
    account = store.get_account("acct")
    assert account is not None
    assert_no_secret(str(refresh_metrics(store, "acct")), "metrics")
    assert_no_secret(str(account.status_message), "status message")


def test_valid_token_warning_holds_no_secret(
    store: Store, token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    token_server.handler = lambda seen: Reply(400, {"error": "invalid_grant"})
    _secret_account(store, "acct", token_server.token_url, expired=False)
    keeper = Keeper(store, timeout=0.5)
    caplog.set_level("DEBUG")
    try:
        assert keeper.ensure_valid_token("acct").access_token == ACCESS
    finally:
        keeper.close()
    assert "WARNING" in caplog.text
    assert_no_secret(caplog.text, "log records")


def test_config_errors_hold_no_secret(store: Store) -> None:
    bad_configs: list[dict[str, Any]] = [
        {"token_url": "http://example.com/token", "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET},
        {"token_url": "https://example.com/token", "client_secret": CLIENT_SECRET},
        {"token_url": "https://example.com/token", "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET, "auth_method": "private_key_jwt"},
    ]  # fmt: skip
    for config in bad_configs:
        tokens = TokenSet(access_token=ACCESS, refresh_token=REFRESH, expires_at=None)
        with pytest.raises(StayfreshError) as info:
            add_account(store, "acct", "oauth2", config, tokens)
        assert_no_secret(str(info.value), "ConfigError")
        assert_no_secret(repr(info.value), "ConfigError")


# -- files: owner-only, never truncated ---------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_default_data_directory_is_private(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    proc = run_cli("account", "list", env=env)
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "xdg" / "stayfresh" / "stayfresh.db"
    assert db.exists()
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600


def test_files_are_owner_only_even_with_a_permissive_umask(
    tmp_path: Path, token_server: FakeTokenServer
) -> None:
    token_server.handler = lambda seen: token_reply(ACCESS_NEW, REFRESH_NEW)
    db = tmp_path / "data" / "stayfresh.db"
    old = os.umask(0)
    try:
        store = SQLiteStore(db)
        keeper = Keeper(store, timeout=5.0)
        try:
            _secret_account(store, "acct", token_server.token_url)
            assert keeper.ensure_valid_token("acct").was_refreshed
            files = {
                "data dir": db.parent,
                "database": db,
                "-wal": Path(f"{db}-wal"),
                "-shm": Path(f"{db}-shm"),
                "lock dir": Path(f"{db}.locks"),
            }
            files.update({f"lock {p.name}": p for p in Path(f"{db}.locks").iterdir()})
            modes = {what: mode(path) for what, path in files.items()}
        finally:
            keeper.close()
            store.close()
    finally:
        os.umask(old)
    assert len(modes) >= 6, modes  # at least one lock file
    expected = {what: 0o700 if "dir" in what else 0o600 for what in modes}
    assert {k: oct(v) for k, v in modes.items()} == {k: oct(v) for k, v in expected.items()}


def test_cli_creates_private_files(tmp_path: Path) -> None:
    db = tmp_path / "new" / "stayfresh.db"
    proc = run_cli(
        "account", "add", "acct", "--provider", "oauth2",
        "--token-url", "http://127.0.0.1:9/token", "--client-id", CLIENT_ID,
        "--refresh-token-env", "SF_RT",
        db=db, env=SECRET_ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert mode(db.parent) == 0o700
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            assert mode(path) == 0o600, path


def test_refresh_writes_in_place_never_truncating(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    counter = {"n": 0}

    def rotate(seen: Seen) -> Reply:
        counter["n"] += 1
        return token_reply(f"at-{counter['n']}", f"rt-{counter['n']}")

    token_server.handler = rotate
    _secret_account(store, "acct", token_server.token_url)
    inode = os.stat(db_path).st_ino
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                st = os.stat(db_path)
            except FileNotFoundError:
                samples.append((-1, -1))
                continue
            samples.append((st.st_ino, st.st_size))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    keeper = Keeper(store, timeout=5.0)
    try:
        for _ in range(25):
            keeper.ensure_valid_token("acct", force=True)
    finally:
        keeper.close()
        stop.set()
        watcher.join()
    assert samples
    assert {ino for ino, _ in samples} == {inode}, "the database file was replaced"
    assert min(size for _, size in samples) > 0, "the database file was truncated"
    row = store.get_account("acct")
    assert row is not None
    assert (row.tokens.access_token, row.tokens.refresh_token) == ("at-25", "rt-25")
    assert os.stat(db_path).st_ino == inode


_WRITER = """
import sys
from stayfresh.store import SQLiteStore
from stayfresh.tokens import Keeper
store = SQLiteStore(sys.argv[1])
keeper = Keeper(store, timeout=30.0)
while True:
    keeper.ensure_valid_token("acct", force=True)
"""


def test_sigkilled_writer_leaves_tokens_readable(
    store: Store, db_path: Path, token_server: FakeTokenServer
) -> None:
    """A refreshing process killed at an arbitrary point (often mid-commit) loses nothing."""
    counter = {"n": 0}
    lock = threading.Lock()
    enough = threading.Event()

    def rotate(seen: Seen) -> Reply:
        with lock:
            counter["n"] += 1
            n = counter["n"]
        if n >= 40:
            enough.set()
        return token_reply(f"at-{n}", f"rt-{n}")

    token_server.handler = rotate
    _secret_account(store, "acct", token_server.token_url)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db_path)],
        env=_clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert enough.wait(60), "the writer did not refresh"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    row = store.get_account("acct")
    assert row is not None
    access, refresh = row.tokens.access_token, row.tokens.refresh_token
    assert access is not None and refresh is not None
    assert access.startswith("at-") and refresh == "rt-" + access[3:]  # one whole response
    assert row.version == int(access[3:]) + 1  # every earlier response was stored, in order
    # the dead process's lock is gone: this process refreshes at once
    keeper = Keeper(store, timeout=5.0, lock_timeout=5.0)
    try:
        result = keeper.ensure_valid_token("acct", force=True)
    finally:
        keeper.close()
    assert result.was_refreshed
    assert token_server.requests[-1].form["refresh_token"] == refresh
