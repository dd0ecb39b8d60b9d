"""Tokens: accounts, providers, and the just-in-time keeper."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms

# the real imports for type checkers; at run time each name loads on first use (PEP 562)
if TYPE_CHECKING:
    from ..audible import AMAZON_LOCALES, AmazonProvider
    from ._accounts import (
        RefreshMetrics,
        add_account,
        describe,
        describe_all,
        refresh_metrics,
        remove_account,
        replace_tokens,
    )
    from ._auth import StayfreshAuth, StayfreshRequestsAuth, legacy_httpx_auth
    from ._default import (
        aensure_valid_token,
        default_keeper,
        ensure_valid_token,
        set_default_keeper,
    )
    from ._expiry import ExpiryParseError, from_expires_in, parse_expiry
    from ._flow import TokenKind, effective_threshold, refresh_deadline
    from ._import import ImportedAccount, import_account, parse_account_json, read_import_file
    from ._keeper import BACKGROUND_THRESHOLD, DEFAULT_THRESHOLD, Keeper
    from ._login import NewAccount, login_browser
    from ._login_device import DevicePrompt, login_device
    from ._model import Account, TokenResult, TokenSet
    from ._providers import (
        OAuth2Provider,
        OIDCProvider,
        Provider,
        RefreshRequest,
        get_provider,
        provider_names,
        register_provider,
    )
else:
    from .._lazy import lazy_exports as _lazy_exports

    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "RefreshMetrics": "._accounts",
            "add_account": "._accounts",
            "refresh_metrics": "._accounts",
            "describe": "._accounts",
            "describe_all": "._accounts",
            "remove_account": "._accounts",
            "replace_tokens": "._accounts",
            "StayfreshAuth": "._auth",
            "StayfreshRequestsAuth": "._auth",
            "legacy_httpx_auth": "._auth",
            "aensure_valid_token": "._default",
            "default_keeper": "._default",
            "ensure_valid_token": "._default",
            "set_default_keeper": "._default",
            "ExpiryParseError": "._expiry",
            "from_expires_in": "._expiry",
            "parse_expiry": "._expiry",
            "TokenKind": "._flow",
            "effective_threshold": "._flow",
            "refresh_deadline": "._flow",
            "ImportedAccount": "._import",
            "import_account": "._import",
            "parse_account_json": "._import",
            "read_import_file": "._import",
            "BACKGROUND_THRESHOLD": "._keeper",
            "DEFAULT_THRESHOLD": "._keeper",
            "Keeper": "._keeper",
            "NewAccount": "._login",
            "login_browser": "._login",
            "DevicePrompt": "._login_device",
            "login_device": "._login_device",
            "Account": "._model",
            "TokenResult": "._model",
            "TokenSet": "._model",
            # the Amazon provider belongs to the Audible client: loaded from there on first use
            "AMAZON_LOCALES": "..audible",
            "AmazonProvider": "..audible",
            "OAuth2Provider": "._providers",
            "OIDCProvider": "._providers",
            "Provider": "._providers",
            "RefreshRequest": "._providers",
            "get_provider": "._providers",
            "provider_names": "._providers",
            "register_provider": "._providers",
        },
    )

__all__ = [
    "AMAZON_LOCALES",
    "BACKGROUND_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "Account",
    "AmazonProvider",
    "DevicePrompt",
    "ExpiryParseError",
    "ImportedAccount",
    "Keeper",
    "NewAccount",
    "OAuth2Provider",
    "OIDCProvider",
    "Provider",
    "RefreshMetrics",
    "RefreshRequest",
    "StayfreshAuth",
    "StayfreshRequestsAuth",
    "TokenKind",
    "TokenResult",
    "TokenSet",
    "add_account",
    "aensure_valid_token",
    "default_keeper",
    "describe",
    "describe_all",
    "effective_threshold",
    "ensure_valid_token",
    "from_expires_in",
    "get_provider",
    "import_account",
    "legacy_httpx_auth",
    "login_browser",
    "login_device",
    "parse_account_json",
    "parse_expiry",
    "provider_names",
    "read_import_file",
    "refresh_deadline",
    "refresh_metrics",
    "register_provider",
    "remove_account",
    "replace_tokens",
    "set_default_keeper",
]
