"""Jobs: the seed's workers on top of the token keeper and the work engine.

Importing this package registers the built-in workers with the engine
(``stayfresh.token-refresh``, ``stayfresh.library-sync``, ``stayfresh.download``,
``stayfresh.notify-refresh``, ``stayfresh.notify-deliver``; runners also find
them through the ``stayfresh.workers`` entry points) and makes every
notification reschedule also schedule its delivery work.
Settings (the seed's Settings screen) decide which periodic works each
account has; :func:`on_account_ready` and :func:`logout` follow the account
lifecycle.
"""

from __future__ import annotations

from ._download import (
    Downloader,
    DownloadProgress,
    DownloadResult,
    download_book,
    download_request,
    download_worker,
    enqueue_download,
)
from ._inline import run_work_inline
from ._library import (
    LibrarySync,
    SyncBusy,
    SyncInterrupted,
    SyncProgress,
    SyncStats,
    library_sync_worker,
    sync_library,
)
from ._license import ContentLicense
from ._lifecycle import (
    DOWNLOAD_WORKER,
    LIBRARY_SYNC_WORKER,
    LogoutResult,
    ScheduleChange,
    account_tag,
    apply_settings,
    download_work_name,
    library_sync_request,
    library_sync_work_name,
    logout,
    on_account_ready,
    schedule_account_works,
    token_refresh_request,
    token_refresh_work_name,
)
from ._notify import (
    background_work,
    deliver_worker,
    disable_background,
    enable_background,
    refresh_worker,
    schedule_delivery,
)
from ._notify_status import notify_status
from ._settings import Settings, load_settings, save_setting, validate_setting
from ._sources import (
    AudibleSource,
    JsonSource,
    LibraryError,
    LibrarySource,
    Page,
    PageRequest,
    Position,
    register_source,
    source_for,
)
from ._status import collect_status
from ._token_refresh import (
    TOKEN_REFRESH_THRESHOLD,
    TOKEN_REFRESH_WORKER,
    drop_keeper,
    refresh_account,
    token_refresh_worker,
    use_keeper,
)

__all__ = [
    "DOWNLOAD_WORKER",
    "LIBRARY_SYNC_WORKER",
    "TOKEN_REFRESH_THRESHOLD",
    "TOKEN_REFRESH_WORKER",
    "AudibleSource",
    "ContentLicense",
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "JsonSource",
    "LibraryError",
    "LibrarySource",
    "LibrarySync",
    "LogoutResult",
    "Page",
    "PageRequest",
    "Position",
    "ScheduleChange",
    "Settings",
    "SyncBusy",
    "SyncInterrupted",
    "SyncProgress",
    "SyncStats",
    "account_tag",
    "apply_settings",
    "background_work",
    "collect_status",
    "deliver_worker",
    "disable_background",
    "download_book",
    "download_request",
    "download_work_name",
    "download_worker",
    "drop_keeper",
    "enable_background",
    "enqueue_download",
    "library_sync_request",
    "library_sync_work_name",
    "library_sync_worker",
    "load_settings",
    "logout",
    "notify_status",
    "on_account_ready",
    "refresh_account",
    "refresh_worker",
    "register_source",
    "run_work_inline",
    "save_setting",
    "schedule_account_works",
    "schedule_delivery",
    "source_for",
    "sync_library",
    "token_refresh_request",
    "token_refresh_work_name",
    "token_refresh_worker",
    "use_keeper",
    "validate_setting",
]
