"""``stayfresh status`` as data: accounts, works and settings in one document.

The CLI renders this as tables and prints it as ``--json``; both come from
here so the two views cannot disagree. Nothing here is secret: accounts come
from :func:`stayfresh.tokens.describe_all`, which never includes tokens.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any, Literal

from ..notify import window_decision
from ..store import Store
from ..tokens import describe_all
from ..work import WorkInfo, WorkManager, WorkState
from ..work.internal import live_daemons
from ._settings import DEFAULTS, SETTING_PREFIX, load_settings

ProblemKind = Literal["needs_login", "refresh_failing", "no_daemon", "work_failed", "notify_stale"]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _posix_iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


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
        "last_failure_at": metrics["last_failure_at"],
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
        "daemons": [
            {
                "id": d.id,
                "host": d.host,
                "pid": d.pid,
                "started_at": _posix_iso(d.started_at),
                "last_seen_at": _posix_iso(d.last_seen_at),
            }
            for d in live_daemons(store, at)
        ],
        "settings": settings,
        "settings_default": {
            key: store.get_setting(SETTING_PREFIX + key) is None for key in DEFAULTS
        },
    }


# -- health: what needs a person -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One thing that needs a person, as ``status --check`` reports it."""

    kind: ProblemKind
    #: the account or work it is about (None: the whole installation)
    subject: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _account_problem(account: dict[str, Any]) -> Problem | None:
    name = account["name"]
    if account["status"] == "needs_login":
        why = f" ({account['status_message']})" if account["status_message"] else ""
        return Problem(
            "needs_login",
            name,
            f"account {name} needs a new sign-in{why}: run `stayfresh login {name}`",
        )
    failed, refreshed = account["last_failure_at"], account["last_refresh_at"]
    left = account["expires_in_minutes"]
    if failed and (refreshed is None or failed > refreshed) and left is not None and left <= 0:
        return Problem(
            "refresh_failing",
            name,
            f"account {name}: the token has expired and the last refresh failed"
            f" ({account['last_error'] or 'no error recorded'})",
        )
    return None


def health_problems(
    store: Store,
    *,
    now: float | None = None,
    status: dict[str, Any] | None = None,
    daemons: int | None = None,
) -> list[Problem]:
    """Everything that needs a person, one :class:`Problem` each (empty: healthy).

    An account that needs a new sign-in, or whose token has expired after a
    failed refresh; background works with no daemon to run them (``daemons``:
    how many are alive, from their heartbeats in the store, read here when not
    given; nothing is woken); a work that
    failed for good; a notification window that is still stale after this
    command's own foreground layer ran.
    """
    at = time.time() if now is None else now
    data = status if status is not None else collect_status(store, now=at)
    problems = [p for p in map(_account_problem, data["accounts"]) if p is not None]
    waiting = [w for w in data["works"] if w["state"] in ("ENQUEUED", "RUNNING", "BLOCKED")]
    if waiting:
        reached = len(data["daemons"]) if daemons is None else daemons
        if reached == 0:
            problems.append(
                Problem(
                    "no_daemon",
                    None,
                    f"no stayfresh daemon is running for {store.location}, and {len(waiting)}"
                    " background work(s) wait for one: start `stayfresh daemon`"
                    " (or `stayfresh service install`)",
                )
            )
    for work in data["works"]:
        if work["state"] == "FAILED":
            name = work["name"] or work["id"]
            problems.append(
                Problem("work_failed", name, f"work {name} failed for good: {work['message']}")
            )
    stale, why = window_decision(store.notify_freshness(), at)
    if stale:
        problems.append(
            Problem(
                "notify_stale",
                None,
                f"the notification window is stale ({why}): run `stayfresh notify refresh`",
            )
        )
    return problems
