"""Names the command line, the runners and the tests use from the jobs; not a user API.

The built-in workers and how their works are named, tagged and requested,
the settings table, the notification works. Public module names so that no
part reaches into another's private modules (``tests/test_boundaries.py``),
without a compatibility promise: use :mod:`stayfresh.jobs` instead.
"""

from __future__ import annotations

from ._download import download_request, download_worker
from ._library import SyncInterrupted, library_sync_worker
from ._lifecycle import (
    DOWNLOAD_WORKER,
    LIBRARY_SYNC_WORKER,
    LogoutResult,
    ScheduleChange,
    account_tag,
    download_work_name,
    library_sync_request,
    library_sync_work_name,
    schedule_account_works,
    token_refresh_request,
    token_refresh_work_name,
)
from ._notify import (
    DELIVER_WORKER,
    DELIVERY_TAG,
    REFRESH_WORKER,
    deliver_worker,
    refresh_worker,
    schedule_delivery,
)
from ._settings import DEFAULTS, DESCRIPTIONS, SETTING_PREFIX, validate_setting
from ._token_refresh import (
    TOKEN_REFRESH_THRESHOLD,
    TOKEN_REFRESH_WORKER,
    refresh_account,
    token_refresh_worker,
)

__all__ = [
    "DEFAULTS",
    "DELIVERY_TAG",
    "DELIVER_WORKER",
    "DESCRIPTIONS",
    "DOWNLOAD_WORKER",
    "LIBRARY_SYNC_WORKER",
    "REFRESH_WORKER",
    "SETTING_PREFIX",
    "TOKEN_REFRESH_THRESHOLD",
    "TOKEN_REFRESH_WORKER",
    "LogoutResult",
    "ScheduleChange",
    "SyncInterrupted",
    "account_tag",
    "deliver_worker",
    "download_request",
    "download_work_name",
    "download_worker",
    "library_sync_request",
    "library_sync_work_name",
    "library_sync_worker",
    "refresh_account",
    "refresh_worker",
    "schedule_account_works",
    "schedule_delivery",
    "token_refresh_request",
    "token_refresh_work_name",
    "token_refresh_worker",
    "validate_setting",
]
