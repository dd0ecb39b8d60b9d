"""Third-party providers: through the ``stayfresh.providers`` entry-point group or register_provider."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conftest import add_oauth2
from fake_token_server import FakeTokenServer, token_reply
from stayfresh.errors import ConfigError
from stayfresh.store import Store
from stayfresh.tokens import (
    Keeper,
    OAuth2Provider,
    RefreshRequest,
    get_provider,
    provider_names,
    register_provider,
)

PLUGIN = '''
from stayfresh.tokens import OAuth2Provider


class HeaderProvider(OAuth2Provider):
    """Refreshes like oauth2, but sends the token in X-Api-Token."""

    name = "header-plugin"

    def auth_headers(self, tokens):
        return {"X-Api-Token": tokens.access_token or ""}
'''


def test_entry_point_provider_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sf_header_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "sf_header_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sf-header-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[stayfresh.providers]\nheader-plugin = sf_header_plugin:HeaderProvider\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "header-plugin" in provider_names()
    provider = get_provider("header-plugin")
    assert type(provider).__name__ == "HeaderProvider"
    assert get_provider("header-plugin") is provider  # loaded once
    sys.modules.pop("sf_header_plugin", None)


class EchoProvider(OAuth2Provider):
    name = "echo-test"

    def refresh_request(self, config: Mapping[str, Any], refresh_token: str) -> RefreshRequest:
        request = super().refresh_request(config, refresh_token)
        return RefreshRequest(url=request.url, data={**request.data, "extra": "1"}, headers=request.headers)


def test_registered_provider_is_used_by_the_keeper(store: Store, token_server: FakeTokenServer) -> None:
    register_provider(EchoProvider())
    token_server.handler = lambda seen: token_reply(access="echoed")
    add_oauth2(store, "e", token_server.token_url, expires_in=-5)
    row = store.get_account("e")
    assert row is not None
    store.update_config("e", dict(row.config))
    # switch the stored account to the registered provider
    with contextlib.closing(sqlite3.connect(store.path)) as raw, raw:  # type: ignore[attr-defined]
        raw.execute("UPDATE accounts SET provider = 'echo-test' WHERE name = 'e'")
    with Keeper(store) as keeper:
        assert keeper.ensure_valid_token("e").access_token == "echoed"
    assert token_server.requests[-1].form["extra"] == "1"


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        get_provider("no-such-provider")
