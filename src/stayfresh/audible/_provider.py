"""Amazon's token exchange as Audible uses it: the built-in ``amazon`` token provider.

Lives with the Audible client rather than in :mod:`stayfresh.tokens`; the
provider registry there loads it by name (``get_provider("amazon")``) when an
account uses it, and :mod:`stayfresh.tokens` re-exports it lazily.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..tokens import Provider, RefreshRequest, TokenSet
from ..tokens.internal import check_endpoint
from ._locales import AMAZON_LOCALES

#: where Amazon accounts refresh: ``audible`` for accounts from before Amazon sign-in
#: (the audible package's ``with_username``), ``amazon`` for all others
AMAZON_TOKEN_HOSTS = ("amazon", "audible")
#: the app version the audible package sends
AMAZON_APP_VERSION = "4.60"
#: Amazon's access tokens (``Atna|…``): visible ASCII without space, as the '|' is
#: outside RFC 6750's b64token
AMAZON_ACCESS_TOKEN = re.compile(r"[\x21-\x7e]+")


class AmazonProvider(Provider):
    """Amazon's token exchange as used by Audible (the ``audible`` package's request)."""

    name = "amazon"
    access_token_syntax = AMAZON_ACCESS_TOKEN

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = super().normalize_config(config)
        locale = str(cfg.get("locale") or "us").lower()
        if locale not in AMAZON_LOCALES:
            raise ConfigError(
                f"unknown Amazon locale {locale!r} (one of {', '.join(AMAZON_LOCALES)})"
            )
        cfg["locale"] = locale
        cfg["token_host"] = self._token_host(cfg)
        return cfg

    @staticmethod
    def _token_host(config: Mapping[str, Any]) -> str:
        host = str(config.get("token_host") or "amazon").lower()
        if host not in AMAZON_TOKEN_HOSTS:
            raise ConfigError(f"unknown token host {host!r} (amazon or audible)")
        return host

    def token_url(self, config: Mapping[str, Any]) -> str:
        """``api.<host>.<tld>``: ``audible`` for pre-Amazon accounts, as the audible package does."""
        if config.get("token_url"):
            return check_endpoint(str(config["token_url"]))
        tld = AMAZON_LOCALES[str(config.get("locale") or "us")]
        return f"https://api.{self._token_host(config)}.{tld}/auth/token"

    def refresh_request(self, config: Mapping[str, Any], refresh_token: str) -> RefreshRequest:
        data = {
            "app_name": "Audible",
            "app_version": AMAZON_APP_VERSION,
            "source_token": refresh_token,
            "requested_token_type": "access_token",
            "source_token_type": "refresh_token",
        }
        return RefreshRequest(
            url=self.token_url(config), data=data, headers={"Accept": "application/json"}
        )

    def auth_headers(self, tokens: TokenSet) -> dict[str, str]:
        # the audible package sends the token in x-amz-access-token today
        return {"x-amz-access-token": tokens.access_token or ""}

    def is_reauth(self, status: int, error: str | None, description: str | None) -> bool:
        if error in ("invalid_grant", "InvalidValue") and status in (400, 401):
            return True
        return bool(description and "invalid parameter : source_token" in description)
