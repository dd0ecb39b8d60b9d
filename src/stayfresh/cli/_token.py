"""``stayfresh token NAME``: ensure a valid access token and print it."""

from __future__ import annotations

import click

from ..errors import ReauthRequired
from ..tokens import DEFAULT_THRESHOLD, Keeper
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx
from ._params import DURATION, Duration


@cli.command("token")
@click.argument("name")
@click.option(
    "--threshold",
    type=DURATION,
    metavar="DURATION",
    help="Refresh when expiring within this (default 30m).",
)
@click.option("--force", is_flag=True, help="Refresh even if the token is still valid.")
@click.option(
    "--timeout",
    type=Duration(minimum=0.1, maximum=3600.0),
    default=10.0,
    show_default=True,
    envvar="STAYFRESH_TIMEOUT",
    show_envvar=True,
    help="How long to wait for the token endpoint (0.1s to 1h; plain numbers are seconds).",
)
@json_option
@handle_errors
@pass_ctx
def token(
    ctx: Context, name: str, threshold: float | None, force: bool, timeout: float, as_json: bool
) -> None:
    """Print NAME's access token, refreshing it first if it is about to expire."""
    keeper = Keeper(ctx.store, timeout=timeout)
    try:
        result = keeper.ensure_valid_token(
            name, DEFAULT_THRESHOLD if threshold is None else threshold, force=force
        )
    except ReauthRequired as exc:  # found here first: the sinks hear of it now, once
        from ..jobs.internal import announce_account

        announce_account(ctx.store, name, needs_login=True, message=f"{exc} ({exc.hint})")
        raise
    finally:
        keeper.close()
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.access_token or "")
