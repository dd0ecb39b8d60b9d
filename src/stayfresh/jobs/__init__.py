"""Jobs: the seed's workers on top of the token keeper and the work engine.

Importing this package registers the built-in workers with the engine
(``stayfresh.token-refresh`` …), so any runner that imports it can run them.
Settings (the seed's Settings screen) decide which periodic works each
account has; :func:`on_account_ready` and :func:`logout` follow the account
lifecycle.
"""

from __future__ import annotations

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
from ._settings import Settings, load_settings, save_setting, validate_setting
from ._status import collect_status
from ._token_refresh import (
    TOKEN_REFRESH_THRESHOLD,
    TOKEN_REFRESH_WORKER,
    refresh_account,
    token_refresh_worker,
)

__all__ = [
    "DOWNLOAD_WORKER",
    "LIBRARY_SYNC_WORKER",
    "TOKEN_REFRESH_THRESHOLD",
    "TOKEN_REFRESH_WORKER",
    "LogoutResult",
    "ScheduleChange",
    "Settings",
    "account_tag",
    "apply_settings",
    "collect_status",
    "download_work_name",
    "library_sync_request",
    "library_sync_work_name",
    "load_settings",
    "logout",
    "on_account_ready",
    "refresh_account",
    "save_setting",
    "schedule_account_works",
    "token_refresh_request",
    "token_refresh_work_name",
    "token_refresh_worker",
    "validate_setting",
]
