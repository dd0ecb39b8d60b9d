"""The one outbound HTTP policy: every request stayfresh sends goes through here.

Token refreshes, OIDC discovery, logins, library pages, licenses and
downloads all call :func:`fetch` / :func:`afetch` (a whole, capped answer)
or :func:`stream` (a download's body, chunk by chunk). One place enforces:

- **No credential crosses an origin.** Credentials are passed apart from
  plain headers. A request that carries any (or userinfo in its URL) follows
  redirects only within its first origin (scheme, host and port); any other
  redirect raises :class:`~stayfresh.errors.UnsafeRedirect`. A request without
  credentials may follow another origin. No request ever follows https to
  http, and stayfresh never sends cookies (its requests carry their own
  credentials; a cookie jar would hand one host's cookies to another port).
  With ``Redirects.REFUSE`` the 3xx itself is the answer (the token endpoint:
  the provider reads it as an error, as it always has).
- **Bounded size.** The body is read in chunks and counted (decoded bytes):
  more than ``max_bytes`` (or a ``Content-Length`` above it) raises
  :class:`~stayfresh.errors.ResponseTooLarge` before anything is stored;
  memory grows with what was read, never past about twice the cap.
- **A real deadline.** ``timeout`` is a total per request: connect, send, the
  wait for headers, redirects and the whole body. The sync path bounds every
  socket operation by the time left (a network backend installed by
  :func:`new_client`, and a check between chunks for clients brought by the
  caller); the async path runs inside ``asyncio.timeout``. A stream may grant
  credit per byte received (``min_rate``): a large download may take as long
  as it keeps moving, a drip still ends.
- **Errors name the host, never the secret.** Failures become
  :class:`~stayfresh.errors.TransientError` (timeouts, refused connections,
  DNS) naming the URL as :func:`show_url` prints it: no userinfo, no query
  (signed URLs and API keys live there), no fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import time
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

import httpx2

from .errors import ResponseTooLarge, TransientError, UnsafeRedirect

KiB = 1024
MiB = 1024 * KiB
#: token endpoint, OIDC discovery, login and device endpoints
TOKEN_MAX_BYTES = 1 * MiB
#: one library page or license answer (generous for a page of a thousand items)
API_MAX_BYTES = 32 * MiB
#: redirect hops followed before giving up
MAX_REDIRECTS = 5
#: a download keeps its deadline moving while it averages at least this many bytes/s
DOWNLOAD_MIN_RATE = 64 * KiB
#: read size of :meth:`Body.chunks`
CHUNK = 256 * KiB
#: header names that are credentials wherever they appear (providers may add
#: their own, e.g. Amazon's ``x-amz-access-token``: pass those as ``credentials``)
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-amz-access-token", "x-api-key"}
)
#: total deadline for a client brought without any timeout of its own
DEFAULT_TIMEOUT = 30.0


class Redirects(StrEnum):
    """What to do with a 3xx answer."""

    #: the 3xx is the answer (token endpoints: the provider reports it)
    REFUSE = "refuse"
    #: follow: within the origin with credentials, anywhere without; never to http
    FOLLOW = "follow"


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, read within its cap. ``url`` is where it came from (after redirects)."""

    status_code: int
    headers: httpx2.Headers
    content: bytes
    url: str

    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def __repr__(self) -> str:  # the body may hold tokens
        return f"Answer({self.status_code} from {show_url(self.url)}, {len(self.content)} bytes)"


def show_url(url: str | httpx2.URL) -> str:
    """``url`` for a message or a log: scheme, host, port and path only.

    Userinfo (``user:password@``), the query (signed URLs, API keys) and the
    fragment are left out — always, so that no message needs a judgement call.
    """
    try:
        parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(str(url))
        host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host  # IPv6
        port = f":{parsed.port}" if parsed.port is not None else ""
        return f"{parsed.scheme}://{host}{port}{parsed.path}"
    except (httpx2.InvalidURL, ValueError, TypeError):
        return "(an unreadable URL)"


def new_client(timeout: float = DEFAULT_TIMEOUT) -> httpx2.Client:
    """A client whose socket operations never outlive a request's deadline.

    ``timeout`` is what :func:`client_timeout` reports for it. The client is
    made as httpx2 makes any client, so ``HTTPS_PROXY`` / ``NO_PROXY`` and the
    CA settings of the environment still apply; then every connection pool it
    holds (the direct one and each proxy's) gets the deadline backend. TLS
    verification stays on; redirects are handled by this module, not the client.
    """
    from ._http_deadline import DeadlineBackend  # loads httpcore, as the transport does

    client = httpx2.Client(timeout=timeout, follow_redirects=False)
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None:  # httpcore's network_backend hook, set after the fact
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return client


def new_async_client(timeout: float = DEFAULT_TIMEOUT) -> httpx2.AsyncClient:
    """An async client; its requests' deadlines are enforced by ``asyncio.timeout``."""
    return httpx2.AsyncClient(timeout=timeout, follow_redirects=False)


def client_timeout(client: httpx2.Client | httpx2.AsyncClient) -> float:
    """The total deadline to use with ``client``: the longest of its own timeouts.

    For code paths that are handed a client rather than a timeout (logins).
    """
    t = client.timeout
    found = [v for v in (t.connect, t.read, t.write, t.pool) if v is not None]
    return max(found) if found else DEFAULT_TIMEOUT


def fetch(
    client: httpx2.Client,
    method: str,
    url: str | httpx2.URL,
    *,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    redirects: Redirects = Redirects.FOLLOW,
    data: Mapping[str, str] | None = None,
    json: Any = None,
) -> Answer:
    """Send a request and read its whole answer under the policy (see the module)."""
    with deadline(timeout, None) as current, _translated(url, timeout):
        request = _first_request(client, method, url, headers, credentials, data, json, timeout)
        response = _open(client, request, redirects, credentials)
        try:
            _check_announced(response, max_bytes)
            body = _Capped(response, max_bytes)
            for chunk in response.iter_bytes():
                body.add(chunk)
                current.check()  # clients we did not make bound each read only
        finally:
            response.close()
        return Answer(response.status_code, response.headers, body.join(), str(response.url))


async def afetch(
    client: httpx2.AsyncClient,
    method: str,
    url: str | httpx2.URL,
    *,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    redirects: Redirects = Redirects.FOLLOW,
    data: Mapping[str, str] | None = None,
    json: Any = None,
) -> Answer:
    """Async twin of :func:`fetch`: the same rules, the deadline by ``asyncio.timeout``."""
    with _translated(url, timeout):
        async with asyncio.timeout(timeout):
            request = _first_request(client, method, url, headers, credentials, data, json, timeout)
            for hop in range(MAX_REDIRECTS + 1):
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    following = _next_request(request, response, redirects, credentials, hop)
                    if following is None:
                        _check_announced(response, max_bytes)
                        body = _Capped(response, max_bytes)
                        async for chunk in response.aiter_bytes():
                            body.add(chunk)
                        return Answer(
                            response.status_code, response.headers, body.join(), str(response.url)
                        )
                finally:
                    await response.aclose()
                request = following
    raise AssertionError("unreachable")  # pragma: no cover (_next_request caps the hops)


class Body:
    """A streamed answer whose headers are in: status, headers, and :meth:`chunks`."""

    def __init__(self, response: httpx2.Response, deadline: Deadline) -> None:
        self._response = response
        self._deadline = deadline
        self.status_code = response.status_code
        self.headers = response.headers
        self.url = str(response.url)

    def chunks(self, limit: int | None) -> Iterator[bytes]:
        """The body as sent (ask for ``identity``), refusing bytes beyond ``limit``.

        Every chunk earns deadline credit at the stream's ``min_rate``.
        """
        got = 0
        for chunk in self._response.iter_raw(CHUNK):
            got += len(chunk)
            if limit is not None and got > limit:
                raise ResponseTooLarge(
                    f"{show_url(self.url)} sent more than the {limit} bytes announced"
                )
            self._deadline.credit(len(chunk))
            self._deadline.check()
            yield chunk


@contextlib.contextmanager
def stream(
    client: httpx2.Client,
    method: str,
    url: str | httpx2.URL,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    redirects: Redirects = Redirects.FOLLOW,
    min_rate: float | None = DOWNLOAD_MIN_RATE,
) -> Iterator[Body]:
    """Send a request (redirects by the policy) and yield its answer for streaming.

    The deadline is ``timeout`` from now, moved ``1/min_rate`` s later per byte
    received; exceptions inside the ``with`` are translated like :func:`fetch`'s.
    """
    with deadline(timeout, min_rate) as current, _translated(url, timeout):
        request = _first_request(client, method, url, headers, credentials, None, None, timeout)
        response = _open(client, request, redirects, credentials)
        try:
            yield Body(response, current)
        finally:
            response.close()


# -- the rules ---------------------------------------------------------------------------


def _first_request(
    client: httpx2.Client | httpx2.AsyncClient,
    method: str,
    url: str | httpx2.URL,
    headers: Mapping[str, str] | None,
    credentials: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
    json: Any,
    timeout: float,
) -> httpx2.Request:
    request = client.build_request(
        method,
        url,
        headers={**(headers or {}), **(credentials or {})},
        data=data,
        json=json,
        timeout=timeout,  # per operation: the fallback bound for clients we did not make
    )
    request.headers.pop("cookie", None)
    return request


def _open(
    client: httpx2.Client,
    request: httpx2.Request,
    redirects: Redirects,
    credentials: Mapping[str, str] | None,
) -> httpx2.Response:
    """Send ``request``, following redirects by the policy; the answer's body is unread."""
    for hop in range(MAX_REDIRECTS + 1):
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            following = _next_request(request, response, redirects, credentials, hop)
        except BaseException:
            response.close()
            raise
        if following is None:
            return response
        response.close()
        request = following
    raise AssertionError("unreachable")  # pragma: no cover (_next_request caps the hops)


def _next_request(
    request: httpx2.Request,
    response: httpx2.Response,
    redirects: Redirects,
    credentials: Mapping[str, str] | None,
    hop: int,
) -> httpx2.Request | None:
    """The next hop, or None when ``response`` is the answer. Raises for unsafe redirects."""
    if redirects is Redirects.REFUSE or not response.has_redirect_location:
        return None
    following = response.next_request
    where = show_url(request.url)
    if following is None:
        raise UnsafeRedirect(f"{where} redirected to an unreadable location")
    if hop >= MAX_REDIRECTS:
        raise UnsafeRedirect(f"{where}: more than {MAX_REDIRECTS} redirects")
    target = following.url
    if request.url.scheme == "https" and target.scheme != "https":
        raise UnsafeRedirect(f"{where} redirected from https to http ({show_url(target)}); refused")
    # every hop so far stayed on the first origin when credentials are involved, so
    # comparing with this hop's origin is comparing with the first one
    credentialed = (
        bool(credentials)
        or bool(request.url.userinfo)
        or any(name.lower() in CREDENTIAL_HEADERS for name in request.headers)
    )
    if credentialed and target.origin != request.url.origin:
        raise UnsafeRedirect(
            f"{where} redirected a request carrying credentials to another origin "
            f"({show_url(target)}); refused, nothing was sent there"
        )
    following.headers.pop("cookie", None)
    return following


def _check_announced(response: httpx2.Response, max_bytes: int) -> None:
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise ResponseTooLarge(_too_large(response, max_bytes, f"announces {announced} bytes"))


class _Capped:
    """The chunks of one answer, refused once they would pass ``max_bytes``.

    Chunks are kept in a list and joined once at the end: a growing buffer
    would be copied on every resize (briefly twice the cap), and a chunk that
    would pass the cap is refused before it is kept.
    """

    __slots__ = ("chunks", "max_bytes", "response", "size")

    def __init__(self, response: httpx2.Response, max_bytes: int) -> None:
        self.response = response
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.chunks.clear()
            raise ResponseTooLarge(_too_large(self.response, self.max_bytes, "sent more"))
        self.chunks.append(chunk)

    def join(self) -> bytes:
        body = b"".join(self.chunks)
        self.chunks.clear()
        return body


def _too_large(response: httpx2.Response, max_bytes: int, what: str) -> str:
    return (
        f"{show_url(response.request.url)} {what}: more than the {max_bytes} bytes "
        "allowed for this answer; nothing was kept"
    )


@contextlib.contextmanager
def _translated(url: str | httpx2.URL, timeout: float) -> Iterator[None]:
    """Transport failures become :class:`TransientError` naming the host, not the secrets."""
    where = show_url(url)
    try:
        yield
    except (httpx2.TimeoutException, TimeoutError):
        raise TransientError(
            f"{where} timed out (no complete answer within {timeout:g} s)"
        ) from None
    except httpx2.TransportError as exc:
        raise TransientError(f"cannot reach {where}: {type(exc).__name__}: {exc}") from None


# -- the deadline -----------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Deadline:
    """When the current request must be over (``time.monotonic``), and its credit rate."""

    at: float
    timeout: float
    min_rate: float | None = None

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            # a TimeoutError passes through httpcore untouched and is reported as a timeout
            raise TimeoutError(f"total deadline of {self.timeout:g} s reached")
        return left

    def check(self) -> None:
        self.left()

    def credit(self, received: int) -> None:
        if self.min_rate:
            self.at += received / self.min_rate


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "stayfresh_http_deadline", default=None
)


@contextlib.contextmanager
def deadline(timeout: float, min_rate: float | None) -> Iterator[Deadline]:
    """The deadline of the request made inside the ``with`` (seen by the network backend)."""
    current = Deadline(time.monotonic() + timeout, timeout, min_rate)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def time_left(timeout: float | None) -> float | None:
    """``timeout`` shortened to what the current request has left (for the network backend)."""
    current = _current.get()
    if current is None:
        return timeout
    left = current.left()
    return left if timeout is None else min(timeout, left)
