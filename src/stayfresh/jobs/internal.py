"""Names the command line, the runners and the tests use from the jobs; not a user API.

The built-in workers and how their works are named, tagged and requested,
the settings table, the notification works. Public module names so that no
part reaches into another's private modules (``tests/test_boundaries.py``),
without a compatibility promise: use :mod:`stayfresh.jobs` instead.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# at run time each name loads on first use (PEP 562): ``stayfresh status`` does not
# load the downloader's HTTP client to read a setting's description
if TYPE_CHECKING:
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
    from ._metrics import metrics_text, serve_metrics
    from ._notify import (
        DELIVER_WORKER,
        DELIVERY_TAG,
        REFRESH_WORKER,
        deliver_worker,
        refresh_worker,
        schedule_delivery,
    )
    from ._settings import DEFAULTS, DESCRIPTIONS, SETTING_PREFIX, validate_setting
    from ._setup import add_account
    from ._status import Problem, health_problems
    from ._token_refresh import (
        TOKEN_REFRESH_THRESHOLD,
        TOKEN_REFRESH_WORKER,
        announce_account,
        refresh_account,
        token_refresh_worker,
    )
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        "._download": "download_request download_worker",
        "._library": "SyncInterrupted library_sync_worker",
        "._lifecycle": "DOWNLOAD_WORKER LIBRARY_SYNC_WORKER LogoutResult ScheduleChange account_tag download_work_name library_sync_request library_sync_work_name schedule_account_works token_refresh_request token_refresh_work_name",
        "._notify": "DELIVER_WORKER DELIVERY_TAG REFRESH_WORKER deliver_worker refresh_worker schedule_delivery",
        "._settings": "DEFAULTS DESCRIPTIONS SETTING_PREFIX validate_setting",
        "._token_refresh": "TOKEN_REFRESH_THRESHOLD TOKEN_REFRESH_WORKER announce_account refresh_account token_refresh_worker",
        "._status": "Problem health_problems",
        "._metrics": "metrics_text serve_metrics",
        "._setup": "add_account",
    }
    __getattr__, __dir__ = _lazy_exports(
        "stayfresh.jobs",
        {name: module for module, names in _WHERE.items() for name in names.split()},
        module=__name__,
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
    "Problem",
    "ScheduleChange",
    "SyncInterrupted",
    "account_tag",
    "add_account",
    "announce_account",
    "deliver_worker",
    "download_request",
    "download_work_name",
    "download_worker",
    "health_problems",
    "library_sync_request",
    "library_sync_work_name",
    "library_sync_worker",
    "metrics_text",
    "refresh_account",
    "refresh_worker",
    "schedule_account_works",
    "schedule_delivery",
    "serve_metrics",
    "token_refresh_request",
    "token_refresh_work_name",
    "token_refresh_worker",
    "validate_setting",
]
