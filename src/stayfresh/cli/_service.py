"""``stayfresh service …`` (run the daemon at login) and ``stayfresh constraints …``.

``service`` never opens the database: it only needs the ``--db`` path to put
in the service's command line. ``constraints`` shows what the work engine
sees of this machine and stores the overrides for what it cannot see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from ..work.internal import (
    SETTING_PREFIX,
    DeviceProbe,
    install_service,
    overrides_from_store,
    read_device_state,
    render_service,
    service_status,
    set_override,
    uninstall_service,
)
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx

# -- service -------------------------------------------------------------------------


@cli.group()
def service() -> None:
    """Run `stayfresh daemon` as a user service that survives reboots.

    systemd user unit on Linux, launchd agent on macOS, Task Scheduler task on
    Windows (the macOS and Windows paths are untested).
    """


@service.command("install")
@click.option("--dry-run", is_flag=True, help="Say what would be written and run; change nothing.")
@click.option(
    "--print", "print_only", is_flag=True, help="Print the service file and change nothing."
)
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="One more variable for the daemon (repeatable); written into the service file.",
)
@json_option
@handle_errors
@pass_ctx
def service_install(
    ctx: Context, /, dry_run: bool, print_only: bool, env_pairs: tuple[str, ...], as_json: bool
) -> None:
    """Write the service file and enable and start the service.

    The daemon runs with this interpreter (and so this virtualenv), with the
    database given here (--db or STAYFRESH_DB), and carries this shell's other
    STAYFRESH_* settings and PYTHONPATH, plus each --env KEY=VALUE. The file
    is readable by other users: pass no secret with --env.
    """
    env: dict[str, str] = {}
    for pair in env_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise ConfigError(f"--env wants KEY=VALUE, not {pair[:60]!r}")
        env[key] = value
    if print_only:
        rendered = render_service(ctx.db, env)
        if as_json:
            echo_json(rendered.to_json())
        else:
            click.echo(rendered.content, nl=False)
        return
    result = install_service(ctx.db, dry_run=dry_run, env=env)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.message)


@service.command("uninstall")
@json_option
@handle_errors
@pass_ctx
def service_uninstall(ctx: Context, /, as_json: bool) -> None:
    """Stop and disable the service and remove its file."""
    result = uninstall_service()
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.message)


@service.command("status")
@json_option
@handle_errors
@pass_ctx
def service_status_cmd(ctx: Context, /, as_json: bool) -> None:
    """Whether the service is installed, current, enabled and running."""
    status = service_status(ctx.db)
    if as_json:
        echo_json(status)
        return

    def word(value: bool | None, yes: str, no: str) -> str:
        return "unknown" if value is None else (yes if value else no)

    click.echo(f"manager:   {status['manager']}")
    click.echo(f"file:      {status['path']}")
    installed = word(status["installed"], "yes", "no")
    if status["installed"] and not status["up_to_date"]:
        installed += " (differs from what `service install` would write now; reinstall)"
    click.echo(f"installed: {installed}")
    click.echo(f"enabled:   {word(status['enabled'], 'yes', 'no')}")
    active = word(status["active"], "running", "not running")
    if status["detail"]:
        active += f" ({status['detail']})"
    click.echo(f"active:    {active}")


# -- constraints -----------------------------------------------------------------------


def _probe(ctx: Context) -> DeviceProbe:
    """Measure free space where this database lives (for "storage not low")."""
    if ctx.db and "://" not in ctx.db:
        return DeviceProbe(data_dir=Path(ctx.db).expanduser().absolute().parent)
    return DeviceProbe()


@cli.group()
def constraints() -> None:
    """What work constraints see on this machine, and overrides for it.

    \b
    Overrides (stored in settings as constraints.KEY):
      network   auto | none | metered | unmetered
      battery   auto | ok | low
      charging  auto | yes | no
      storage   auto | ok | low
    "auto" (the default) means: detect.
    """


@constraints.command("show")
@json_option
@handle_errors
@pass_ctx
def constraints_show(ctx: Context, /, as_json: bool) -> None:
    """Detected network, power and storage, with the active overrides applied."""
    overrides = overrides_from_store(ctx.store)
    state = read_device_state(overrides, probe=_probe(ctx))
    if as_json:
        echo_json(state.to_json())
        return
    n, p, s = state.network, state.power, state.storage
    if n.connected:
        cost = {True: "metered", False: "unmetered", None: "cost unknown, treated as unmetered"}
        via = f" via {', '.join(n.interfaces)}" if n.interfaces else ""
        network = f"connected, {n.kind}{via}, {cost[n.metered]}"
    else:
        network = "not connected"
    click.echo(f"network:   {network}  [{n.source}]")
    if p.battery_present and p.battery_percent is not None:
        battery = f"{p.battery_percent:.0f}%{' (low)' if p.battery_low else ''}"
    else:
        battery = "low" if p.battery_low else "none (never low)"
    click.echo(f"battery:   {battery}  [{p.source}]")
    click.echo(f"charging:  {'yes' if p.charging else 'no'}  [{p.source}]")
    free = "unknown" if s.free_bytes is None else f"{s.free_bytes / 2**30:.1f} GiB free"
    click.echo(f"storage:   {free} at {s.path}{' (low)' if s.low else ''}  [{s.source}]")
    if state.overrides:
        active = ", ".join(f"{k}={v}" for k, v in sorted(state.overrides.items()))
        click.echo(f"overrides: {active}")
    else:
        click.echo("overrides: none (set one with `stayfresh constraints set KEY VALUE`)")


@constraints.command("set")
@click.argument("key", metavar="KEY")
@click.argument("value", metavar="VALUE")
@json_option
@handle_errors
@pass_ctx
def constraints_set(ctx: Context, /, key: str, value: str, as_json: bool) -> None:
    """Override what detection reports: KEY is network, battery, charging or storage."""
    stored = set_override(ctx.store, key, value)
    name = SETTING_PREFIX + key.strip().lower()
    if as_json:
        result: dict[str, Any] = {"key": name, "value": None if stored == "auto" else stored}
        echo_json(result)
    elif stored == "auto":
        click.echo(f"{name} cleared: detected again")
    else:
        click.echo(f"{name} = {stored}")
