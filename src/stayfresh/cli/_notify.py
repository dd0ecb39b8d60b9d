"""``stayfresh notify …``: reminders, the window, sinks, the two layers, status.

:func:`foreground_layer` (in ``_foreground``, called by ``_app.Context.store``)
is the foreground layer of the CLI: every command runs it when it first opens
its database, so "the program starts or a command runs" reschedules when 4
hours have passed. It costs one read when nothing is due and never fails the
user's command.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .. import jobs, notify
from ..errors import ConfigError
from ..jobs import internal as jobs_internal
from ..store import DeliveryRow, NewRule, PendingRow, RuleRow, SinkRow, Store
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx
from ._foreground import foreground_layer as foreground_layer  # re-exported
from ._human import duration, local
from ._secrets import read_stdin_line
from ._work import DURATION

if TYPE_CHECKING:
    from ..fresh import Outcome

log = logging.getLogger(__name__)

UTC = dt.UTC


def _local(ts: float, tz: str | None = None) -> str:
    zone = notify._when.zone(tz) if tz else None
    when = dt.datetime.fromtimestamp(ts, UTC)
    return (when.astimezone(zone) if zone else when.astimezone()).strftime("%Y-%m-%d %H:%M %Z")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC).isoformat()


def _rule_json(row: RuleRow) -> dict[str, Any]:
    return {
        "id": row.id, "title": row.title, "body": row.body, "at": _iso(row.at),
        "rrule": row.rrule, "start": row.dtstart, "tz": row.tz, "enabled": row.enabled,
        "created_at": _iso(row.created_at), "snoozed_until": _iso(row.snoozed_until),
    }  # fmt: skip


def _pending_json(row: PendingRow) -> dict[str, Any]:
    return {
        "rule_id": row.rule_id,
        "due_at": _iso(row.due_at),
        "title": row.title,
        "body": row.body,
    }


def _sink_json(row: SinkRow) -> dict[str, Any]:
    target = notify._sinks.privacy_url(row.target) if row.target else None
    return {"id": row.id, "kind": row.kind, "target": target, "at_least_once": row.at_least_once}


def _delivery_json(row: DeliveryRow) -> dict[str, Any]:
    return {
        "rule_id": row.rule_id, "due_at": _iso(row.due_at), "sink_id": row.sink_id,
        "title": row.title, "state": row.state, "attempts": row.attempts,
        "updated_at": _iso(row.updated_at), "next_attempt_at": _iso(row.next_attempt_at),
        "error": row.error,
    }  # fmt: skip


def _echo_refresh(outcome: Outcome[notify.NotifyWindow], as_json: bool) -> None:
    window = outcome.state
    if as_json:
        echo_json(outcome.to_json())
    elif outcome.status == "refreshed" and window is not None and window.result is not None:
        r = window.result
        extra = f", {window.left_out} left out (capacity)" if window.left_out else ""
        click.echo(f"refreshed: {r.scheduled} pending from {r.rules} reminder(s){extra}")
    elif outcome.status == "skipped":
        click.echo("skipped: another refresh holds the scheduling lock")
    elif outcome.status in ("fresh", "joined"):
        click.echo(f"not needed: {outcome.reason}")
    if outcome.status == "failed":
        click.echo(f"error: refresh failed: {outcome.error}", err=True)
        sys.exit(1)


@cli.group("notify")
def notify_group() -> None:
    """Reminders: a rolling 2-day window, refreshed in the foreground and background."""


@notify_group.command("add")
@click.argument("title")
@click.option("--body", default="", help="Text under the title.")
@click.option(
    "--at", "at", metavar="WHEN", help="One time: ISO 8601 (local to --tz), 'now' or '+30m'."
)
@click.option(
    "--rrule",
    metavar="RRULE",
    help="Recurring: an RFC 5545 RRULE, e.g. FREQ=DAILY;BYHOUR=9;BYMINUTE=0.",
)
@click.option(
    "--start", metavar="WHEN", help="First occurrence of --rrule (default: now, to the minute)."
)
@click.option(
    "--tz",
    envvar="STAYFRESH_TZ",
    show_envvar=True,
    help="IANA time zone (default: this machine's).",
)
@click.option("--allow-past", is_flag=True, help="Accept an --at time that has already passed.")
@json_option
@handle_errors
@pass_ctx
def notify_add(
    ctx: Context, title: str, body: str, at: str | None, rrule: str | None,
    start: str | None, tz: str | None, allow_past: bool, as_json: bool,
) -> None:  # fmt: skip
    """Add a reminder and reschedule the window.

    The rule is checked before anything is stored: an RRULE that cannot
    make progress (INTERVAL=0, BY parts that never match) or a one-time
    reminder in the past (without --allow-past) exits with status 2.
    """
    now = dt.datetime.now(UTC)
    new = notify.make_rule(
        title, body=body, at=at, rrule=rrule, start=start, tz=tz, now=now, allow_past=allow_past
    )
    row = ctx.store.add_notify_rule(new, now=now.timestamp())
    outcome = notify.on_app_start(ctx.store, now=now)
    upcoming = [p for p in ctx.store.list_pending_notifications() if p.rule_id == row.id]
    if as_json:
        echo_json({"rule": _rule_json(row), "refresh": outcome.to_json(),
                   "pending": [_pending_json(p) for p in upcoming]})  # fmt: skip
        return
    click.echo(f"reminder {row.id}: {row.title} — {notify.describe(row)}")
    if upcoming:
        click.echo("next: " + ", ".join(_local(p.due_at, row.tz) for p in upcoming[:3]))
    else:
        click.echo("nothing due in the current window")
    if outcome.status == "skipped":
        click.echo("(the window is being refreshed by another process; it will include this)")


@notify_group.command("list")
@json_option
@handle_errors
@pass_ctx
def notify_list(ctx: Context, as_json: bool) -> None:
    """List reminders, each with its next occurrence in the window (in its zone)."""
    rows = ctx.store.list_notify_rules()
    upcoming: dict[int, float] = {}
    for pending in ctx.store.list_pending_notifications():  # earliest first
        upcoming.setdefault(pending.rule_id, pending.due_at)
    if as_json:
        echo_json([{**_rule_json(r), "next_at": _iso(upcoming.get(r.id))} for r in rows])
        return
    if not rows:
        click.echo("no reminders")
    for r in rows:
        state = "" if r.enabled else " (disabled)"
        if r.snoozed_until is not None and r.snoozed_until > time.time():
            state += f" (snoozed until {_local(r.snoozed_until, r.tz)})"
        nxt = f"; next {_local(upcoming[r.id], r.tz)}" if r.id in upcoming else ""
        click.echo(f"{r.id:>4}  {r.title}{state} — {notify.describe(r)}{nxt}")


@notify_group.command("remove")
@click.argument("rule_id", type=int)
@json_option
@handle_errors
@pass_ctx
def notify_remove(ctx: Context, rule_id: int, as_json: bool) -> None:
    """Remove reminder RULE_ID (its pending notifications go with it)."""
    if not ctx.store.delete_notify_rule(rule_id):
        raise ConfigError(f"no reminder with id {rule_id}")
    outcome = notify.on_app_start(ctx.store)
    if as_json:
        echo_json({"removed": rule_id, "refresh": outcome.to_json()})
        return
    click.echo(f"removed reminder {rule_id}")


def _rule_to_store(row: RuleRow, **changes: Any) -> NewRule:
    """The stored rule as a :class:`NewRule`, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "title": row.title, "body": row.body, "at": row.at, "rrule": row.rrule,
        "dtstart": row.dtstart, "tz": row.tz, "enabled": row.enabled,
    }  # fmt: skip
    return NewRule(**{**fields, **changes})


def _existing_rule(store: Store, rule_id: int) -> RuleRow:
    row = store.get_notify_rule(rule_id)
    if row is None:
        raise ConfigError(f"no reminder with id {rule_id}")
    return row


def _replace_rule(ctx: Context, rule_id: int, new: NewRule, verb: str, as_json: bool) -> None:
    """Store the changed rule and reschedule at once (through the lock, as every change)."""
    row = ctx.store.update_notify_rule(rule_id, new)
    if row is None:  # removed meanwhile
        raise ConfigError(f"no reminder with id {rule_id}")
    outcome = notify.on_app_start(ctx.store)
    upcoming = [p for p in ctx.store.list_pending_notifications() if p.rule_id == row.id]
    if as_json:
        echo_json({"rule": _rule_json(row), "refresh": outcome.to_json(),
                   "pending": [_pending_json(p) for p in upcoming]})  # fmt: skip
        return
    state = "" if row.enabled else " (disabled)"
    click.echo(f"{verb} reminder {row.id}: {row.title}{state} — {notify.describe(row)}")
    if upcoming:
        click.echo("next: " + ", ".join(_local(p.due_at, row.tz) for p in upcoming[:3]))


@notify_group.command("edit")
@click.argument("rule_id", type=int)
@click.option("--title", help="New title.")
@click.option("--body", help="New text under the title.")
@click.option("--at", "at", metavar="WHEN", help="Make it one time, at WHEN.")
@click.option("--rrule", metavar="RRULE", help="Make it recurring with this RRULE.")
@click.option("--start", metavar="WHEN", help="First occurrence of the recurring rule.")
@click.option("--tz", help="IANA time zone the rule is evaluated in.")
@click.option("--allow-past", is_flag=True, help="Accept an --at time that has already passed.")
@json_option
@handle_errors
@pass_ctx
def notify_edit(
    ctx: Context, rule_id: int, title: str | None, body: str | None, at: str | None,
    rrule: str | None, start: str | None, tz: str | None, allow_past: bool, as_json: bool,
) -> None:  # fmt: skip
    """Change reminder RULE_ID; what is not given stays as it was.

    The new definition is checked like `notify add` checks a new one, and the
    window is rebuilt at once. --start or --tz alone re-time a recurring
    reminder in place; a one-time reminder is moved with --at.
    """
    row = _existing_rule(ctx.store, rule_id)
    title = row.title if title is None else title
    body = row.body if body is None else body
    if at is None and rrule is None and start is None and tz is None:
        if not title.strip():
            raise ConfigError("a reminder needs a title")
        new = _rule_to_store(row, title=title, body=body)
    else:
        if at is None and rrule is None and row.rrule is None:
            raise ConfigError(f"reminder {rule_id} is one time: move it with --at WHEN")
        checked = notify.make_rule(
            title, body=body, at=at,
            rrule=None if at is not None else rrule or row.rrule,
            start=None if at is not None else start or row.dtstart,
            tz=tz or row.tz, now=dt.datetime.now(UTC), allow_past=allow_past,
        )  # fmt: skip
        new = _rule_to_store(row, **{k: getattr(checked, k) for k in
                                     ("title", "body", "at", "rrule", "dtstart", "tz")})  # fmt: skip
    _replace_rule(ctx, rule_id, new, "changed", as_json)


@notify_group.command("disable")
@click.argument("rule_id", type=int)
@json_option
@handle_errors
@pass_ctx
def notify_disable(ctx: Context, rule_id: int, as_json: bool) -> None:
    """Stop reminder RULE_ID from firing (kept, with its history; `enable` turns it back on)."""
    row = _existing_rule(ctx.store, rule_id)
    _replace_rule(ctx, rule_id, _rule_to_store(row, enabled=False), "disabled", as_json)


@notify_group.command("enable")
@click.argument("rule_id", type=int)
@json_option
@handle_errors
@pass_ctx
def notify_enable(ctx: Context, rule_id: int, as_json: bool) -> None:
    """Let a disabled reminder RULE_ID fire again."""
    row = _existing_rule(ctx.store, rule_id)
    _replace_rule(ctx, rule_id, _rule_to_store(row, enabled=True), "enabled", as_json)


@notify_group.command("snooze")
@click.argument("rule_id", type=int)
@click.option(
    "--for", "span", type=DURATION, metavar="DURATION", help="Snooze this long (1h, 2d…)."
)
@click.option(
    "--until", "until", metavar="WHEN", help="Snooze until WHEN (local to the rule's zone)."
)
@click.option("--clear", is_flag=True, help="End the snooze now.")
@json_option
@handle_errors
@pass_ctx
def notify_snooze(
    ctx: Context, rule_id: int, span: float | None, until: str | None, clear: bool, as_json: bool
) -> None:
    """Keep reminder RULE_ID quiet for a while: no occurrence fires before the end.

    Exactly one of --for, --until and --clear. Occurrences that fall in the
    snooze are dropped, not delayed; the window is rebuilt at once.
    """
    if sum(x is not None and x is not False for x in (span, until, clear or None)) != 1:
        raise ConfigError("give exactly one of --for DURATION, --until WHEN and --clear")
    row = _existing_rule(ctx.store, rule_id)
    now = dt.datetime.now(UTC)
    end: float | None = None
    if span is not None:
        end = now.timestamp() + span
    elif until is not None:
        end = notify.parse_when(until, row.tz, now).timestamp()
        if end <= now.timestamp():
            raise ConfigError(f"--until {until!r} is not in the future")
    snoozed = ctx.store.snooze_notify_rule(rule_id, end)
    if snoozed is None:
        raise ConfigError(f"no reminder with id {rule_id}")
    outcome = notify.on_app_start(ctx.store)
    upcoming = [p for p in ctx.store.list_pending_notifications() if p.rule_id == rule_id]
    if as_json:
        echo_json({"rule": _rule_json(snoozed), "refresh": outcome.to_json(),
                   "pending": [_pending_json(p) for p in upcoming]})  # fmt: skip
        return
    if end is None:
        click.echo(f"reminder {rule_id} is no longer snoozed")
    else:
        click.echo(f"reminder {rule_id} snoozed until {_local(end, row.tz)}")
    if upcoming:
        click.echo("next: " + ", ".join(_local(p.due_at, row.tz) for p in upcoming[:3]))


@notify_group.command("pending")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@handle_errors
@pass_ctx
def notify_pending(ctx: Context, limit: int, as_json: bool) -> None:
    """The window: pending notifications, earliest first."""
    rows = ctx.store.list_pending_notifications(limit=limit)
    if as_json:
        echo_json([_pending_json(p) for p in rows])
        return
    if not rows:
        click.echo("nothing pending")
    for p in rows:
        click.echo(f"{_local(p.due_at)}  [{p.rule_id}] {p.title}")


@notify_group.command("refresh")
@json_option
@handle_errors
@pass_ctx
def notify_refresh(ctx: Context, as_json: bool) -> None:
    """Reschedule now through the scheduling lock; says whether it ran or was skipped."""
    _echo_refresh(notify.refresh(ctx.store, "manual"), as_json)


@notify_group.command("deliver")
@json_option
@handle_errors
@pass_ctx
def notify_deliver(ctx: Context, as_json: bool) -> None:
    """Deliver what is due now, in this process (the daemon does this by itself)."""
    report = notify.deliver_due(ctx.store)
    jobs_internal.schedule_delivery(ctx.store, time.time())
    if as_json:
        echo_json(report.to_json())
        return
    click.echo(
        f"sent {report.sent}, failed {report.failed}, missed {report.missed}, "
        f"unknown {report.unknown}; next {_local(report.next_at) if report.next_at else 'none'}"
    )


@notify_group.command("deliveries")
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
@handle_errors
@pass_ctx
def notify_deliveries(ctx: Context, limit: int, as_json: bool) -> None:
    """Delivery records, most recent first (sent, failed, missed, unknown)."""
    rows = ctx.store.list_notification_deliveries(limit=limit)
    if as_json:
        echo_json([_delivery_json(r) for r in rows])
        return
    if not rows:
        click.echo("no deliveries yet")
    for r in rows:
        err = f" — {r.error}" if r.error else ""
        click.echo(
            f"{_local(r.due_at)}  [{r.rule_id}] {r.title} → sink {r.sink_id}: {r.state}{err}"
        )


@notify_group.command("status")
@json_option
@handle_errors
@pass_ctx
def notify_status_cmd(ctx: Context, as_json: bool) -> None:
    """Telemetry per layer, the window, the background work and deliveries."""
    data = jobs.notify_status(ctx.store, now=time.time())
    if as_json:
        echo_json(data)
        return
    since = data["seconds_since_last_reschedule"]
    click.echo(
        f"reminders: {data['rules']}, pending: {data['pending']}, next due: {data['next_due_at'] or '-'}"
    )
    click.echo(f"last reschedule: {data['last_reschedule_at'] or 'never'}"
               + (f" ({since / 3600:.1f} h ago)" if since is not None else ""))  # fmt: skip
    bg = data["background"]
    click.echo(
        f"background: {'enabled, next run ' + str(bg['next_run_at']) if bg['enabled'] else 'disabled'}"
    )
    for layer, t in data["layers"].items():
        ago = t["seconds_since_last_success"]
        click.echo(
            f"  {layer:<10} executions {t['executions']}, successes {t['successes']}, failures "
            f"{t['failures']}, skips {t['skips']}, last success "
            + (f"{ago / 3600:.1f} h ago" if ago is not None else "never")
        )
    click.echo(
        f"deliveries: {data['deliveries'] or 'none'}; sinks: {data['sinks'] or 'log (default)'}"
    )


@notify_group.group("sink")
def sink_group() -> None:
    """Where notifications go: Apprise URLs, the desktop, the log."""


@sink_group.command("add")
@click.argument("target")
@click.option("--at-least-once", is_flag=True,
              help="After a crash mid-send, send again (may duplicate) instead of never (may lose).")  # fmt: skip
@json_option
@handle_errors
@pass_ctx
def sink_add(ctx: Context, target: str, at_least_once: bool, as_json: bool) -> None:
    """Add a sink: an Apprise URL ('-' reads it from stdin, keeping secrets off the command line), 'desktop' or 'log'."""
    if target == "-":
        target = read_stdin_line("sink URL")
    kind = target if target in ("desktop", "log") else "apprise"
    url = target if kind == "apprise" else None
    notify.check_target(kind, url)
    row = ctx.store.add_notify_sink(kind, url, at_least_once=at_least_once, now=time.time())
    if as_json:
        echo_json(_sink_json(row))
        return
    mode = "at-least-once" if at_least_once else "at-most-once"
    click.echo(f"sink {row.id}: {_sink_json(row)['target'] or kind} ({mode})")


@sink_group.command("list")
@json_option
@handle_errors
@pass_ctx
def sink_list(ctx: Context, as_json: bool) -> None:
    """List sinks (URLs with secrets masked)."""
    rows = ctx.store.list_notify_sinks()
    if as_json:
        echo_json([_sink_json(r) for r in rows])
        return
    if not rows:
        click.echo("no sinks: notifications go to the log")
    for r in rows:
        mode = "at-least-once" if r.at_least_once else "at-most-once"
        click.echo(f"{r.id:>4}  {r.kind:<8} {_sink_json(r)['target'] or ''} ({mode})")


@sink_group.command("remove")
@click.argument("sink_id", type=int)
@json_option
@handle_errors
@pass_ctx
def sink_remove(ctx: Context, sink_id: int, as_json: bool) -> None:
    """Remove sink SINK_ID."""
    if not ctx.store.delete_notify_sink(sink_id):
        raise ConfigError(f"no sink with id {sink_id}")
    if as_json:
        echo_json({"removed": sink_id})
        return
    click.echo(f"removed sink {sink_id}")


@sink_group.command("test")
@click.argument("sink_id", type=int)
@json_option
@handle_errors
@pass_ctx
def sink_test(ctx: Context, sink_id: int, as_json: bool) -> None:
    """Send a real test message through sink SINK_ID now (nothing is recorded)."""
    row = next((r for r in ctx.store.list_notify_sinks() if r.id == sink_id), None)
    if row is None:
        raise ConfigError(f"no sink with id {sink_id}")
    target = _sink_json(row)["target"] or row.kind
    try:
        notify.sink_for(row).send(
            "stayfresh test", f"A test message from stayfresh to sink {row.id}."
        )
    except notify.SinkError as exc:
        if as_json:
            echo_json({"sink": _sink_json(row), "sent": False, "error": str(exc)})
        else:
            click.echo(f"error: sink {row.id} ({target}) failed: {exc}", err=True)
        sys.exit(1)
    if as_json:
        echo_json({"sink": _sink_json(row), "sent": True, "error": None})
    else:
        click.echo(f"sent a test message through sink {row.id} ({target})")


@notify_group.command("background")
@click.argument("action", type=click.Choice(["enable", "disable", "status"]))
@click.option(
    "--every",
    type=DURATION,
    default="3h",
    show_default=True,
    help="Interval of the background work.",
)
@json_option
@handle_errors
@pass_ctx
def notify_background(ctx: Context, action: str, every: float, as_json: bool) -> None:
    """Enable or disable the background layer (the periodic work NOTIFICATION_REFRESH_TASK)."""
    store: Store = ctx.store
    if action == "enable":
        info = jobs.enable_background(store, every=dt.timedelta(seconds=every))
        data: dict[str, Any] = {"enabled": True, **info.to_json()}
    elif action == "disable":
        data = {"enabled": False, "cancelled": jobs.disable_background(store)}
    else:
        found = jobs.background_work(store)
        data = {"enabled": found is not None, **(found.to_json() if found else {})}
    if as_json:
        echo_json(data)
        return
    if not data["enabled"]:
        click.echo("background layer disabled" + (" (cancelled)" if data.get("cancelled") else ""))
    else:
        click.echo(f"background layer enabled: {notify.NOTIFICATION_REFRESH_TASK} every "
                   f"{duration(data['interval'])}, next run {local(data['next_run_at'])}")  # fmt: skip


@notify_group.command("config")
@click.option("--window", type=DURATION, help="How far ahead to schedule (default 2d).")
@click.option("--capacity", type=int, help="Keep at most this many pending (0: no limit).")
@click.option(
    "--grace", type=DURATION, help="Deliver late within this (default 1h), else record missed."
)
@click.option(
    "--send-lease",
    type=DURATION,
    help="A send unrecorded this long is presumed crashed (default 2m).",
)
@json_option
@handle_errors
@pass_ctx
def notify_config(
    ctx: Context, window: float | None, capacity: int | None, grace: float | None,
    send_lease: float | None, as_json: bool,
) -> None:  # fmt: skip
    """Show or change the window, capacity, grace period and send lease."""
    cfg = notify.NotifyConfig.load(ctx.store)
    if any(v is not None for v in (window, capacity, grace, send_lease)):
        cfg = notify.NotifyConfig(
            window=dt.timedelta(seconds=window) if window is not None else cfg.window,
            capacity=(capacity or None) if capacity is not None else cfg.capacity,
            grace=dt.timedelta(seconds=grace) if grace is not None else cfg.grace,
            send_lease=dt.timedelta(seconds=send_lease)
            if send_lease is not None
            else cfg.send_lease,
        )
        cfg.save(ctx.store)
        notify.refresh(ctx.store, "manual")
    if as_json:
        echo_json(cfg.to_json())
        return
    click.echo(
        f"window {cfg.window}, capacity {cfg.capacity or 'none'}, grace {cfg.grace}, "
        f"send lease {cfg.send_lease}"
    )
