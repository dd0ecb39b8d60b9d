"""Keep anything fresh: one refresh primitive under tokens, reminders and your own state.

A kind of state (:class:`Kind`) declares how to load it, from when it is stale,
how to refresh it, whether a second caller waits or skips, and how long the old
state stays usable while refreshes fail. The core then gives it

- **layer 1, on use** (:class:`Fresh`, ``_on_use.py``): ``ensure(key)`` /
  ``aensure(key)`` just before the state is used — a valid path that reads
  nothing, single flight in the process, a shared failure and a cooldown;
- **the lock** (``_lock.py``): one refresh at a time across processes through
  the store's lock for ``(kind, key)``, the state re-read after taking it;
- **layer 2, background** (``_background.py``): a periodic work of the engine
  that calls the same ``ensure`` while nobody uses the state (:func:`keep_fresh`);
- **telemetry**: every execution counted per (kind, key, layer) in the store
  (:meth:`stayfresh.store.Store.fresh_telemetry`);

and one :class:`Outcome` (``fresh``, ``refreshed``, ``joined``, ``skipped``,
``failed``). OAuth tokens (:class:`stayfresh.tokens.TokenKind`) and the
notification window (:class:`stayfresh.notify.WindowKind`) are kinds; so is
the cached HTTP document of ``examples/http_document.py`` (under 30 lines,
with :func:`max_age` for ``Cache-Control``), and so can yours be.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms

if TYPE_CHECKING:
    from ._background import (
        FRESH_WORKER,
        background_check,
        drop_fresh,
        fresh_for,
        fresh_worker,
        keep_fresh,
        stop_keeping_fresh,
        store_input,
        store_of,
        use_fresh,
        verdict,
    )
    from ._effects import Call, Effect, Flow, Http, HttpReply, adrive, drive
    from ._http_cache import max_age
    from ._kind import Failure, Kind, Layer, Mode, Outcome, Request, Status
    from ._on_use import Fresh
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        "._background": "FRESH_WORKER background_check drop_fresh fresh_for fresh_worker"
        " keep_fresh stop_keeping_fresh store_input store_of use_fresh verdict",
        "._effects": "Call Effect Flow Http HttpReply adrive drive",
        "._http_cache": "max_age",
        "._kind": "Failure Kind Layer Mode Outcome Request Status",
        "._on_use": "Fresh",
    }
    __getattr__, __dir__ = _lazy_exports(
        __name__, {name: module for module, names in _WHERE.items() for name in names.split()}
    )

__all__ = [
    "FRESH_WORKER",
    "Call",
    "Effect",
    "Failure",
    "Flow",
    "Fresh",
    "Http",
    "HttpReply",
    "Kind",
    "Layer",
    "Mode",
    "Outcome",
    "Request",
    "Status",
    "adrive",
    "background_check",
    "drive",
    "drop_fresh",
    "fresh_for",
    "fresh_worker",
    "keep_fresh",
    "max_age",
    "stop_keeping_fresh",
    "store_input",
    "store_of",
    "use_fresh",
    "verdict",
]
