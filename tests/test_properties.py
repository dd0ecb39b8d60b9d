"""Property-based tests: expiry parsing and token responses never crash.

Any input gives a value or a clear typed error: ``parse_expiry`` returns an
aware UTC datetime or raises :class:`ExpiryParseError` (a ``ValueError``);
``Provider.parse_response`` returns a :class:`TokenSet` or raises one of the
:class:`TokenError` subclasses, whatever the provider sends.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import html
import json
import re
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stayfresh.errors import ProviderError, ReauthRequired, TokenError, TransientError
from stayfresh.tokens import (
    ExpiryParseError,
    TokenSet,
    from_expires_in,
    get_provider,
    parse_expiry,
)
from stayfresh.tokens._scrub import MIN_SECRET, REDACTED, Scrubber

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
#: Java's Date.toString() names, fixed (never the locale's strftime)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: the fixed-offset zone names Java prints, with their offsets in hours
JAVA_ZONES = {"UTC": 0, "GMT": 0, "PST": -8, "PDT": -7, "EST": -5, "CET": 1, "JST": 9}

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------

#: aware datetimes the parser must round-trip (its range is 1970 … 9999-01-01)
instants = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 12, 30)).map(
    lambda d: d.replace(tzinfo=UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet="0123456789.-+ eE:TZtz/WMonTuesJanFebUTC²٣"),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.binary(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def java_string(d: dt.datetime, zone: str = "UTC") -> str:
    """``Date.toString()`` of ``d`` in ``zone`` (one of JAVA_ZONES)."""
    local = d.astimezone(dt.timezone(dt.timedelta(hours=JAVA_ZONES[zone])))
    return (
        f"{WEEKDAYS[local.weekday()]} {MONTHS[local.month - 1]} {local.day:02d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d} {zone} {local.year}"
    )


def assert_aware_utc(value: dt.datetime) -> None:
    assert isinstance(value, dt.datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == dt.timedelta(0)


# -- parse_expiry: never crashes ------------------------------------------------------


@SETTINGS
@given(value=anything)
@example(value=10**400)  # too large for a float
@example(value=-(10**400))
@example(value="9" * 400)
@example(value=float("nan"))
@example(value=float("inf"))
@example(value=True)
@example(value=None)
@example(value="Tue Nov 24 06:19:38 UTC 2026")
@example(value="Mon Nov 24 06:19:38 UTC 2026")  # wrong weekday
@example(value="Tue Feb 31 06:19:38 UTC 2026")
@example(value="Tue Nov 24 06:19:38 Nowhere/Zone 2026")
@example(value="Tue Nov 24 06:19:38 a:b 2026")
@example(value="²")
@example(value="0001-01-01T00:00:00+14:00")
@example(value="9999-12-31T23:59:59-14:00")
def test_parse_expiry_gives_aware_utc_or_expiry_parse_error(value: Any) -> None:
    try:
        result = parse_expiry(value)
    except ExpiryParseError as exc:
        assert isinstance(exc, ValueError)
        assert str(exc)
        return
    assert_aware_utc(result)


@SETTINGS
@given(value=anything, sent_at=st.datetimes(timezones=st.just(UTC)))
@example(value=10**400, sent_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
@example(value="3600", sent_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
@example(value=3600, sent_at=dt.datetime(9999, 12, 31, tzinfo=UTC))  # past datetime.max
def test_from_expires_in_gives_aware_utc_or_expiry_parse_error(
    value: Any, sent_at: dt.datetime
) -> None:
    try:
        result = from_expires_in(value, sent_at)
    except ExpiryParseError:
        return
    assert_aware_utc(result)


# -- parse_expiry: round trips ------------------------------------------------------------


@SETTINGS
@given(d=instants, tz=offsets)
def test_iso8601_round_trips(d: dt.datetime, tz: dt.timezone) -> None:
    assert parse_expiry(d.isoformat()) == d
    assert parse_expiry(d.astimezone(tz).isoformat()) == d
    assert parse_expiry(d.replace(tzinfo=None).isoformat()) == d  # no offset means UTC
    assert parse_expiry(d.strftime("%Y-%m-%dT%H:%M:%SZ")) == d.replace(microsecond=0)
    result = parse_expiry(d.astimezone(tz).replace(tzinfo=None).isoformat() + _offset(tz))
    assert result == d
    assert_aware_utc(result)


def _offset(tz: dt.timezone) -> str:
    minutes = int(tz.utcoffset(None).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


#: epoch seconds are read as milliseconds from 1e11 on (year 5138), so seconds
#: round-trip below that and milliseconds from 1e11 ms (1973-03-03) on
seconds_instants = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(5138, 1, 1)
).map(lambda d: d.replace(tzinfo=UTC))
ms_instants = st.datetimes(
    min_value=dt.datetime(1973, 3, 4), max_value=dt.datetime(9998, 12, 30)
).map(lambda d: d.replace(tzinfo=UTC))


@SETTINGS
@given(d=seconds_instants)
def test_epoch_seconds_round_trip(d: dt.datetime) -> None:
    whole = d.replace(microsecond=0)
    seconds = int((whole - EPOCH).total_seconds())
    assert parse_expiry(seconds) == whole
    assert parse_expiry(str(seconds)) == whole
    assert parse_expiry(float(seconds)) == whole
    result = parse_expiry(d.timestamp())
    assert_aware_utc(result)
    assert abs(result - d) < dt.timedelta(milliseconds=1)


@SETTINGS
@given(d=ms_instants)
def test_epoch_milliseconds_round_trip(d: dt.datetime) -> None:
    ms = (d - EPOCH) // dt.timedelta(milliseconds=1)
    expected = EPOCH + dt.timedelta(milliseconds=ms)
    for value in (ms, str(ms), float(ms)):
        result = parse_expiry(value)
        assert_aware_utc(result)
        assert abs(result - expected) < dt.timedelta(milliseconds=1), value


@SETTINGS
@given(d=instants, zone=st.sampled_from(sorted(JAVA_ZONES)))
@example(d=dt.datetime(2026, 11, 24, 6, 19, 38, tzinfo=UTC), zone="UTC")
def test_java_date_to_string_round_trips(d: dt.datetime, zone: str) -> None:
    local = d.astimezone(dt.timezone(dt.timedelta(hours=JAVA_ZONES[zone])))
    if not 1000 <= local.year <= 9999:
        return  # Java prints four-digit years only in this range
    result = parse_expiry(java_string(d, zone))
    assert_aware_utc(result)
    assert result == d.replace(microsecond=0)


def test_java_example_from_the_design() -> None:
    assert parse_expiry("Tue Nov 24 06:19:38 UTC 2026") == dt.datetime(
        2026, 11, 24, 6, 19, 38, tzinfo=UTC
    )


@SETTINGS
@given(
    seconds=st.integers(min_value=0, max_value=10 * 365 * 86400),
    sent_at=st.datetimes(
        min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9000, 1, 1), timezones=offsets
    ),
)
def test_from_expires_in_counts_from_send_time(seconds: int, sent_at: dt.datetime) -> None:
    for value in (seconds, float(seconds), str(seconds)):
        result = from_expires_in(value, sent_at)
        assert_aware_utc(result)
        assert result - sent_at == dt.timedelta(seconds=seconds)


# -- Provider.parse_response: never crashes ----------------------------------------------

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PREVIOUS = TokenSet(
    access_token="prev-access",
    refresh_token="prev-refresh",
    expires_at=NOW - dt.timedelta(minutes=1),
    scope="prev-scope",
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
token_keys = st.sampled_from(
    [
        "access_token",
        "refresh_token",
        "expires_in",
        "expires_at",
        "expires",
        "expiration",
        "expiry",
        "token_type",
        "scope",
        "error",
        "error_description",
        "message",
    ]
)
token_values = st.one_of(
    json_values,
    st.sampled_from(
        ["invalid_grant", "InvalidValue", "The request has an invalid parameter : source_token"]
    ),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(10**400),
    st.sampled_from(["Tue Nov 24 06:19:38 UTC 2026", "2026-01-01T00:00:00Z", "1e999", "3600"]),
    # tokens and token types at the edge of what providers may send (see _syntax.py)
    st.sampled_from(
        [
            "Atna|x",
            "a\r\nX-Injected: 1",
            "a\x00b",
            "\x1b[2J",
            "a\x85b",
            "a\x7fb",
            "a b",
            "a==",
            "=a",
            "é",
            "bearer",
            "BEARER",
            "mac",
            "DPoP",
            "a" * 20_000,
        ]
    ),
    st.text(alphabet=st.characters(max_codepoint=0xA0), max_size=20),
)
token_documents = st.dictionaries(token_keys, token_values, max_size=8)


def _encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(_encode),
    token_documents.map(_encode),
)
header_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=10**6).map(str),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: email.utils.format_datetime(d, usegmt=True)),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 -0000",  # naive on parsing
            "Wed, 21 Oct 2015 07:28:00 +9900",
            "Wed, 21 Oct 99999 07:28:00 GMT",
            "²",
            "٣٠",
            "9" * 400,
            "",
        ]
    ),
)
headers = st.fixed_dictionaries({}, optional={"date": header_values, "retry-after": header_values})
statuses = st.one_of(
    st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503]),
    st.integers(min_value=0, max_value=999),
)
EXPECTED = (ReauthRequired, TransientError, ProviderError)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@SETTINGS
@given(
    provider=st.sampled_from(["oauth2", "oidc", "amazon"]),
    status=statuses,
    headers=headers,
    body=bodies,
)
@example(provider="oauth2", status=200, headers={}, body=b"[" * 100_000)
@example(provider="oauth2", status=400, headers={}, body=b"{" * 100_000)
@example(
    provider="oauth2",
    status=200,
    headers={},
    body=b'{"access_token": "a", "expires_in": 1' + b"0" * 400 + b"}",
)
@example(
    provider="oauth2",
    status=200,
    headers={},
    body=b'{"access_token": "a", "expires_at": 1' + b"0" * 400 + b"}",
)
@example(provider="oauth2", status=429, headers={"retry-after": "²"}, body=b"")
@example(
    provider="oauth2",
    status=503,
    headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"},
    body=b"",
)
@example(
    provider="oauth2",
    status=200,
    headers={"date": "Wed, 21 Oct 2015 07:28:00 -0000"},
    body=b'{"access_token": "a", "expires_at": "2026-05-01T13:00:00Z"}',
)
@example(
    provider="oauth2",
    status=200,
    headers={"date": "Thu, 01 Jan 1970 00:00:00 GMT"},  # skew pushes past year 9999
    body=b'{"access_token": "a", "expires_at": "9998-12-31T00:00:00Z"}',
)
@example(
    provider="amazon",
    status=200,
    headers={"date": "Fri, 31 Dec 9999 00:00:00 GMT"},
    body=b'{"access_token": "a", "expires_at": "1970-01-02T00:00:00Z"}',
)
@example(provider="oauth2", status=200, headers={}, body=b'{"access_token": "a\\r\\nX: 1"}')
@example(provider="oauth2", status=200, headers={}, body=b'{"access_token": "Atna|x"}')
@example(provider="amazon", status=200, headers={}, body=b'{"access_token": "Atna|\\u001b"}')
@example(
    provider="oauth2",
    status=200,
    headers={},
    body=b'{"access_token": "a", "refresh_token": "r\\u0000", "token_type": "mac"}',
)
@example(provider="oauth2", status=400, headers={}, body=b'{"error": "x\\u001b]0;t\\u0007"}')
def test_parse_response_gives_tokens_or_typed_error(
    provider: str, status: int, headers: dict[str, str], body: bytes
) -> None:
    try:
        tokens = get_provider(provider).parse_response(
            status,
            headers,
            body,
            sent_at=NOW,
            received_at=NOW + dt.timedelta(milliseconds=20),
            previous=PREVIOUS,
        )
    except EXPECTED as exc:
        assert isinstance(exc, TokenError)
        assert str(exc)
        assert not CONTROL.search(str(exc))  # one printable line, whatever the server sent
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            assert exc.retry_after >= 0
        return
    assert isinstance(tokens, TokenSet)
    assert 200 <= status < 400
    assert isinstance(tokens.access_token, str)
    assert tokens.access_token
    assert tokens.refresh_token  # a new one, or the old one kept
    if tokens.expires_at is not None:
        assert_aware_utc(tokens.expires_at)
    # only tokens of the provider's declared syntax and type come through
    declared = get_provider(provider)
    assert declared.access_token_syntax.fullmatch(tokens.access_token)
    assert declared.refresh_token_syntax.fullmatch(tokens.refresh_token)
    assert tokens.token_type.lower() in declared.token_types
    assert not CONTROL.search(tokens.access_token + tokens.refresh_token + tokens.token_type)


@pytest.mark.parametrize("provider", ["oauth2", "oidc", "amazon"])
def test_parse_response_keeps_the_old_refresh_token(provider: str) -> None:
    tokens = get_provider(provider).parse_response(
        200,
        {},
        b'{"access_token": "new-access", "expires_in": 3600}',
        sent_at=NOW,
        received_at=NOW,
        previous=PREVIOUS,
    )
    assert tokens.access_token == "new-access"
    assert tokens.refresh_token == "prev-refresh"
    assert tokens.expires_at == NOW + dt.timedelta(hours=1)


# -- the secret scrubber: whatever the spelling, wherever the cut ------------------------

secrets_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x17F), min_size=4)
spellings = st.sampled_from(
    [
        lambda s: s,
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote(s, safe="").lower() if s.isascii() and s.islower() else s,
        urllib.parse.quote_plus,
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
        lambda s: html.escape(s),
        lambda s: base64.b64encode(s.encode()).decode(),
    ]
)


@SETTINGS
@given(
    secret=secrets_text, spell=spellings, before=st.text(max_size=30), after=st.text(max_size=30)
)
def test_scrubber_leaves_no_spelling_of_a_secret(
    secret: str, spell: Any, before: str, after: str
) -> None:
    form = spell(secret)
    scrubbed = Scrubber([secret])(before + form + after)
    assert form not in scrubbed or form in REDACTED


@SETTINGS
@given(secret=secrets_text, spell=spellings, before=st.text(max_size=30), data=st.data())
def test_scrubber_leaves_no_beginning_of_a_secret_at_a_cut(
    secret: str, spell: Any, before: str, data: st.DataObject
) -> None:
    """A provider cut its text after ``whole`` characters of a secret (and maybe mid-escape).

    Fewer than MIN_SECRET characters may stay: they are not worth guarding.
    """
    whole = data.draw(st.integers(min_value=MIN_SECRET, max_value=len(secret)))
    extra = data.draw(st.integers(min_value=0, max_value=2))
    cut = spell(secret)[: len(spell(secret[:whole])) + extra]
    scrubbed = Scrubber([secret])(f"{before} {cut}…")
    assert not scrubbed.endswith(f" {cut}…") or cut in REDACTED
