"""Bad input, from the command line, files or servers: a value or a typed error, never a traceback.

Hypothesis drives every parser of outside input that is not a token or an
RRULE (the duration option type, the expiry parsers, ``--input`` JSON, name
rules, the bounded secret reader, auth files, library pages, settings) and
accepts only two outcomes: a bounded value, or the typed error that becomes
exit 2. Hangs are caught by the pytest timeout (no wall-clock assertions).
Then real ``stayfresh`` subprocesses get the worst of it and must answer
exit 2 with one line on stderr, leaving the database (SQLite and
PostgreSQL) exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import invoke_cli
from stayfresh._input import MAX_DURATION, MAX_JSON_DEPTH, json_depth
from stayfresh.audible import AudibleSource
from stayfresh.cli._params import DURATION, ITEM_ID, JSON_OBJECT, POSITIVE_DURATION, TAG, WORK_NAME
from stayfresh.cli._secrets import MAX_SECRET_BYTES, read_limited, read_secret
from stayfresh.errors import ConfigError
from stayfresh.jobs._settings import DEFAULTS, validate_setting
from stayfresh.jobs.sources import JsonSource, LibraryError, Page, Position
from stayfresh.tokens import Account, TokenSet
from stayfresh.tokens._accounts import check_name as check_account_name
from stayfresh.tokens._expiry import ExpiryParseError, parse_expiry, parse_expiry_input
from stayfresh.tokens._import import ImportedAccount, read_import_file
from stayfresh.work import WorkRequest

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------

units = st.sampled_from(["", "ms", "s", "m", "h", "d", "w", "y", "M", "x", " "])
numbers = st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,6})?(e[+-]?[0-9]{1,4})?", fullmatch=True)
duration_texts = st.one_of(
    st.text(max_size=80),
    st.lists(st.tuples(numbers, units), min_size=1, max_size=4).map(
        lambda parts: "".join(n + u for n, u in parts)
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


def nesting(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


def one_line_usage_error(exc: click.BadParameter) -> None:
    assert exc.exit_code == 2
    message = exc.format_message()
    assert "\n" not in message and len(message) < 400


# -- the duration option type: every duration option of every command ----------------------


@FUZZ
@given(st.one_of(duration_texts, st.floats(), st.integers()))
@example("99999999999d")
@example("1e400s")
@example("nan")
@example(float("nan"))
@example(float("inf"))
@example(10**400)
@example("9" * 400)
@example("100000y")
@example("-5m")
def test_duration_option_is_a_bounded_number_or_a_usage_error(value: object) -> None:
    for param_type in (DURATION, POSITIVE_DURATION):
        try:
            seconds = param_type.convert(value, None, None)
        except click.BadParameter as exc:
            one_line_usage_error(exc)
            continue
        assert isinstance(seconds, float) and 0 <= seconds <= MAX_DURATION
        assert param_type is DURATION or seconds > 0


# -- expiry: the server's forms and the user's "+45m" --------------------------------------

expiry_texts = st.one_of(
    st.text(max_size=120),
    duration_texts.map(lambda d: "+" + d),
    st.datetimes(timezones=st.just(UTC) | st.none()).map(dt.datetime.isoformat),
    st.builds(
        lambda when, zone: when.strftime(f"%a %b %d %H:%M:%S {zone} %Y"),
        st.datetimes(min_value=dt.datetime(1, 1, 1)),
        st.sampled_from(["UTC", "PST", "Europe/Berlin", "Nowhere/Land", "X" * 50]),
    ),
    numbers,
)


@FUZZ
@given(st.one_of(expiry_texts, st.floats(), st.integers(), st.none(), st.booleans()))
@example("+99999999999d")
@example("+1e400s")
@example("1" * 200)
@example("Tue Nov 24 06:19:38 UTC 2026")
@example("+3650d")
def test_expiry_parsers_give_an_aware_time_or_an_expiry_error(value: object) -> None:
    results = []
    for parse in (parse_expiry, lambda v: parse_expiry_input(v, NOW)):
        if parse is not parse_expiry and not isinstance(value, str):
            continue
        try:
            results.append(parse(value))
        except ExpiryParseError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 300
    for when in results:
        assert when.utcoffset() == dt.timedelta(0)
        assert dt.datetime(1970, 1, 1, tzinfo=UTC) <= when <= dt.datetime(9999, 1, 1, tzinfo=UTC)


# -- ``work add --input``: size and depth checked before json.loads ----------------------------


@FUZZ
@given(json_values)
def test_json_depth_scan_is_the_real_nesting(value: Any) -> None:
    assert json_depth(json.dumps(value)) == nesting(value)


@FUZZ
@given(
    st.one_of(
        st.text(alphabet='[]{}",:\\ 01a', max_size=300),
        st.integers(0, 60_000).map(lambda n: "[" * n),
        st.integers(0, 12_000).map(lambda n: '{"a":' * n),
        json_values.map(json.dumps),
    )
)
@example("[" * 60_000)
@example('"' + '\\"' * 30_000)  # an unterminated string: the scan stays linear
@example(json.dumps({"a": "x" * 70_000}))
@example("[1, 2]")
def test_input_option_is_an_object_or_a_usage_error(text: str) -> None:
    try:
        data = JSON_OBJECT.convert(text, None, None)
    except click.BadParameter as exc:
        one_line_usage_error(exc)
        return
    assert isinstance(data, dict) and nesting(data) <= MAX_JSON_DEPTH


# -- names: work names, tags, item ids, account names -------------------------------------


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")


@FUZZ
@given(st.text(max_size=300))
@example("x" * 201)
@example("y" * 100_000)
@example("a b")
@example("-rf")
@example("token-refresh:alice/1")
@example("line\nbreak")
def test_name_types_accept_safe_names_only(text: str) -> None:
    for param_type in (WORK_NAME, TAG, ITEM_ID):
        try:
            value = param_type.convert(text, None, None)
        except click.BadParameter as exc:
            one_line_usage_error(exc)
            continue
        assert value == text and 0 < len(value) <= 200 and "\n" not in value
        if param_type is not ITEM_ID:
            assert set(value) <= SAFE | set(":/")
    try:
        assert check_account_name(text) == text
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
    else:
        assert len(text) <= 100 and set(text) <= SAFE


# -- secrets and account files: bounded reads ------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 * MAX_SECRET_BYTES), st.binary(min_size=1, max_size=64))
def test_bounded_reader_returns_the_file_or_refuses_it(size: int, pattern: bytes) -> None:
    content = (pattern * (size // len(pattern) + 1))[:size]
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(content)
        handle.flush()
        try:
            assert read_limited(handle.name, MAX_SECRET_BYTES, "secret") == content
            assert size <= MAX_SECRET_BYTES
        except ConfigError as exc:
            assert size > MAX_SECRET_BYTES and "larger than 64 KiB" in str(exc)
        try:
            secret = read_secret("refresh token", None, handle.name)
        except ConfigError as exc:
            assert "\n" not in str(exc)
        else:
            assert secret and secret == secret.strip() and len(secret) <= MAX_SECRET_BYTES


def test_an_endless_file_is_refused_after_the_cap() -> None:
    with pytest.raises(ConfigError, match="larger than 64 KiB"):
        read_secret("refresh token", None, "/dev/zero")


audible_keys = st.sampled_from(
    ["adp_token", "locale_code", "device_info", "website_cookies", "device_private_key",
     "access_token", "refresh_token", "expires", "provider", "token_url", "locale",
     "device_serial_number", "ciphertext", "salt", "iv", "tokens", "expires_at"]
)  # fmt: skip


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.dictionaries(audible_keys, json_values, max_size=8).map(
            lambda d: json.dumps(d).encode()
        ),
        st.integers(0, 50_000).map(lambda n: b"[" * n),
    ),
    st.none() | st.just("pw"),
)
def test_auth_files_give_an_account_or_a_config_error(raw: bytes, password: str | None) -> None:
    try:
        imported = read_import_file(raw, password=password)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(imported, ImportedAccount)


# -- library pages from a server -----------------------------------------------------------


def _account(config: dict[str, Any]) -> Account:
    tokens = TokenSet(access_token=None, expires_at=None, refresh_token="r")
    return Account(
        name="a", provider="oauth2", config=config, tokens=tokens, version=1, status="ok"
    )


SOURCES = [
    AudibleSource(_account({"api_url": "http://127.0.0.1:9", "library_page_size": 2})),
    JsonSource(
        _account({"library": {"url": "https://x/y", "items": "data", "total_path": "meta.total"}})
    ),
    JsonSource(_account({"library": {"url": "https://x/y", "items": "", "mode": "cursor"}})),
]
items = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"asin": json_values | st.text(max_size=300), "id": json_values,
                      "title": json_values, "authors": json_values}
    ),
)  # fmt: skip
pages = st.fixed_dictionaries(
    {},
    optional={
        "items": st.lists(items, max_size=4) | json_values,
        "data": st.lists(items, max_size=4) | json_values,
        "meta": st.fixed_dictionaries({"total": json_values}),
        "next_cursor": json_values | st.text(max_size=3000),
    },
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        pages.map(lambda p: json.dumps(p).encode()),
        st.lists(items, max_size=4).map(lambda p: json.dumps(p).encode()),
    ),
    st.dictionaries(st.just("total-count"), st.text(max_size=30)),
)
@example(b"[" * 100_000, {})
@example(b'{"items": [], "data": [], "meta": {"total": Infinity}}', {"total-count": "1e400"})
@example(b'{"items": [1, "x"], "data": [[]]}', {})
def test_library_pages_give_a_page_or_a_page_error(body: bytes, headers: dict[str, str]) -> None:
    for source in SOURCES:
        try:
            page = source.parse_page(Position(page=1), headers, body)
        except (ValueError, LibraryError):
            continue
        assert isinstance(page, Page)
        for item in page.items:
            try:
                item_id, _title, _authors = source.describe_item(item)
            except ValueError:
                continue
            assert 0 < len(item_id) <= 200


# -- settings values -----------------------------------------------------------------------


@FUZZ
@given(st.sampled_from(list(DEFAULTS)) | st.text(max_size=40), st.text(max_size=200))
@example("token_refresh_interval", "1e400")
@example("sync_frequency", "x" * 10_000)
def test_settings_give_a_normal_value_or_a_config_error(key: str, value: str) -> None:
    try:
        name, normalized = validate_setting(key, value, environ={})
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    assert validate_setting(name, normalized, environ={}) == (name, normalized)


# -- the real command: exit 2, one line, the database untouched -----------------------------

QUIET = {"STAYFRESH_NOTIFY_FOREGROUND": "0", "RT": "refresh-secret"}
ADD = ("work", "add", "x", "--worker", "noop")
NEW_ACCOUNT = ("account", "add", "acct", "--provider", "oauth2", "--token-url", "https://x/t")
TOKENS_FROM_ENV = ("--refresh-token-env", "RT", "--access-token-env", "RT")
BAD_COMMANDS: list[tuple[tuple[str, ...], str]] = [
    ((*ADD, "--every", "99999999999d"), "at most 3650d"),
    ((*ADD, "--every", "1e400s"), "not a duration"),
    ((*ADD, "--every", "-5m"), "not a duration"),
    ((*ADD, "--every", "100000y"), "not a duration"),
    ((*ADD, "--every", "1m"), "at least 15m"),
    ((*ADD, "--every", "1h", "--flex", "0"), "more than 0"),
    ((*ADD, "--timeout", "nan"), "not a duration"),
    ((*ADD, "--timeout", "inf"), "not a duration"),
    ((*ADD, "--timeout", "-1"), "not a duration"),
    ((*ADD, "--timeout", "0"), "more than 0"),
    ((*ADD, "--delay", "1e400"), "not a duration"),
    ((*ADD, "--backoff-delay", "inf"), "not a duration"),
    ((*ADD, "--input", "[" * 60_000), "deeper than 32"),
    ((*ADD, "--input", json.dumps({"a": "x" * 70_000})), "larger than 64 KiB"),
    ((*ADD, "--tag", "bad tag"), "invalid tag"),
    (("work", "add", "x" * 201, "--worker", "noop"), "invalid work name"),
    (("work", "add", "x", "--worker", "no_such_module_xyz:run"), "cannot load worker"),
    (("work", "add", "x", "--worker", "os:sep"), "is not callable"),
    (("work", "history", "seed", "--limit", "-5"), "not in the range"),
    (("daemon", "--lease", "0"), "at least 1s"),
    (("daemon", "--grace", "nan"), "not a duration"),
    (("token", "acct", "--timeout", "nan"), "not a duration"),
    (("token", "acct", "--threshold", "inf"), "not a duration"),
    (("login", "acct", "--timeout", "inf"), "not a duration"),
    ((*NEW_ACCOUNT, "--refresh-token-file", "/dev/zero"), "larger than 64 KiB"),
    ((*NEW_ACCOUNT, *TOKENS_FROM_ENV, "--expires-at", "+99999999999d"), "at most 3650d"),
    (("account", "import", "acct", "/dev/zero"), "larger than 5120 KiB"),
    (("settings", "set", "token_refresh_interval", "1e400"), "not a duration"),
    (("settings", "set", "sync_frequency", "x" * 10_000), "one of manual"),
    (("download", "acct", "x" * 300), "invalid item id"),
    (("work", "list", "--db", "/proc/no/such.db"), "cannot open /proc/no/such.db"),
]


def dump(db: str) -> list[Any]:
    """Every row of every table, to compare a database before and after a command."""
    if "://" not in db:
        with sqlite3.connect(db) as conn:
            return list(conn.iterdump())
    import psycopg

    with psycopg.connect(db) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "ORDER BY table_name"
        )]  # fmt: skip
        return [(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables]


def check_refused(db: str, args: tuple[str, ...], message: str, stdin: str | None = None) -> None:
    before = dump(db)
    done = invoke_cli("--db", db, *args, env=QUIET, input=stdin)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert message in lines[0] and len(lines[0]) <= 500
    assert done.stdout == ""
    assert dump(db) == before


def seeded(db: str) -> str:
    done = invoke_cli(
        "--db", db, "work", "add", "seed", "--worker", "noop", "--delay", "1h", env=QUIET
    )
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return seeded(str(tmp_path_factory.mktemp("cli-input") / "s.db"))


@pytest.mark.parametrize(("args", "message"), BAD_COMMANDS, ids=lambda v: str(v)[:40])
def test_bad_input_is_exit_2_one_line_and_changes_nothing(
    sqlite_db: str, args: tuple[str, ...], message: str
) -> None:
    check_refused(sqlite_db, args, message)


def test_a_huge_secret_on_stdin_is_refused(sqlite_db: str) -> None:
    check_refused(
        sqlite_db, (*NEW_ACCOUNT, "--refresh-token-file", "-"), "larger than 64 KiB", "x" * 70_000
    )


def test_a_huge_sink_url_on_stdin_is_refused(sqlite_db: str) -> None:
    """`notify sink add -` reads one line, and at most 64 KiB of it."""
    check_refused(
        sqlite_db, ("notify", "sink", "add", "-"), "longer than 64 KiB", "x" * 70_000 + "\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*ADD, "--every", "1m"), "at least 15m"),
        ((*ADD, "--input", "[" * 60_000), "deeper than 32"),
        (("settings", "set", "token_refresh_interval", "1e400"), "not a duration"),
        ((*NEW_ACCOUNT, "--refresh-token-file", "/dev/zero"), "larger than 64 KiB"),
    ],
)
def test_bad_input_changes_nothing_on_postgres(
    pg_url: str, args: tuple[str, ...], message: str
) -> None:
    check_refused(seeded(pg_url), args, message)


def test_minimum_interval_lowered_by_the_environment_is_accepted(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    done = invoke_cli("--db", db, *ADD, "--every", "1m", env={**QUIET, "STAYFRESH_MIN_INTERVAL": "60"})
    assert done.returncode == 0, done.stderr
    assert "every 1m" in done.stdout
    assert os.path.exists(db)


def test_the_python_api_refuses_what_the_command_refuses() -> None:
    """WorkRequest checks tags and input itself: a script gets ConfigError, not RecursionError."""
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(ConfigError, match="nests too deeply"):
        WorkRequest(worker="noop", input=deep)
    with pytest.raises(ConfigError, match="invalid tag"):
        WorkRequest(worker="noop", tags=("bad tag",))
    with pytest.raises(ConfigError, match="at most 3650d"):
        WorkRequest(worker="noop", every="99999999999d")
