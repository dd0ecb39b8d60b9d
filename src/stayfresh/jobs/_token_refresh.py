"""The seed's TokenRefreshWorker: the background safety net of the token keeper.

A periodic work per account (``token-refresh:NAME``) runs this worker. It
does exactly what the just-in-time layer does — ``ensure_valid_token`` with
the 30-minute threshold, through the same keeper, lock and store — so there
is no second refresh path; the refresh is counted as a *background* one in
the account's metrics.

Outcomes, as WorkManager's ``Result``:

- token still valid, or refreshed: success (output: expiry, whether refreshed);
- transient trouble (network, 5xx, 429): retry, so the engine's exponential
  backoff (30 s, 1 m, 2 m …) applies;
- re-authentication required: the keeper marks the account ``needs_login``;
  the run ends in failure whose ``message`` says ``run `stayfresh login
  NAME```, and the user is told (a WARNING log line and the notification
  sinks of :mod:`stayfresh.notify`, e.g. an Apprise URL).

While the account stays ``needs_login`` the periodic work keeps its cadence
but each run fails at once with the same message, *without* contacting the
provider: a rejected refresh token will not start working by itself, so
retrying it would only hammer the provider. A successful login makes the
account ``ok`` again and the next period refreshes normally
(:func:`~stayfresh.jobs.on_account_ready` also re-arms the work).

Which database? The engine does not hand a worker its runner's store, so a
work carries its SQLite path in its input (``db``) and the worker uses the
keeper registered for that database (:func:`use_keeper`), or one of its own.
Without that, ``stayfresh --db PATH daemon`` — how an installed service runs
— would refresh against the default database instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..errors import AccountNotFound, ConfigError, ReauthRequired, login_hint
from ..fresh import background_check, drop_fresh, fresh_for, store_of, use_fresh, verdict
from ..fresh.internal import registered
from ..store import Store
from ..tokens import Account, Keeper, TokenKind, default_keeper, refresh_deadline
from ..tokens.internal import load_account, seconds_left, secret_prefix
from ..work import Result, WorkerContext
from ._lifecycle import TOKEN_REFRESH_WORKER as TOKEN_REFRESH_WORKER  # re-exported

log = logging.getLogger(__name__)

#: the seed's threshold for the backup check
TOKEN_REFRESH_THRESHOLD = dt.timedelta(minutes=30)


def use_keeper(keeper: Keeper) -> None:
    """Make background works on ``keeper.store``'s database use ``keeper``.

    For applications that run the engine in-process with their own keeper
    (a proxy, a CA bundle, a test clock): the worker then shares its cache,
    single flight and HTTP client. Undo with :func:`drop_keeper`.
    """
    use_fresh(keeper)


def drop_keeper(keeper: Keeper) -> None:
    """Stop using ``keeper`` for background works (the next work makes its own)."""
    drop_fresh(keeper)


def keeper_for(store: Store | None) -> Keeper:
    """The keeper that background workers use for ``store`` (one per database per process).

    The one registered with :func:`use_keeper` for that store or database
    file, else a new one kept for the next works. With no store known, the
    process-wide default keeper (:func:`stayfresh.tokens.set_default_keeper`).
    Two keepers on one store never refresh twice: the store's lock and
    re-read make sure.
    """
    if store is None:
        return default_keeper()
    found = fresh_for(store, _TOKENS, Keeper)
    assert isinstance(found, Keeper)
    return found


_TOKENS = TokenKind()


def work_keeper(ctx: WorkerContext) -> Keeper:
    """The keeper for a running work: the runner's store, else the work's ``db``, else the default."""
    if ctx.store is None and not ctx.input.get("db"):
        return default_keeper()
    return keeper_for(store_of(ctx))


def forget_cached(name: str) -> None:
    """Drop what this process's background keepers remember of ``name`` (after logout)."""
    for fresh in registered(_TOKENS):
        fresh.forget(name)


#: settings key prefix: the state last announced for an account ("needs_login" or none)
ANNOUNCED_PREFIX = "announced:"


def announce_account(store: Store, name: str, *, needs_login: bool, message: str = "") -> bool:
    """Tell the user once when ``name`` starts needing a login, and once when it recovers.

    A WARNING (or INFO) log line and every notification sink, on a change of
    state only — what was last announced is kept in the store, so the next
    background run, the next command or another process does not announce it
    again. Returns whether it announced. A sink that fails is logged, never
    fatal: the account's status and the work's recorded failure say it too.
    """
    key = ANNOUNCED_PREFIX + name
    if (store.get_setting(key) == "needs_login") == needs_login:
        return False
    store.set_setting(key, "needs_login" if needs_login else None)
    if needs_login:
        title = f"stayfresh: {name} needs a new login"
        log.warning("%s: %s", name, message)
    else:
        title = f"stayfresh: {name} recovered"
        message = message or f"account {name} refreshes its token again"
        log.info("%s: %s", name, message)
    from ..notify import SinkError, sink_for  # jobs -> notify; only needed on this path

    for row in store.list_notify_sinks():
        if row.kind == "log":
            continue  # the log line above is that line already
        sink = sink_for(row)
        try:
            sink.send(title, message)
        except SinkError as exc:
            log.warning("could not notify through %s: %s", sink, exc)
    return True


def _hours(seconds: float) -> str:
    if seconds in (float("inf"), float("-inf")):
        return "unknown time remaining"
    if abs(seconds) >= 3600:
        return f"{seconds / 3600:.1f} hours remaining"
    return f"{seconds / 60:.0f} minutes remaining"


def _needs_login(name: str, account: Account) -> Result:
    message = (
        f"account {name} needs a new login "
        f"({account.status_message or 'refresh token rejected'}); {login_hint(name)}"
    )
    return Result.failure({"account": name, "needs_login": True, "message": message})


def refresh_account(keeper: Keeper, name: str) -> Result:
    """One backup check of account ``name`` (the worker's body, callable without the engine).

    Layer 2 of :mod:`stayfresh.fresh` — :func:`~stayfresh.fresh.background_check`,
    the same ``ensure`` as on use — with the seed's log lines, its messages and
    the needs-login announcement around it.
    """
    log.info("Token refresh worker started for %s", name)
    try:
        account = load_account(keeper.store, name)
    except AccountNotFound:
        message = f"account {name} does not exist; cancel this work or add the account"
        log.warning("%s", message)
        return Result.failure({"account": name, "message": message})
    tokens = account.tokens
    if not account.needs_login:
        log.info("Loaded refresh_token from DB: %s", secret_prefix(tokens.refresh_token))
        now = keeper.clock()
        expiry = tokens.expires_at.isoformat() if tokens.expires_at else "unknown"
        log.info("Token expires at: %s (%s)", expiry, _hours(seconds_left(tokens, now)))
        if now >= refresh_deadline(tokens, TOKEN_REFRESH_THRESHOLD.total_seconds()):
            log.info("Token expiring soon (< 30 minutes), triggering refresh")
    else:
        log.info("%s needs a login; not contacting the provider", name)
    outcome = background_check(keeper, name)
    decided = verdict(keeper.kind, outcome)
    if decided == "failure" and isinstance(outcome.error, ReauthRequired):
        failed = _needs_login(name, load_account(keeper.store, name))
        # found here or by the just-in-time layer (or another process) first: announced once
        announce_account(
            keeper.store, name, needs_login=True, message=str((failed.output or {})["message"])
        )
        return failed
    if decided == "failure":
        message = f"the provider refused the refresh of {name}: {outcome.error}"
        log.warning("%s", message)
        return Result.failure({"account": name, "message": message})
    if decided == "retry":
        log.warning("%s: token refresh failed, will retry with backoff: %s", name, outcome.error)
        return Result.retry()
    announce_account(keeper.store, name, needs_login=False)  # a no-op unless it had been lost
    result = outcome.state
    assert result is not None
    output: dict[str, Any] = {
        "account": name,
        "refreshed": outcome.changed,
        "status": outcome.status,
        "expires_at": result.tokens.expires_at.isoformat() if result.tokens.expires_at else None,
    }
    if not outcome.changed:
        log.info("Token still valid, no refresh needed")
        return Result.success(output)
    if result.tokens.refresh_token == tokens.refresh_token:
        log.info("Provider didn't return a new refresh_token: refresh token kept")
    else:
        log.info("Provider rotated the refresh token")
    log.info("Token refresh complete. New expiry: %s", output["expires_at"] or "unknown")
    return Result.success(output)


def token_refresh_worker(ctx: WorkerContext) -> Result:
    """The registered worker: input ``{"account": NAME}``."""
    name = ctx.input.get("account")
    if not isinstance(name, str) or not name:
        return Result.failure({"message": 'token refresh work needs input {"account": NAME}'})
    try:
        keeper = work_keeper(ctx)
    except ConfigError as exc:
        return Result.failure({"account": name, "message": str(exc)})
    return refresh_account(keeper, name)
