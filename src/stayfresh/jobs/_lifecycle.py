"""Account lifecycle and the works the settings ask for (the seed's WorkerScheduler).

Every account has at most two periodic works, both unique by name and tagged
``account:NAME``:

- ``token-refresh:NAME`` — the token refresh backup, every
  ``token_refresh_interval``, when ``auto_token_refresh`` is on;
- ``library-sync:NAME`` — the library sync at ``sync_frequency`` (none when
  manual), on any network or on unmetered ones only (``sync_wifi_only``).

:func:`schedule_account_works` makes the stored works match the settings and
is idempotent: nothing changes when they already match, so it is safe after
every login and every settings change. Constraint, input and tag changes use
the UPDATE policy (the schedule is kept). An interval change follows
WorkManager's UPDATE rule — the next run comes one *new* interval after the
last run (at once if that is past) — which our engine's UPDATE does not do
(it keeps the old next run time), so it is done here with
CANCEL_AND_REENQUEUE and an initial delay.

A logged-out account (no refresh token) gets no works, so a settings change
never brings a logged-out account's works back.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

from ..errors import AccountNotFound
from ..fresh import store_input
from ..store import Store
from ..tokens.internal import SECRET_CONFIG_KEYS
from ..work import (
    Constraints,
    ExistingPeriodicWorkPolicy,
    WorkInfo,
    WorkManager,
    WorkRequest,
    WorkState,
    min_interval,
)
from ._settings import Settings, load_settings

#: the registered worker name of the token refresh backup (an entry point of the package)
TOKEN_REFRESH_WORKER = "stayfresh.token-refresh"

log = logging.getLogger(__name__)

#: agreed worker names of the other built-in jobs (their code lives in jobs/_library.py)
LIBRARY_SYNC_WORKER = "stayfresh.library-sync"
DOWNLOAD_WORKER = "stayfresh.download"
#: the engine's default first backoff, as the seed's worker uses it (30 s, 1 m, 2 m …)
BACKOFF_SECONDS = 30.0
#: a library sync of a large library over a slow link may take long; a token check never
LIBRARY_SYNC_TIMEOUT = 3600.0
LOGGED_OUT = "logged out"

Action = Literal["scheduled", "updated", "rescheduled", "unchanged", "cancelled", "none"]


def account_tag(account: str) -> str:
    """The tag on every work of ``account`` (logout cancels by it)."""
    return f"account:{account}"


def token_refresh_work_name(account: str) -> str:
    return f"token-refresh:{account}"


def library_sync_work_name(account: str) -> str:
    return f"library-sync:{account}"


def download_work_name(account: str, item_id: str) -> str:
    return f"download:{account}:{item_id}"


def token_refresh_request(
    account: str, settings: Settings, store: Store | None = None
) -> WorkRequest:
    """The periodic token refresh backup of ``account`` (it needs the network).

    With ``store``, the input also names its database (see :func:`store_input`).
    """
    return WorkRequest.periodic_every(
        TOKEN_REFRESH_WORKER,
        settings.token_refresh_interval,
        input={"account": account, **(store_input(store) if store else {})},
        constraints=Constraints(network="connected"),
        backoff_delay=BACKOFF_SECONDS,
        tags=(account_tag(account), "token-refresh"),
    )


def library_sync_request(
    account: str, settings: Settings, store: Store | None = None
) -> WorkRequest | None:
    """The periodic library sync of ``account``, or None when sync is manual."""
    interval = settings.sync_interval
    if interval is None:
        return None
    return WorkRequest.periodic_every(
        LIBRARY_SYNC_WORKER,
        interval,
        input={"account": account, **(store_input(store) if store else {})},
        constraints=Constraints(network="unmetered" if settings.sync_wifi_only else "connected"),
        backoff_delay=BACKOFF_SECONDS,
        timeout=LIBRARY_SYNC_TIMEOUT,
        tags=(account_tag(account), "library-sync"),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleChange:
    """What happened to one work: for messages and tests."""

    name: str
    action: Action
    every: float | None = None
    network: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _current(manager: WorkManager, name: str) -> WorkInfo | None:
    for info in manager.by_name(name):  # newest first
        if info.state is not WorkState.CANCELLED and (info.periodic or not info.state.is_finished):
            return info
    return None


def _same(info: WorkInfo, request: WorkRequest, interval: float) -> bool:
    return (
        info.worker == request.worker
        and dict(info.input) == dict(request.input)
        and info.constraints == request.constraints
        and set(info.tags) == set(request.tags)
        and info.interval is not None
        and abs(info.interval - interval) < 0.5
    )


def ensure_periodic(manager: WorkManager, name: str, request: WorkRequest | None) -> ScheduleChange:
    """Make unique periodic work ``name`` match ``request`` (None: cancel it)."""
    current = _current(manager, name)
    if request is None:
        if current is None:
            return ScheduleChange(name=name, action="none")
        manager.cancel(name=name)
        log.info("work %s cancelled", name)
        return ScheduleChange(name=name, action="cancelled")
    assert request.every is not None
    interval = max(request.every, min_interval())
    change = ScheduleChange(
        name=name, action="scheduled", every=interval, network=request.constraints.network
    )
    if current is None:
        manager.enqueue(request, name=name, policy=ExistingPeriodicWorkPolicy.KEEP)
        return change
    if _same(current, request, interval):
        return dataclasses.replace(change, action="unchanged")
    same_interval = current.interval is not None and abs(current.interval - interval) < 0.5
    if same_interval or current.state is WorkState.RUNNING:
        # a running work is not interrupted: its new interval counts from this run
        manager.enqueue(request, name=name, policy=ExistingPeriodicWorkPolicy.UPDATE)
        return dataclasses.replace(change, action="updated")
    now = manager.clock()
    anchor = current.last_run_at or current.created_at
    delay = max(0.0, anchor.timestamp() + interval - now)
    manager.enqueue(
        dataclasses.replace(request, delay=delay),
        name=name,
        policy=ExistingPeriodicWorkPolicy.CANCEL_AND_REENQUEUE,
    )
    log.info("work %s: interval now %.0fs, next run in %.0fs", name, interval, delay)
    return dataclasses.replace(change, action="rescheduled")


def schedule_account_works(
    store: Store,
    name: str,
    *,
    settings: Settings | None = None,
    manager: WorkManager | None = None,
) -> list[ScheduleChange]:
    """Make ``name``'s works match the settings; return what changed per work.

    A logged-out account (no refresh token) has its works cancelled instead.
    """
    row = store.get_account(name)
    if row is None:
        raise AccountNotFound(f"no account named {name!r}")
    settings = settings or load_settings(store)
    manager = manager or WorkManager(store)
    active = bool(row.tokens.refresh_token)
    refresh = (
        token_refresh_request(name, settings, store)
        if active and settings.auto_token_refresh
        else None
    )
    sync = library_sync_request(name, settings, store) if active else None
    return [
        ensure_periodic(manager, token_refresh_work_name(name), refresh),
        ensure_periodic(manager, library_sync_work_name(name), sync),
    ]


def apply_settings(
    store: Store, settings: Settings | None = None, *, manager: WorkManager | None = None
) -> list[ScheduleChange]:
    """Bring every account's works in line with ``settings`` (default: the stored ones).

    Call after a settings change: it takes effect at once for every account.
    """
    settings = settings or load_settings(store)
    manager = manager or WorkManager(store)
    changes: list[ScheduleChange] = []
    for row in store.list_accounts():
        changes += schedule_account_works(store, row.name, settings=settings, manager=manager)
    return changes


def on_account_ready(
    store: Store, name: str, *, manager: WorkManager | None = None
) -> list[ScheduleChange]:
    """After ``account add``, ``account import`` or a successful ``login``: arm the works.

    Token refresh backup if enabled, library sync unless manual. An account
    that needed a login keeps its works (they resume normally now that it is
    ``ok``); a logged-out one gets them back.
    """
    changes = schedule_account_works(store, name, manager=manager)
    from ._token_refresh import announce_account

    announce_account(store, name, needs_login=False)  # after a new login: "recovered", once
    armed = [c.name for c in changes if c.action not in ("none", "cancelled")]
    log.info("%s ready; works: %s", name, ", ".join(armed) or "none (settings)")
    return changes


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogoutResult:
    account: str
    cancelled: tuple[str, ...]
    forgot: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "cancelled": list(self.cancelled),
            "forgot": list(self.forgot),
        }


def logout(store: Store, name: str, *, manager: WorkManager | None = None) -> LogoutResult:
    """Cancel all of ``name``'s works and forget its secrets; keep everything else.

    The account row stays (library rows and metrics refer to it by name),
    marked ``needs_login`` with the message "logged out"; its tokens, client
    secret and device serial are overwritten in the database. ``stayfresh
    login NAME`` (or ``account import NAME FILE --replace``) brings it back.
    """
    row = store.get_account(name)
    if row is None:
        raise AccountNotFound(f"no account named {name!r}")
    manager = manager or WorkManager(store)
    cancelled = manager.cancel(tag=account_tag(name))
    forgot = [k for k in ("access_token", "refresh_token") if getattr(row.tokens, k)]
    forgot += sorted(k for k in row.config if k in SECRET_CONFIG_KEYS)
    store.clear_secrets(name, config_keys=SECRET_CONFIG_KEYS, message=LOGGED_OUT)
    from ._token_refresh import forget_cached  # loads the keeper: only when forgetting

    forget_cached(name)
    log.info("%s logged out: %d work(s) cancelled, secrets forgotten", name, len(cancelled))
    return LogoutResult(account=name, cancelled=tuple(cancelled), forgot=tuple(forgot))
