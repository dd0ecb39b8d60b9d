"""What a token may look like before we store it, print it or put it in a header.

An access token goes into an ``Authorization`` header and onto stdout
(``stayfresh token``); a refresh token into forms and the database. A token
with a CR/LF could split a header, one with ESC could rewrite a terminal, and
a NUL or a megabyte of junk has no business in either. So tokens are checked
where they come in (a provider's response, an import, ``account add``) and
refused with a message that describes the offending character by its code
point, never by quoting the token.

Providers declare their syntax (:attr:`~._providers.Provider.access_token_syntax`
and friends): RFC 6750's ``b64token`` by default; a provider whose tokens
hold other characters declares its own pattern (Amazon's ``Atna|…`` tokens:
:class:`stayfresh.audible.AmazonProvider`).

Provider texts (``error_description``, an HTML page's title) get the same
care: :func:`one_line` makes them one printable line of bounded length
before they go into an error message (and through the secret scrubber).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection
from typing import Any

from ._model import TokenSet

#: RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: RFC 6749 Appendix A: VSCHAR = %x20-7E (refresh tokens, and access tokens in general)
VSCHAR = re.compile(r"[\x20-\x7e]+")
#: visible ASCII without space (e.g. Amazon's ``Atna|…`` access tokens)
VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
#: longer than any header a server accepts (nginx's default buffer is 8 KiB)
MAX_TOKEN_LENGTH = 16 * 1024
#: ``token_type`` values every provider accepts (compared in lower case)
BEARER = frozenset({"bearer"})


def syntax_problem(what: str, value: str, syntax: re.Pattern[str]) -> str | None:
    """Why ``value`` is not a valid ``what`` (None if it is), without quoting it."""
    if len(value) > MAX_TOKEN_LENGTH:
        return f"the {what} is {len(value)} characters long (at most {MAX_TOKEN_LENGTH})"
    if syntax.fullmatch(value):
        return None
    match = syntax.match(value)
    at = match.end() if match else 0
    if at >= len(value):  # the pattern matched a prefix only in a way fullmatch refused
        at = len(value) - 1
    return (
        f"the {what} has a character outside the provider's token syntax "
        f"(U+{ord(value[at]):04X} at position {at})"
    )


def token_problem(
    tokens: TokenSet,
    *,
    access_syntax: re.Pattern[str],
    refresh_syntax: re.Pattern[str],
    token_types: Collection[str],
) -> str | None:
    """The first reason ``tokens`` must be refused, or None when they are fine."""
    if tokens.access_token is not None:
        problem = syntax_problem("access token", tokens.access_token, access_syntax)
        if problem:
            return problem
    if tokens.refresh_token is not None:
        problem = syntax_problem("refresh token", tokens.refresh_token, refresh_syntax)
        if problem:
            return problem
    kind = tokens.token_type
    if kind.lower() not in token_types:
        shown = kind if VISIBLE_ASCII.fullmatch(kind) and len(kind) <= 40 else "(unreadable)"
        return f"token_type {shown!r} is not one this provider declares ({', '.join(token_types)})"
    return None


# -- provider texts: one printable, bounded line ---------------------------------------


def json_body(body: bytes) -> Any:
    """The decoded JSON of a reply, or None when it is not JSON (any depth, any bytes)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
        return None


_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


#: C0, DEL and C1 controls: a provider's text must not move a terminal's cursor
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int) -> str:
    """A provider's text as one printable line of at most ``limit`` characters.

    Printed as is (not as a repr, which would escape what the secret scrubber
    must still recognise); control characters become spaces, runs of spaces one.
    """
    text = " ".join(CONTROL.sub(" ", text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def short_text(body: bytes, limit: int = 120) -> str:
    """One line for an error message: an HTML page's title, or the body's start."""
    text = body[:65536].decode("utf-8", "replace")
    title = _TITLE_RE.search(text)
    if title and title.group(1).strip():
        text = html.unescape(title.group(1))
    return one_line(text, limit)
