"""stayfresh keeps time-sensitive state fresh: OAuth tokens just in time, with a
durable background safety net.

The most used names are re-exported here; each part lives in its subpackage
(:mod:`stayfresh.tokens`, :mod:`stayfresh.work`, :mod:`stayfresh.store`).
"""

from __future__ import annotations

from .errors import (
    AccountNotFound,
    ConfigError,
    ProviderError,
    ReauthRequired,
    StayfreshError,
    TokenError,
    TransientError,
)
from .store import open_store
from .tokens import (
    Keeper,
    StayfreshAuth,
    StayfreshRequestsAuth,
    TokenResult,
    TokenSet,
    aensure_valid_token,
    ensure_valid_token,
)

__all__ = [
    "AccountNotFound",
    "ConfigError",
    "Keeper",
    "ProviderError",
    "ReauthRequired",
    "StayfreshAuth",
    "StayfreshError",
    "StayfreshRequestsAuth",
    "TokenError",
    "TokenResult",
    "TokenSet",
    "TransientError",
    "aensure_valid_token",
    "ensure_valid_token",
    "open_store",
]
