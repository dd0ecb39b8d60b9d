"""``stayfresh token NAME``: ensure a valid access token and print it."""

from __future__ import annotations

import click

from ..tokens import DEFAULT_THRESHOLD, Keeper
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx


def _threshold(value: str | None) -> float | None:
    if value is None:
        return None
    from ..work._schedule import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--threshold") from None


@cli.command("token")
@click.argument("name")
@click.option(
    "--threshold", metavar="DURATION", help="Refresh when expiring within this (default 30m)."
)
@click.option("--force", is_flag=True, help="Refresh even if the token is still valid.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    envvar="STAYFRESH_TIMEOUT",
    show_envvar=True,
    help="Seconds to wait for the token endpoint.",
)
@json_option
@handle_errors
@pass_ctx
def token(
    ctx: Context, name: str, threshold: str | None, force: bool, timeout: float, as_json: bool
) -> None:
    """Print NAME's access token, refreshing it first if it is about to expire."""
    keeper = Keeper(ctx.store, timeout=timeout)
    try:
        seconds = _threshold(threshold)
        result = keeper.ensure_valid_token(
            name, DEFAULT_THRESHOLD if seconds is None else seconds, force=force
        )
    finally:
        keeper.close()
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.access_token or "")
