"""stayfresh keeps time-sensitive state fresh: OAuth tokens just in time, with a
durable background safety net.

The most used names are re-exported here; each part lives in its subpackage
(:mod:`stayfresh.tokens`, :mod:`stayfresh.work`, :mod:`stayfresh.store`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms

# the real imports for type checkers; at run time each name loads on first use (PEP 562)
if TYPE_CHECKING:
    from .errors import (
        AccountNotFound,
        ConfigError,
        ProviderError,
        ReauthRequired,
        StayfreshError,
        TokenError,
        TransientError,
    )
    from .jobs.internal import add_account
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
else:
    from ._lazy import lazy_exports as _lazy_exports

    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "AccountNotFound": ".errors",
            "ConfigError": ".errors",
            "ProviderError": ".errors",
            "ReauthRequired": ".errors",
            "StayfreshError": ".errors",
            "TokenError": ".errors",
            "TransientError": ".errors",
            "open_store": ".store",
            "add_account": ".jobs.internal",
            "Keeper": ".tokens",
            "StayfreshAuth": ".tokens",
            "StayfreshRequestsAuth": ".tokens",
            "TokenResult": ".tokens",
            "TokenSet": ".tokens",
            "aensure_valid_token": ".tokens",
            "ensure_valid_token": ".tokens",
        },
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
    "add_account",
    "aensure_valid_token",
    "ensure_valid_token",
    "open_store",
]
