"""The process-wide keeper and the module-level ``ensure_valid_token`` functions."""

from __future__ import annotations

import datetime as dt
import threading

from ._keeper import DEFAULT_THRESHOLD, Keeper
from ._model import TokenResult

_default: Keeper | None = None
_default_guard = threading.Lock()


def default_keeper() -> Keeper:
    """The process-wide keeper on the default store (``STAYFRESH_DB`` or the user data dir)."""
    global _default
    if _default is None:
        with _default_guard:
            if _default is None:
                from ..store import open_store

                _default = Keeper(open_store())
    return _default


def set_default_keeper(keeper: Keeper | None) -> None:
    """Replace the process-wide keeper (applications with their own store; tests)."""
    global _default
    with _default_guard:
        _default = keeper


def ensure_valid_token(
    account: str,
    threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
    *,
    force: bool = False,
    keeper: Keeper | None = None,
) -> TokenResult:
    """Return ``account``'s tokens, refreshed first when they expire within ``threshold``."""
    return (keeper or default_keeper()).ensure_valid_token(account, threshold, force=force)


async def aensure_valid_token(
    account: str,
    threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
    *,
    force: bool = False,
    keeper: Keeper | None = None,
) -> TokenResult:
    """Async twin of :func:`ensure_valid_token`."""
    return await (keeper or default_keeper()).aensure_valid_token(account, threshold, force=force)
