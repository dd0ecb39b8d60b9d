"""A real OAuth 2.0 / OpenID Connect server for the stayfresh tests.

The server is the npm package ``oidc-provider`` configured by
``tests/oidc/server.mjs`` (install it with ``npm ci --prefix tests/oidc``).
This module starts it on a free 127.0.0.1 port, drives its login pages over
HTTP the way a browser would (no shortcuts: real authorization-code flow with
PKCE, real device-flow verification pages), and exposes pytest fixtures.

Use from ``tests/conftest.py`` with either::

    pytest_plugins = ["oidc_server"]
    # or
    from oidc_server import *  # noqa: F403

Fixtures (all session-scoped, all servers are stopped at session end):

``oidc_server``
    refresh-token rotation on, access tokens live 60 s.
``oidc_server_norotate``
    rotation off (the same refresh token keeps working), access tokens 60 s.
``oidc_server_factory``
    ``oidc_server_factory(access_ttl=5, rotate=False, ...)`` starts and returns
    a new :class:`OIDCServer` with custom settings.

The servers are shared by the whole session: call
:meth:`OIDCServer.reset_stats` at the start of a test that checks counters.

If ``node`` or ``tests/oidc/node_modules`` is missing, tests that use these
fixtures are skipped, except when the ``CI`` environment variable is set: then
they fail, because CI must have the peer installed.

Only the standard library is used for HTTP (``urllib`` + ``http.cookiejar``),
with proxies disabled, so nothing here depends on the HTTP client under test.

PYTEST_DONT_REWRITE: this module has no asserts, and the marker lets it be both
imported by test modules and registered as a plugin in any order without
pytest's "already imported so cannot be rewritten" warning.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import pytest

__all__ = [
    "OIDC_DIR",
    "BrowserLoginResult",
    "OIDCFlowError",
    "OIDCServer",
    "OIDCServerError",
    "OIDCServerFactory",
    "oidc_peer_missing",
    "oidc_server",
    "oidc_server_factory",
    "oidc_server_norotate",
]

#: Directory holding ``package.json`` and ``server.mjs``.
OIDC_DIR: Path = Path(__file__).resolve().parent / "oidc"
SERVER_SCRIPT: Path = OIDC_DIR / "server.mjs"
INSTALL_HINT = "npm ci --prefix tests/oidc"

#: Client registrations; these must match ``CLIENTS`` in ``server.mjs``.
CONFIDENTIAL_CLIENT_ID = "stayfresh-confidential"
CONFIDENTIAL_CLIENT_SECRET = "stayfresh-secret"
PUBLIC_CLIENT_ID = "stayfresh-public"
#: Registered redirect URI.  Both clients are ``application_type: native``, so
#: oidc-provider also accepts it with any port (RFC 8252 section 7.3), e.g.
#: ``http://127.0.0.1:53123/callback``; path and host must match exactly.
LOOPBACK_REDIRECT_URI = "http://127.0.0.1/callback"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

ClientKind = Literal["confidential", "public"]
ClientAuth = Literal["basic", "post"]

_HTTP_TIMEOUT = 10.0
_START_TIMEOUT = 15.0
_MAX_FLOW_STEPS = 25


class OIDCServerError(RuntimeError):
    """The server could not be started or is not installed."""


class OIDCFlowError(RuntimeError):
    """A headless login (browser or device flow) did not complete."""


# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class _Response:
    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx responses back to the caller instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(
    *, cookies: CookieJar | None = None, follow_redirects: bool
) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if cookies is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(cookies))
    if not follow_redirects:
        handlers.append(_NoRedirect())
    return urllib.request.build_opener(*handlers)


def _request(
    opener: urllib.request.OpenerDirector,
    method: str,
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> _Response:
    """One HTTP request; HTTP error statuses are returned, not raised."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with opener.open(req, timeout=_HTTP_TIMEOUT) as resp:
            return _Response(resp.status, resp.geturl(), dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return _Response(err.code, err.geturl(), dict(err.headers.items()), err.read())


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 section 2.3.1: form-urlencode both parts before base64.
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


# --------------------------------------------------------------------------- HTML forms


@dataclass
class _Form:
    id: str | None
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, type)


class _FormParser(HTMLParser):
    """Collects <form>s and their <input>s (including ``form="id"`` inputs)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None
        self._detached: list[tuple[str, tuple[str, str, str]]] = []
        self.text_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = _Form(
                a.get("id") or None, a.get("action", ""), a.get("method", "get").lower()
            )
            self.forms.append(self._current)
        elif tag == "input" and a.get("name"):
            entry = (a["name"], a.get("value", ""), a.get("type", "text").lower())
            if a.get("form"):
                self._detached.append((a["form"], entry))
            elif self._current is not None:
                self._current.fields.append(entry)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    def close(self) -> None:
        super().close()
        for form_id, entry in self._detached:
            for form in self.forms:
                if form.id == form_id:
                    form.fields.append(entry)


def _parse_page(html: str) -> tuple[list[_Form], str]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms, " ".join(" ".join(parser.text_parts).split())


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BrowserLoginResult:
    """Outcome of :meth:`OIDCServer.complete_browser_login`."""

    #: Where the authorization server finally redirected the "browser".
    redirect_url: str
    #: ``code`` / ``state`` / ``error`` query parameters of that redirect.
    code: str | None
    state: str | None
    error: str | None
    #: Response of the loopback callback (``None`` if it was not requested).
    callback_status: int | None
    callback_body: bytes | None


# --------------------------------------------------------------------------- server


def oidc_peer_missing() -> str | None:
    """Why the Node.js server cannot run here, or ``None`` if it can."""
    if shutil.which(os.environ.get("OIDC_NODE", "node")) is None:
        return f"node is not installed (needed for the test OIDC server; then run `{INSTALL_HINT}`)"
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return f"oidc-provider is not installed in {OIDC_DIR}/node_modules; run `{INSTALL_HINT}`"
    return None


_RUNNING: weakref.WeakSet[OIDCServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


class OIDCServer:
    """One ``oidc-provider`` process on 127.0.0.1 and helpers to talk to it.

    >>> server = OIDCServer(access_ttl=60, rotate=True).start()
    >>> tokens = server.obtain_tokens()
    >>> server.stop()
    """

    client_id: str = CONFIDENTIAL_CLIENT_ID
    client_secret: str = CONFIDENTIAL_CLIENT_SECRET
    public_client_id: str = PUBLIC_CLIENT_ID
    redirect_uri: str = LOOPBACK_REDIRECT_URI

    def __init__(
        self,
        access_ttl: int = 60,
        rotate: bool = True,
        *,
        refresh_ttl: int | None = None,
        refresh_delay_ms: int = 0,
    ) -> None:
        """Configure (but do not start) a server.

        :param access_ttl: access token lifetime (``expires_in``), seconds.
        :param rotate: issue a new refresh token on every refresh and reject
            the old one (``rotateRefreshToken``).  Note that oidc-provider
            treats reuse of a rotated-out refresh token as theft and revokes
            the whole grant, so the newest refresh token stops working too.
        :param refresh_ttl: refresh token lifetime, seconds (default 14 days).
        :param refresh_delay_ms: server-side delay before each refresh grant
            is processed, to make concurrent refreshes overlap.
        """
        self.access_ttl = access_ttl
        self.rotate = rotate
        self.refresh_ttl = refresh_ttl
        self.refresh_delay_ms = refresh_delay_ms
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._issuer: str | None = None
        self._pump: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, access_ttl: int | None = None, rotate: bool | None = None) -> OIDCServer:
        """Spawn ``node tests/oidc/server.mjs`` and wait until it serves discovery.

        Returns ``self``.  Raises :class:`OIDCServerError` if the peer is not
        installed or the server does not come up.
        """
        if self._proc is not None:
            raise OIDCServerError("server already started")
        if access_ttl is not None:
            self.access_ttl = access_ttl
        if rotate is not None:
            self.rotate = rotate
        missing = oidc_peer_missing()
        if missing:
            raise OIDCServerError(missing)

        env = dict(os.environ)
        env.update(
            PORT="0",
            ACCESS_TTL=str(self.access_ttl),
            ROTATE="1" if self.rotate else "0",
            REFRESH_DELAY_MS=str(self.refresh_delay_ms),
            EXIT_ON_STDIN_EOF="1",
        )
        if self.refresh_ttl is not None:
            env["REFRESH_TTL"] = str(self.refresh_ttl)
        else:
            env.pop("REFRESH_TTL", None)

        fd, log_name = tempfile.mkstemp(prefix="stayfresh-oidc-", suffix=".log")
        self._log_path = Path(log_name)
        self._log = os.fdopen(fd, "wb", buffering=0)
        node = shutil.which(os.environ.get("OIDC_NODE", "node")) or "node"
        self._proc = subprocess.Popen(
            [node, str(SERVER_SCRIPT)],
            cwd=OIDC_DIR,
            env=env,
            stdin=subprocess.PIPE,  # closing it (or our death) makes the server exit
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        _RUNNING.add(self)

        ready = threading.Event()
        announced: dict[str, Any] = {}
        self._pump = threading.Thread(
            target=self._pump_stdout,
            args=(self._proc.stdout, self._log, ready, announced),
            name=f"oidc-server-stdout-{self._proc.pid}",
            daemon=True,
        )
        self._pump.start()

        deadline = time.monotonic() + _START_TIMEOUT
        while not ready.wait(0.02):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                problem = "exited" if self._proc.poll() is not None else "did not start in time"
                log = self.log_text()
                self.stop()
                raise OIDCServerError(f"test OIDC server {problem}; its output:\n{log}")
        self._issuer = str(announced["issuer"])

        while True:  # the port is open once announced; make sure the provider answers
            try:
                if (
                    _request(_opener(follow_redirects=True), "GET", self.discovery_url).status
                    == 200
                ):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.log_text()
                self.stop()
                raise OIDCServerError(
                    f"test OIDC server discovery never answered; its output:\n{log}"
                )
            time.sleep(0.02)
        return self

    @staticmethod
    def _pump_stdout(
        stream: IO[bytes] | None, log: IO[bytes], ready: threading.Event, announced: dict[str, Any]
    ) -> None:
        """Copy the server's stdout to the log, catching the readiness line.

        Runs in a thread until the server exits; it owns ``stream`` and
        closes it, so no other thread touches the pipe while it reads.
        """
        if stream is None:
            return
        with stream:
            for line in iter(stream.readline, b""):
                if not ready.is_set():
                    try:
                        message = json.loads(line)
                    except ValueError:
                        message = None
                    if isinstance(message, dict) and message.get("event") == "listening":
                        announced.update(message)
                        ready.set()
                        continue
                with contextlib.suppress(ValueError):  # log already closed by stop()
                    log.write(line)

    def stop(self) -> None:
        """Stop the server (idempotent) and delete its log."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._pump is not None:
            self._pump.join(timeout=5)  # EOF follows the exit; the pump closes stdout
            self._pump = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> OIDCServer:
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """The server's stderr/stdout so far (for debugging failures)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text("utf-8", "replace")

    # ------------------------------------------------------------ endpoints

    @property
    def issuer(self) -> str:
        if self._issuer is None:
            raise OIDCServerError("server not started")
        return self._issuer

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.issuer).port or 0)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_url_base(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def device_authorization_url(self) -> str:
        return f"{self.issuer}/device/auth"

    @property
    def device_verification_url(self) -> str:
        return f"{self.issuer}/device"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/token/revocation"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/me"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    # ------------------------------------------------------------ test control

    def stats(self) -> dict[str, Any]:
        """``GET /__stats``: token endpoint counters.

        Keys: ``token_requests`` (all POSTs to the token endpoint),
        ``refresh_grants`` (refresh_token grant requests, counted on arrival),
        ``refresh_success``, ``refresh_failure``, ``refresh_errors``
        (``{"invalid_grant": n, ...}``), ``grants`` (per grant type
        ``{"requests", "success", "failure"}``), ``refresh_in_flight``,
        ``refresh_max_in_flight`` and ``config``.
        """
        resp = _request(_opener(follow_redirects=False), "GET", f"{self.issuer}/__stats")
        if resp.status != 200:
            raise OIDCServerError(f"/__stats answered {resp.status}: {resp.text}")
        result: dict[str, Any] = resp.json()
        return result

    def reset_stats(self) -> None:
        """``POST /__reset``: zero all counters."""
        resp = _request(_opener(follow_redirects=False), "POST", f"{self.issuer}/__reset", form={})
        if resp.status != 200:
            raise OIDCServerError(f"/__reset answered {resp.status}: {resp.text}")

    # ------------------------------------------------------------ token endpoint

    def post_token(
        self,
        form: Mapping[str, str],
        *,
        client: ClientKind | None = "confidential",
        auth: ClientAuth = "basic",
    ) -> tuple[int, dict[str, Any]]:
        """POST ``form`` to the token endpoint; returns ``(status, json_body)``.

        ``client="confidential"`` authenticates with the client secret
        (``auth="basic"``: HTTP Basic, ``"post"``: in the body);
        ``client="public"`` sends ``client_id`` only; ``None`` adds nothing.
        """
        body = dict(form)
        headers = {"Accept": "application/json"}
        if client == "confidential":
            if auth == "basic":
                headers["Authorization"] = _basic_auth(self.client_id, self.client_secret)
            else:
                body.update(client_id=self.client_id, client_secret=self.client_secret)
        elif client == "public":
            body["client_id"] = self.public_client_id
        resp = _request(
            _opener(follow_redirects=False), "POST", self.token_url, form=body, headers=headers
        )
        try:
            payload = resp.json()
        except ValueError:
            payload = {"error": "non_json_response", "body": resp.text}
        return resp.status, payload

    def authorization_url(
        self,
        *,
        client: ClientKind = "confidential",
        redirect_uri: str | None = None,
        scope: str = "openid offline_access",
        state: str | None = None,
        code_challenge: str | None = None,
        prompt: str | None = "consent",
        **extra: str,
    ) -> str:
        """Build an authorization request URL (``response_type=code``, S256 PKCE).

        ``prompt=consent`` is needed for oidc-provider to keep the
        ``offline_access`` scope, i.e. to issue a refresh token.
        """
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.client_id if client == "confidential" else self.public_client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": scope,
            "state": state or secrets.token_urlsafe(16),
        }
        if code_challenge is not None:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        if prompt is not None:
            params["prompt"] = prompt
        params.update(extra)
        return f"{self.authorization_url_base}?{urllib.parse.urlencode(params)}"

    def obtain_tokens(
        self,
        scope: str = "openid offline_access",
        *,
        client: ClientKind = "confidential",
        username: str = "stayfresh-user",
    ) -> dict[str, Any]:
        """Log in through the real authorization-code flow with PKCE.

        Drives the login and consent pages over HTTP, exchanges the code and
        returns the token response (``access_token``, ``refresh_token`` when
        ``offline_access`` is in ``scope``, ``expires_in``, ``id_token``, ...).
        """
        verifier, challenge = _pkce_pair()
        state = secrets.token_urlsafe(16)
        url = self.authorization_url(
            client=client, scope=scope, state=state, code_challenge=challenge
        )
        redirect = self._drive_login(url, username=username)
        if redirect is None:
            raise OIDCFlowError("authorization flow ended without redirecting back to the client")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect).query))
        if "error" in query:
            raise OIDCFlowError(f"authorization failed: {query}")
        if query.get("state") != state:
            raise OIDCFlowError(f"state mismatch in {redirect}")
        status, tokens = self.post_token(
            {
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
            client=client,
        )
        if status != 200:
            raise OIDCFlowError(f"code exchange failed ({status}): {tokens}")
        return tokens

    def device_authorization(
        self, scope: str = "openid offline_access", *, client: ClientKind = "public"
    ) -> dict[str, Any]:
        """Start a device authorization (RFC 8628); returns the JSON response."""
        headers = {"Accept": "application/json"}
        form = {"scope": scope}
        if client == "confidential":
            headers["Authorization"] = _basic_auth(self.client_id, self.client_secret)
        else:
            form["client_id"] = self.public_client_id
        resp = _request(
            _opener(follow_redirects=False),
            "POST",
            self.device_authorization_url,
            form=form,
            headers=headers,
        )
        if resp.status != 200:
            raise OIDCFlowError(f"device authorization failed ({resp.status}): {resp.text}")
        result: dict[str, Any] = resp.json()
        return result

    # ------------------------------------------------------------ headless "browser"

    def complete_device_login(self, user_code: str, *, username: str = "stayfresh-user") -> None:
        """Approve a pending device authorization as the user would.

        Opens the verification page with ``user_code``, confirms the device,
        logs in and consents.  Afterwards the device's token polling succeeds.
        """
        url = f"{self.device_verification_url}?{urllib.parse.urlencode({'user_code': user_code})}"
        redirect = self._drive_login(url, username=username, device=True)
        if redirect is not None:
            raise OIDCFlowError(f"device login left the authorization server: {redirect}")

    def complete_browser_login(
        self,
        authorize_url: str,
        *,
        username: str = "stayfresh-user",
        follow_callback: bool = True,
    ) -> BrowserLoginResult:
        """Play the browser for an authorization URL made by a client.

        Logs in, consents, and then (unless ``follow_callback`` is false)
        really requests the final redirect, typically the client's loopback
        ``http://127.0.0.1:PORT/...`` listener, as a browser would.  An
        ``error`` redirect is followed and reported too; errors shown by the
        authorization server itself (e.g. a bad ``redirect_uri``) raise
        :class:`OIDCFlowError`.
        """
        redirect = self._drive_login(authorize_url, username=username)
        if redirect is None:
            raise OIDCFlowError("authorization flow ended without redirecting back to the client")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect).query))
        status: int | None = None
        body: bytes | None = None
        if follow_callback:
            resp = _request(_opener(follow_redirects=True), "GET", redirect)
            status, body = resp.status, resp.body
        return BrowserLoginResult(
            redirect_url=redirect,
            code=query.get("code"),
            state=query.get("state"),
            error=query.get("error"),
            callback_status=status,
            callback_body=body,
        )

    def _drive_login(self, start_url: str, *, username: str, device: bool = False) -> str | None:
        """Follow redirects and submit the provider's forms until done.

        Returns the first redirect target outside the issuer (the client's
        redirect URI), or ``None`` when a page without a form is reached (the
        device flow's success page).
        """
        browser = _opener(cookies=CookieJar(), follow_redirects=False)
        origin = self.issuer.rstrip("/") + "/"
        method, url = "GET", start_url
        form_data: dict[str, str] | None = None
        for _ in range(_MAX_FLOW_STEPS):
            resp = _request(browser, method, url, form=form_data)
            if resp.status in (301, 302, 303, 307, 308):
                location = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
                if not location.startswith(origin):
                    return location
                method, url, form_data = "GET", location, None
                continue
            if resp.status != 200:
                raise OIDCFlowError(f"{method} {url} answered {resp.status}: {resp.text[:2000]}")
            forms, text = _parse_page(resp.text)
            post_forms = [f for f in forms if f.method == "post"]
            if 'class="red"' in resp.text:  # device flow pages show errors in red
                raise OIDCFlowError(f"authorization server reported an error: {text[:500]}")
            if not post_forms:
                if device and "success" in text.lower():
                    return None
                raise OIDCFlowError(f"no form on {url}: {text[:500]}")
            form = post_forms[0]
            form_data = {}
            for name, value, kind in form.fields:
                if kind in ("submit", "button", "image", "reset"):
                    continue
                if not value and name == "login":
                    value = username
                elif not value and name == "password":
                    value = "password"
                form_data[name] = value
            method, url = "POST", urllib.parse.urljoin(url, form.action or url)
        raise OIDCFlowError(f"login did not finish within {_MAX_FLOW_STEPS} steps (last: {url})")

    def __repr__(self) -> str:
        where = self._issuer or "not started"
        return f"<OIDCServer {where} access_ttl={self.access_ttl} rotate={self.rotate}>"


# --------------------------------------------------------------------------- fixtures


class OIDCServerFactory(Protocol):
    """Type of the ``oidc_server_factory`` fixture."""

    def __call__(
        self,
        access_ttl: int = 60,
        rotate: bool = True,
        *,
        refresh_ttl: int | None = None,
        refresh_delay_ms: int = 0,
    ) -> OIDCServer: ...


def _require_peer() -> None:
    missing = oidc_peer_missing()
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide the test OIDC server: {missing}", pytrace=False)
    pytest.skip(f"test OIDC server unavailable: {missing}")


@pytest.fixture(scope="session")
def oidc_server_factory() -> Iterator[OIDCServerFactory]:
    """Start extra servers: ``oidc_server_factory(access_ttl=5, rotate=False)``.

    Every call starts a new server; all are stopped at the end of the session
    (call ``.stop()`` to free one earlier).
    """
    started: list[OIDCServer] = []

    def make(
        access_ttl: int = 60,
        rotate: bool = True,
        *,
        refresh_ttl: int | None = None,
        refresh_delay_ms: int = 0,
    ) -> OIDCServer:
        _require_peer()
        server = OIDCServer(
            access_ttl, rotate, refresh_ttl=refresh_ttl, refresh_delay_ms=refresh_delay_ms
        )
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def oidc_server(oidc_server_factory: OIDCServerFactory) -> OIDCServer:
    """Shared server: refresh-token rotation on, 60 s access tokens."""
    return oidc_server_factory(access_ttl=60, rotate=True)


@pytest.fixture(scope="session")
def oidc_server_norotate(oidc_server_factory: OIDCServerFactory) -> OIDCServer:
    """Shared server: refresh-token rotation off, 60 s access tokens."""
    return oidc_server_factory(access_ttl=60, rotate=False)
