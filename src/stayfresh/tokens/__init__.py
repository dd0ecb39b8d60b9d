"""Tokens: accounts, providers, and the just-in-time keeper."""

from __future__ import annotations

from ._accounts import add_account, describe, describe_all, remove_account, replace_tokens
from ._auth import StayfreshAuth, StayfreshRequestsAuth, legacy_httpx_auth
from ._default import aensure_valid_token, default_keeper, ensure_valid_token, set_default_keeper
from ._expiry import ExpiryParseError, from_expires_in, parse_expiry
from ._flow import effective_threshold, refresh_deadline
from ._import import ImportedAccount, import_account, parse_account_json, read_import_file
from ._keeper import BACKGROUND_THRESHOLD, DEFAULT_THRESHOLD, Keeper
from ._login import NewAccount, login_browser
from ._login_device import DevicePrompt, login_device
from ._model import Account, TokenResult, TokenSet
from ._providers import (
    AMAZON_LOCALES,
    AmazonProvider,
    OAuth2Provider,
    OIDCProvider,
    Provider,
    RefreshRequest,
    get_provider,
    provider_names,
    register_provider,
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
    "RefreshRequest",
    "StayfreshAuth",
    "StayfreshRequestsAuth",
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
    "register_provider",
    "remove_account",
    "replace_tokens",
    "set_default_keeper",
]
