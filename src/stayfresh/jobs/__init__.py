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

from .._wiring import install
from ._download import Downloader, DownloadProgress, DownloadResult, download_book, enqueue_download
from ._library import LibrarySync, SyncBusy, SyncProgress, SyncStats, sync_library
from ._lifecycle import apply_settings, logout, on_account_ready
from ._notify import background_work, disable_background, enable_background
from ._notify_status import notify_status
from ._settings import Settings, load_settings, save_setting
from ._sources import LibraryError
from ._status import collect_status
from ._token_refresh import drop_keeper, use_keeper

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
