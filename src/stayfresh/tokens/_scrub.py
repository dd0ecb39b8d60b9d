"""Scrub secrets out of texts we did not write, before they are shown or stored.

A token endpoint may repeat what it was sent: an ``error_description`` that
echoes the form, an HTML error page quoting the request, a proxy's message
with the ``Authorization`` header. Those texts become exception messages,
log lines, ``last_error`` and ``status_message`` in the store, and CLI
output, so every :class:`~stayfresh.errors.TokenError` raised while talking
to a provider passes through a :class:`Scrubber` built from the secrets the
request carried (and the account's other secrets) — see :meth:`Scrubber.guard`.

A secret is found however it was echoed: as is, percent-encoded (either hex
case, ``+`` for a space), JSON-escaped, HTML-escaped, or base64 (also the
``client_id:secret`` pair of HTTP Basic auth). A message cut short by a
provider's length limit (it ends in ``…``) loses a trailing piece of a
secret too, so no prefix of one survives the cut.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import html
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from ..errors import ProviderError, TokenError
from ._model import SECRET_CONFIG_KEYS, TokenSet

REDACTED = "[redacted]"
#: shorter values would blank ordinary words in every message (and guard nothing)
MIN_SECRET = 4
#: form fields that carry secrets in token, login and device requests
SECRET_FIELDS = frozenset(
    {
        "refresh_token", "source_token", "client_secret", "password", "device_serial",
        "code", "code_verifier", "device_code", "assertion", "client_assertion",
        "access_token", "subject_token", "actor_token",
    }
)  # fmt: skip
#: request headers whose values are credentials (a scheme word is kept apart)
_SECRET_HEADER_WORDS = ("authorization", "token", "secret", "cookie", "key", "password")
_TRUNCATED = "…"


def _any_case(digits: str) -> str:
    """Hex digits as a pattern matching either case (``7C`` and ``7c``)."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_pattern(char: str) -> str:
    """Every obvious spelling of one character of a secret, escapes before the raw one.

    (Escapes first: a greedy walk over a cut-off text must read ``&amp;`` as
    one ``&``, not as ``&`` followed by ``amp;``.)
    """
    options = ["".join("%" + _any_case(f"{b:02X}") for b in char.encode())]
    if ord(char) < 0x10000:
        options.append(r"\\u" + _any_case(f"{ord(char):04x}"))
    if not char.isalnum():
        options += [f"&#0*{ord(char)};", f"&#[xX]0*{_any_case(f'{ord(char):x}')};"]
        escaped = html.escape(char)
        if escaped != char:
            options.append(re.escape(escaped))
        if char == " ":
            options += [r"\+", r"\s+"]  # form encoding; whitespace folded into one line
        if char in '/"\\':
            options.append(re.escape("\\" + char))
    options.append(re.escape(char))
    return "(?:" + "|".join(options) + ")"


def _b64_forms(raw: bytes) -> list[str]:
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return sorted({std, std.rstrip("="), url, url.rstrip("=")}, key=len, reverse=True)


@functools.cache
def _char_regex(char: str) -> re.Pattern[str]:
    return re.compile(_char_pattern(char))


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    whole: re.Pattern[str]  # any secret in any spelling
    starts: list[tuple[str, re.Pattern[str]]]  # (secret, its first MIN_SECRET characters)
    b64: list[str]  # base64 spellings: their cut-off beginnings are found literally


class Scrubber:
    """Replaces every known secret in a text by ``[redacted]``. Callable on a string.

    Cheap to make: the patterns are compiled on first use, which only an
    error message needs (a successful refresh never pays for them).
    """

    def __init__(self, secrets: Iterable[str], *, client_id: str | None = None) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
        self._client_id = client_id
        self._compiled: _Compiled | None = None

    def _compile(self) -> _Compiled:
        literals: set[str] = set()
        for secret in self._secrets:
            literals.update(_b64_forms(secret.encode("utf-8")))
            if self._client_id:
                cid = self._client_id
                for pair in (f"{cid}:{secret}", f"{quote(cid, safe='')}:{quote(secret, safe='')}"):
                    literals.update(_b64_forms(pair.encode("utf-8")))
        b64 = sorted((x for x in literals if len(x) >= MIN_SECRET), key=len, reverse=True)
        spelled = ["".join(_char_pattern(c) for c in secret) for secret in self._secrets]
        whole = re.compile("|".join([re.escape(x) for x in b64] + spelled))
        starts = [
            (s, re.compile("".join(_char_pattern(c) for c in s[:MIN_SECRET])))
            for s in self._secrets
        ]
        return _Compiled(whole=whole, starts=starts, b64=b64)

    @classmethod
    def for_request(
        cls,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str],
        config: Mapping[str, Any],
        tokens: TokenSet | None = None,
    ) -> Scrubber:
        """The secrets of one request (form fields, credential headers) and of its account."""
        secrets = [str(v) for k, v in (data or {}).items() if k in SECRET_FIELDS]
        for name, value in headers.items():
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
                secrets.append(value)
                secrets.extend(value.split(None, 1)[1:])  # "Basic abc…" → "abc…"
        secrets += [str(config[k]) for k in SECRET_CONFIG_KEYS if config.get(k)]
        if tokens is not None:
            secrets += [t for t in (tokens.access_token, tokens.refresh_token) if t]
        client_id = config.get("client_id")
        return cls(secrets, client_id=str(client_id) if client_id else None)

    @classmethod
    def for_form(
        cls, body: bytes, headers: Mapping[str, str], config: Mapping[str, Any]
    ) -> Scrubber:
        """Like :meth:`for_request`, from a form body already encoded (``request.content``)."""
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        return cls.for_request(form, headers, config)

    def __call__(self, text: str) -> str:
        if not self._secrets:
            return text
        if self._compiled is None:
            self._compiled = self._compile()
        compiled = self._compiled
        text = compiled.whole.sub(REDACTED, text)
        if _TRUNCATED in text:
            *cut, rest = text.split(_TRUNCATED)
            text = _TRUNCATED.join([*(_cut_tail(part, compiled) for part in cut), rest])
        return text

    def error(self, exc: TokenError) -> TokenError:
        """Scrub ``exc``'s message and provider error code in place (type and fields stay)."""
        exc.args = tuple(self(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, ProviderError) and exc.error is not None:
            exc.error = self(exc.error)
        return exc

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Every :class:`TokenError` leaving the block is scrubbed first.

        Wraps the ``yield`` of a request in the refresh flow, so errors the
        driver throws in (transport failures) are scrubbed as well as those
        the provider raises while reading the reply.
        """
        try:
            yield
        except TokenError as exc:
            self.error(exc)
            raise


def _cut_tail(before: str, compiled: _Compiled) -> str:
    """``before`` without a trailing beginning of a secret (a provider cut the text there).

    Walks each secret character by character from where its first characters
    appear near the end, in any spelling; an escape cut in half (``%7``) counts.
    """
    end = len(before)
    for secret, start in compiled.starts:
        window = max(0, end - 12 * len(secret) - 12)  # the longest spelling is ~12 per character
        for found in start.finditer(before, window):
            pos, i = found.end(), MIN_SECRET
            while pos < end and i < len(secret):
                step = _char_regex(secret[i]).match(before, pos)
                if step is None:
                    break
                pos, i = step.end(), i + 1
            if pos == end or (end - pos <= 8 and before[pos] in "%\\&"):
                return before[: found.start()] + REDACTED
    for form in compiled.b64:
        at = before.find(form[:MIN_SECRET], max(0, end - len(form) + 1))
        while at != -1:
            if form.startswith(before[at:]):
                return before[:at] + REDACTED
            at = before.find(form[:MIN_SECRET], at + 1)
    return before
