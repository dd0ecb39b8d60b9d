"""``stayfresh settings``, ``logout`` and ``status``: the seed's Settings screen and overview.

A settings change is applied to every account's works before the command
returns (and the runners are woken), so "takes effect at once" holds for a
running daemon too.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from ..errors import ConfigError
from ..jobs import apply_settings, collect_status, load_settings, logout, save_setting
from ..jobs.internal import DEFAULTS, DESCRIPTIONS, SETTING_PREFIX, ScheduleChange, health_problems
from ..work import format_duration
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx, print_table
from ._human import expires_in, relative


@cli.group()
def settings() -> None:
    """Show and change settings (library sync, token refresh backup)."""


@settings.command("show")
@json_option
@handle_errors
@pass_ctx
def settings_show(ctx: Context, as_json: bool) -> None:
    """Show every setting, its value and whether it is the default."""
    values = load_settings(ctx.store).to_json()
    if as_json:
        echo_json(values)
        return
    table = []
    for key, value in values.items():
        is_default = ctx.store.get_setting(SETTING_PREFIX + key) is None
        shown = value if is_default else f"{value} (set)"
        table.append([key, shown, DEFAULTS[key], DESCRIPTIONS[key]])
    print_table(["setting", "value", "default", "meaning"], table)


def _describe_change(change: ScheduleChange) -> str:
    every = f" every {format_duration(change.every)}" if change.every else ""
    network = f", network {change.network}" if change.network else ""
    return f"{change.name}: {change.action}{every}{network}"


@settings.command("set")
@click.argument("key")
@click.argument("value")
@json_option
@handle_errors
@pass_ctx
def settings_set(ctx: Context, key: str, value: str, as_json: bool) -> None:
    """Set KEY to VALUE and update every account's works at once.

    \b
    sync_frequency          manual (default), 1h, 6h, 12h, 24h
    sync_wifi_only          on (default) | off
    auto_token_refresh      on (default) | off
    token_refresh_interval  24h (default); at least 15m
    """
    new = save_setting(ctx.store, key, value)
    changes = [c for c in apply_settings(ctx.store, new) if c.action != "none"]
    if as_json:
        echo_json({"settings": new.to_json(), "works": [c.to_json() for c in changes]})
        return
    name = key.strip().lower().replace("-", "_").removeprefix(SETTING_PREFIX)
    click.echo(f"{name} = {new.to_json()[name]}")
    for change in changes:
        if change.action != "unchanged":
            click.echo(f"  {_describe_change(change)}")


@cli.command("logout")
@click.argument("name")
@json_option
@handle_errors
@pass_ctx
def logout_command(ctx: Context, name: str, as_json: bool) -> None:
    """Log out of account NAME: cancel its works and forget its secrets.

    The account stays (status needs_login, "logged out") with its library and
    metrics; `stayfresh login NAME` or `stayfresh account import NAME FILE
    --replace` signs it in again.
    """
    result = logout(ctx.store, name)
    if as_json:
        echo_json(result.to_json())
        return
    click.echo(
        f"logged out of {name}: {len(result.cancelled)} work(s) cancelled, "
        f"forgot {', '.join(result.forgot) or 'nothing (no secrets were stored)'}"
    )


def print_status(data: dict[str, Any]) -> None:
    """The three tables of ``stayfresh status``."""
    now = dt.datetime.fromisoformat(data["generated_at"]).timestamp()
    accounts = []
    for a in data["accounts"]:
        status = a["status"] + (f" ({a['status_message']})" if a["status_message"] else "")
        accounts.append([
            a["name"],
            status,
            expires_in(a["expires_in_minutes"]) if a["has_refresh_token"] else "-",
            relative(a["last_refresh_at"], now),
            f"{a['jit_refreshes']} on use, {a['background_refreshes']} background, "
            f"{a['failures']} failed",
        ])  # fmt: skip
    works = []
    for w in data["works"]:
        outcome = w["last_outcome"] or "-"
        if w["message"] and w["last_outcome"] not in (None, "success"):
            outcome += f": {w['message']}"
        works.append([
            w["name"] or w["id"][:8],
            w["state"] + (f" (attempt {w['attempt']})" if w["attempt"] else ""),
            format_duration(w["every_seconds"]) if w["every_seconds"] else "once",
            relative(w["next_run_at"], now),
            relative(w["last_run_at"], now),
            outcome,
        ])  # fmt: skip
    if accounts:
        headers = ["account", "status", "token expires in", "last refresh", "refreshes"]
        print_table(headers, accounts, title="Accounts")
    else:
        click.echo("no accounts (add one with `stayfresh account add` or `stayfresh login`)")
    if works:
        headers = ["work", "state", "every", "next run", "last run", "last outcome"]
        print_table(headers, works, title="Works")
    else:
        click.echo("no works scheduled")
    daemons = data["daemons"]
    waiting = sum(w["state"] in ("ENQUEUED", "RUNNING", "BLOCKED") for w in data["works"])
    if daemons:
        rows = [[d["host"], str(d["pid"]), relative(d["started_at"], now),
                 relative(d["last_seen_at"], now)] for d in daemons]  # fmt: skip
        print_table(["daemon host", "pid", "started", "last seen"], rows, title="Daemons")
    elif waiting:
        click.echo(
            f"no daemon is running: {waiting} background work(s) wait for one"
            " (start `stayfresh daemon`, or `stayfresh service install`)"
        )
    else:
        click.echo("no daemon is running")
    settings = [
        [key, value + ("" if data["settings_default"][key] else " (set)")]
        for key, value in data["settings"].items()
    ]
    print_table(["setting", "value"], settings, title="Settings")


@cli.command("metrics")
@handle_errors
@pass_ctx
def metrics(ctx: Context) -> None:
    """Print the Prometheus metrics of this database once (what `daemon --metrics` serves)."""
    try:
        from ..jobs.internal import metrics_text
    except ImportError as exc:
        raise ConfigError(
            f"metrics need prometheus_client: pip install 'stayfresh[metrics]' ({exc.name})"
        ) from None
    click.echo(metrics_text(ctx.store), nl=False)


@cli.command("status")
@click.option("--all", "include_cancelled", is_flag=True, help="Include cancelled works.")
@click.option(
    "--check",
    is_flag=True,
    help="Print only what needs a person, one line each; exit 1 if anything does (for cron,"
    " monitors, ExecStartPre).",
)
@json_option
@handle_errors
@pass_ctx
def status(ctx: Context, include_cancelled: bool, check: bool, as_json: bool) -> None:
    """One screen: every account, every work and the settings.

    With --check: nothing but the problems — an account that needs a new
    sign-in or whose token expired after a failed refresh, background works
    with no daemon answering, a work that failed for good, a stale
    notification window — and exit status 1 when there is any (0 when none).
    """
    data = collect_status(ctx.store, include_cancelled=include_cancelled)
    if check:
        problems = health_problems(ctx.store, status=data)
        if as_json:
            echo_json({"ok": not problems, "problems": [p.to_json() for p in problems]})
        else:
            for problem in problems:
                click.echo(f"{problem.kind}: {problem.message}")
            if not problems:
                click.echo("ok: nothing needs attention")
        if problems:
            sys.exit(1)
    elif as_json:
        echo_json(data)
    else:
        print_status(data)
