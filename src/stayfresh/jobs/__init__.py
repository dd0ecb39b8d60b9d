"""Jobs: the seed's workers on top of the token keeper and the work engine.

The built-in workers (``stayfresh.token-refresh``, ``stayfresh.library-sync``,
``stayfresh.download``, ``stayfresh.notify-refresh``, ``stayfresh.notify-deliver``)
are found by name through the ``stayfresh.workers`` entry points; importing
this package registers nothing. :func:`install` wires the parts together
(every notification reschedule then also schedules its delivery): the CLI
calls it, and so should an application that embeds the notification layers.
Settings (the seed's Settings screen) decide which periodic works each
account has; :func:`on_account_ready` and :func:`logout` follow the account
lifecycle. Library sync and downloads work over any
:class:`~stayfresh.jobs.sources.LibrarySource` (:mod:`stayfresh.jobs.sources`
is the interface for writing one; Audible's is in :mod:`stayfresh.audible`).
Names the CLI and the runners need beyond these are in
:mod:`stayfresh.jobs.internal` (no compatibility promise).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# the real imports for type checkers; at run time each name loads on first use (PEP 562):
# a command that only reads settings does not load the downloader's HTTP client
if TYPE_CHECKING:
    from .._wiring import install
    from ._download import (
        Downloader,
        DownloadProgress,
        DownloadResult,
        download_book,
        enqueue_download,
    )
    from ._library import LibrarySync, SyncBusy, SyncProgress, SyncStats, sync_library
    from ._lifecycle import apply_settings, logout, on_account_ready
    from ._notify import background_work, disable_background, enable_background
    from ._notify_status import notify_status
    from ._settings import Settings, load_settings, save_setting
    from ._sources import LibraryError
    from ._status import collect_status
    from ._token_refresh import drop_keeper, use_keeper
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        ".._wiring": "install",
        "._download": "Downloader DownloadProgress DownloadResult download_book enqueue_download",
        "._library": "LibrarySync SyncBusy SyncProgress SyncStats sync_library",
        "._lifecycle": "apply_settings logout on_account_ready",
        "._notify": "background_work disable_background enable_background",
        "._notify_status": "notify_status",
        "._settings": "Settings load_settings save_setting",
        "._sources": "LibraryError",
        "._status": "collect_status",
        "._token_refresh": "drop_keeper use_keeper",
    }
    __getattr__, __dir__ = _lazy_exports(
        __name__, {name: module for module, names in _WHERE.items() for name in names.split()}
    )

__all__ = [
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "LibraryError",
    "LibrarySync",
    "Settings",
    "SyncBusy",
    "SyncProgress",
    "SyncStats",
    "apply_settings",
    "background_work",
    "collect_status",
    "disable_background",
    "download_book",
    "drop_keeper",
    "enable_background",
    "enqueue_download",
    "install",
    "load_settings",
    "logout",
    "notify_status",
    "on_account_ready",
    "save_setting",
    "sync_library",
    "use_keeper",
]
