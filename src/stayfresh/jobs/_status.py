"""``stayfresh status`` as data: accounts, works and settings in one document.

The CLI renders this as tables and prints it as ``--json``; both come from
here so the two views cannot disagree. Nothing here is secret: accounts come
from :func:`stayfresh.tokens.describe_all`, which never includes tokens.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ..store import Store
from ..tokens import describe_all
from ..work import WorkInfo, WorkManager, WorkState
from ._settings import DEFAULTS, SETTING_PREFIX, load_settings


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _account_of(info: WorkInfo) -> str | None:
    for tag in info.tags:
        if tag.startswith("account:"):
            return tag.removeprefix("account:")
    account = info.input.get("account")
    return account if isinstance(account, str) else None


def _message(info: WorkInfo) -> str | None:
    """The last run's message: the worker's own words, else the error's last line."""
    if info.output and isinstance(info.output.get("message"), str):
        return str(info.output["message"])
    if info.last_error:
        return info.last_error.strip().splitlines()[-1][:300]
    return None


def work_status(info: WorkInfo) -> dict[str, Any]:
    """One work as ``status`` shows it."""
    return {
        "name": info.name,
        "id": info.id,
        "worker": info.worker,
        "account": _account_of(info),
        "state": info.state.value,
        "periodic": info.periodic,
        "every_seconds": info.interval,
        "network": info.constraints.network,
        "next_run_at": _iso(info.next_run_at),
        "last_run_at": _iso(info.last_run_at),
        "last_outcome": info.last_outcome,
        "attempt": info.run_attempt,
        "message": _message(info),
        "progress": None if info.progress is None else dict(info.progress),
    }


def account_status(described: dict[str, Any]) -> dict[str, Any]:
    """One account as ``status`` shows it (a subset of ``account show``)."""
    metrics = described["metrics"]
    return {
        "name": described["name"],
        "provider": described["provider"],
        "status": described["status"],
        "status_message": described["status_message"],
        "expires_at": described["expires_at"],
        "expires_in_minutes": described["expires_in_minutes"],
        "has_refresh_token": described["has_refresh_token"],
        "last_refresh_at": metrics["last_refresh_at"],
        "jit_refreshes": metrics["jit_refreshes"],
        "background_refreshes": metrics["background_refreshes"],
        "failures": metrics["failures"],
        "last_error": metrics["last_error"],
    }


def collect_status(
    store: Store,
    *,
    now: float | None = None,
    include_cancelled: bool = False,
    manager: WorkManager | None = None,
) -> dict[str, Any]:
    """Every account, every work (cancelled ones only on request) and the settings."""
    at = time.time() if now is None else now
    manager = manager or WorkManager(store)
    works = [
        work_status(info)
        for info in manager.list_work()
        if include_cancelled or info.state is not WorkState.CANCELLED
    ]
    works.sort(key=lambda w: (w["account"] or "", w["name"] or "", w["id"]))
    settings = load_settings(store).to_json()
    return {
        "generated_at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
        "database": store.location,
        "accounts": [account_status(d) for d in describe_all(store, now=at)],
        "works": works,
        "settings": settings,
        "settings_default": {
            key: store.get_setting(SETTING_PREFIX + key) is None for key in DEFAULTS
        },
    }
