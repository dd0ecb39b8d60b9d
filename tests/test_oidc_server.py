"""Self-test of the test OIDC server harness (tests/oidc_server.py).

Everything here talks to the real oidc-provider process with plain urllib, so
a failure points at the harness, not at stayfresh.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from oidc_server import DEVICE_CODE_GRANT, OIDCFlowError, OIDCServer, OIDCServerFactory

# Registers the fixtures even without a conftest.py doing so (idempotent if it does).

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def refresh_basic(server: OIDCServer, refresh_token: str) -> tuple[int, dict[str, Any]]:
    """A refresh_token grant with client_secret_basic, spelled out in urllib."""
    credentials = f"{server.client_id}:{server.client_secret}".encode()
    req = urllib.request.Request(
        server.token_url,
        data=urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        ).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with NO_PROXY.open(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)


def test_discovery_and_endpoints(oidc_server: OIDCServer) -> None:
    with NO_PROXY.open(oidc_server.discovery_url, timeout=10) as resp:
        meta = json.load(resp)
    assert meta["issuer"] == oidc_server.issuer
    assert oidc_server.issuer.startswith("http://127.0.0.1:")
    assert meta["token_endpoint"] == oidc_server.token_url
    assert meta["device_authorization_endpoint"] == oidc_server.device_authorization_url
    assert meta["revocation_endpoint"] == oidc_server.revocation_url
    assert "refresh_token" in meta["grant_types_supported"]
    assert DEVICE_CODE_GRANT in meta["grant_types_supported"]


def test_obtain_tokens_and_refresh_with_rotation(oidc_server: OIDCServer) -> None:
    oidc_server.reset_stats()
    tokens = oidc_server.obtain_tokens()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 60
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["id_token"]
    assert set(tokens["scope"].split()) == {"openid", "offline_access"}

    status, refreshed = refresh_basic(oidc_server, tokens["refresh_token"])
    assert status == 200, refreshed
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotated

    stats = oidc_server.stats()
    assert stats["refresh_grants"] == 1
    assert stats["refresh_success"] == 1
    assert stats["refresh_failure"] == 0
    assert stats["grants"]["authorization_code"] == {"requests": 1, "success": 1, "failure": 0}
    assert stats["token_requests"] == 2

    # Reusing the rotated-out token fails, and is counted as a failed request.
    status, error = refresh_basic(oidc_server, tokens["refresh_token"])
    assert status == 400
    assert error["error"] == "invalid_grant"
    stats = oidc_server.stats()
    assert stats["refresh_grants"] == 2
    assert stats["refresh_success"] == 1
    assert stats["refresh_failure"] == 1
    assert stats["refresh_errors"] == {"invalid_grant": 1}

    # oidc-provider's reuse detection revoked the whole grant: the newest
    # refresh token is dead too.
    status, error = refresh_basic(oidc_server, refreshed["refresh_token"])
    assert (status, error["error"]) == (400, "invalid_grant")

    oidc_server.reset_stats()
    assert oidc_server.stats()["refresh_grants"] == 0


def test_refresh_without_rotation_keeps_token(oidc_server_norotate: OIDCServer) -> None:
    server = oidc_server_norotate
    server.reset_stats()
    tokens = server.obtain_tokens()
    for _ in range(2):
        status, refreshed = refresh_basic(server, tokens["refresh_token"])
        assert status == 200, refreshed
        assert refreshed.get("refresh_token", tokens["refresh_token"]) == tokens["refresh_token"]
    assert server.stats()["refresh_grants"] == 2
    assert server.stats()["refresh_success"] == 2


def test_client_secret_post_and_public_client(oidc_server: OIDCServer) -> None:
    tokens = oidc_server.obtain_tokens()
    status, body = oidc_server.post_token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth="post"
    )
    assert status == 200, body

    public = oidc_server.obtain_tokens(client="public")
    status, body = oidc_server.post_token(
        {"grant_type": "refresh_token", "refresh_token": public["refresh_token"]}, client="public"
    )
    assert status == 200, body

    status, body = oidc_server.post_token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, client=None
    )
    assert status in (400, 401) and body["error"] in ("invalid_client", "invalid_request")


def test_no_refresh_token_without_offline_access(oidc_server: OIDCServer) -> None:
    tokens = oidc_server.obtain_tokens(scope="openid")
    assert "refresh_token" not in tokens


def test_short_access_ttl(oidc_server_factory: OIDCServerFactory) -> None:
    server = oidc_server_factory(access_ttl=5, rotate=False)
    try:
        assert server.stats()["config"]["rotate"] is False
        assert server.obtain_tokens()["expires_in"] == 5
    finally:
        server.stop()
    assert not server.running


def test_device_flow(oidc_server: OIDCServer) -> None:
    oidc_server.reset_stats()
    device = oidc_server.device_authorization()
    assert device["verification_uri"] == oidc_server.device_verification_url
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": device["device_code"]}

    status, body = oidc_server.post_token(form, client="public")
    assert (status, body["error"]) == (400, "authorization_pending")

    oidc_server.complete_device_login(device["user_code"])

    deadline = time.monotonic() + 10
    while True:
        status, body = oidc_server.post_token(form, client="public")
        if status == 200 or time.monotonic() > deadline:
            break
        assert body["error"] in ("authorization_pending", "slow_down"), body
        time.sleep(0.2)
    assert status == 200, body
    assert body["access_token"] and body["refresh_token"]
    assert oidc_server.stats()["grants"][DEVICE_CODE_GRANT]["success"] == 1

    status, refreshed = oidc_server.post_token(
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, client="public"
    )
    assert status == 200, refreshed


def test_device_login_with_bad_code_fails(oidc_server: OIDCServer) -> None:
    with pytest.raises(OIDCFlowError):
        oidc_server.complete_device_login("BCDF-GHJK")


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    received: list[str]

    def do_GET(self) -> None:
        self.received.append(self.path)
        body = b"login complete"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_listener() -> Iterator[tuple[str, list[str]]]:
    """A native app's loopback redirect listener on a random 127.0.0.1 port."""
    received: list[str] = []
    handler = type("Handler", (_CallbackHandler,), {"received": received})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/callback", received
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("client", ["public", "confidential"])
def test_browser_login_to_loopback_any_port(
    oidc_server: OIDCServer, loopback_listener: tuple[str, list[str]], client: str
) -> None:
    redirect_uri, received = loopback_listener
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    url = oidc_server.authorization_url(
        client=client,  # type: ignore[arg-type]
        redirect_uri=redirect_uri,
        state="xyz",
        code_challenge=challenge,
    )

    result = oidc_server.complete_browser_login(url)

    assert result.error is None
    assert result.state == "xyz" and result.code
    assert result.callback_status == 200 and result.callback_body == b"login complete"
    assert len(received) == 1
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(received[0]).query))
    assert query["code"] == result.code

    status, tokens = oidc_server.post_token(
        {
            "grant_type": "authorization_code",
            "code": result.code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        client=client,  # type: ignore[arg-type]
    )
    assert status == 200, tokens
    assert tokens["refresh_token"]


def test_browser_login_rejects_unregistered_redirect(oidc_server: OIDCServer) -> None:
    url = oidc_server.authorization_url(
        client="public", redirect_uri="http://127.0.0.1:8123/elsewhere"
    )
    with pytest.raises(OIDCFlowError, match="redirect_uri"):
        oidc_server.complete_browser_login(url)


def test_concurrent_refreshes_are_visible_in_stats(oidc_server_factory: OIDCServerFactory) -> None:
    server = oidc_server_factory(rotate=False, refresh_delay_ms=300)
    try:
        tokens = server.obtain_tokens()
        results: list[int] = []

        def refresh() -> None:
            results.append(refresh_basic(server, tokens["refresh_token"])[0])

        threads = [threading.Thread(target=refresh) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200, 200, 200]
        stats = server.stats()
        assert stats["refresh_grants"] == 3
        assert stats["refresh_max_in_flight"] == 3
        assert stats["refresh_in_flight"] == 0
    finally:
        server.stop()
