"""``stayfresh account …``: add, list, show, remove."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ..errors import ConfigError
from ..jobs import on_account_ready
from ..tokens import AMAZON_LOCALES, TokenSet, add_account, describe, describe_all, remove_account
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx, print_table
from ._human import expires_in, local
from ._secrets import read_secret, secret_options


def parse_when(value: str | None) -> dt.datetime | None:
    """``--expires-at``: any expiry format stayfresh reads, or ``+90m``-style offsets."""
    if value is None:
        return None
    from ..tokens.internal import parse_expiry_input

    try:
        return parse_expiry_input(value, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise ConfigError(f"--expires-at: {exc}") from None


#: ``account add`` options stored as the account's configuration
_CONFIG_OPTIONS = (
    "token_url", "issuer", "client_id", "auth_method", "scope", "locale", "api_url", "token_host",
)  # fmt: skip


@cli.group()
def account() -> None:
    """Manage accounts and their tokens."""


@account.command("add")
@click.argument("name")
@click.option(
    "--provider",
    type=click.Choice(["oauth2", "oidc", "amazon"]),
    required=True,
    help="Kind of token endpoint.",
)
@click.option("--token-url", metavar="URL", help="Token endpoint (overrides the provider default).")
@click.option("--issuer", metavar="URL", help="OIDC issuer (token URL found by discovery).")
@click.option("--client-id", metavar="ID", help="OAuth client id.")
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "none"]),
    help="How the client authenticates (default client_secret_basic).",
)
@click.option("--scope", help="Scope to request on refresh.")
@click.option(
    "--locale",
    type=click.Choice(sorted(AMAZON_LOCALES)),
    help="Amazon marketplace (amazon provider).",
)
@click.option(
    "--token-host",
    type=click.Choice(["amazon", "audible"]),
    help="Amazon: refresh at api.audible.<tld> for accounts from before Amazon sign-in "
    "(the audible package's with_username), else api.amazon.<tld> (default).",
)
@click.option(
    "--api-url", metavar="URL", help="API base (overrides the provider's; local servers, tests)."
)
@click.option("--expires-at", "expires_at", metavar="WHEN", help="Expiry of the access token.")
@secret_options("client-secret", "client secret")
@secret_options("refresh-token", "refresh token")
@secret_options("access-token", "access token")
@secret_options("device-serial", "device serial")
@json_option
@handle_errors
@pass_ctx
def account_add(ctx: Context, /, name: str, provider: str, as_json: bool, **opts: Any) -> None:
    """Add account NAME. Secrets come from environment variables or files, never argv."""
    refresh = read_secret(
        "refresh token", opts["refresh_token_env"], opts["refresh_token_file"], required=True
    )
    access = read_secret("access token", opts["access_token_env"], opts["access_token_file"])
    secret = read_secret("client secret", opts["client_secret_env"], opts["client_secret_file"])
    serial = read_secret("device serial", opts["device_serial_env"], opts["device_serial_file"])
    config: dict[str, Any] = {key: opts[key] for key in _CONFIG_OPTIONS if opts.get(key)}
    if secret:
        config["client_secret"] = secret
    if serial:
        config["device_serial"] = serial
    expires_at = parse_when(opts["expires_at"])
    if access is None:
        expires_at = None  # nothing to keep: the first use refreshes
    tokens = TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        scope=opts.get("scope"),
    )
    add_account(ctx.store, name, provider, config, tokens)
    on_account_ready(ctx.store, name)
    info = describe(ctx.store, name)
    if as_json:
        echo_json(info)
    else:
        click.echo(f"added account {name} ({provider})")


@account.command("list")
@json_option
@handle_errors
@pass_ctx
def account_list(ctx: Context, as_json: bool) -> None:
    """List accounts with their status and token expiry."""
    rows = describe_all(ctx.store)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no accounts (add one with `stayfresh account add`)")
        return
    table = []
    for row in rows:
        m = row["metrics"]
        left = row["expires_in_minutes"]
        table.append([
            row["name"],
            row["provider"],
            row["status"],
            expires_in(left),
            str(m["jit_refreshes"] + m["background_refreshes"]),
            str(m["failures"]),
        ])  # fmt: skip
    print_table(["name", "provider", "status", "expires in", "refreshes", "failures"], table)


@account.command("show")
@click.argument("name")
@json_option
@handle_errors
@pass_ctx
def account_show(ctx: Context, name: str, as_json: bool) -> None:
    """Show one account: status, expiry and metrics (never secrets)."""
    info = describe(ctx.store, name)
    if as_json:
        echo_json(info)
        return
    click.echo(f"account:   {info['name']} ({info['provider']})")
    status = info["status"]
    if info["status_message"]:
        status += f" — {info['status_message']}"
    click.echo(f"status:    {status}")
    for key, value in info["config"].items():
        click.echo(f"{key + ':':<10} {value}")
    left = info["expires_in_minutes"]
    click.echo(
        f"expires:   {local(info['expires_at']) if info['expires_at'] else 'unknown'}"
        + (f" ({expires_in(left)})" if left is not None else "")
    )
    m = info["metrics"]
    click.echo(
        f"refreshes: {m['jit_refreshes']} just-in-time, {m['background_refreshes']} background, "
        f"{m['failures']} failed"
    )
    if m["avg_latency_ms"] is not None:
        click.echo(f"latency:   avg {m['avg_latency_ms']} ms, p95 {m['p95_latency_ms']} ms")
    if m["last_error"]:
        click.echo(f"last error: {m['last_error']}")


@account.command("remove")
@click.argument("name")
@json_option
@handle_errors
@pass_ctx
def account_remove(ctx: Context, name: str, as_json: bool) -> None:
    """Remove account NAME, its tokens and its background works."""
    from ..jobs.internal import account_tag
    from ..work import WorkManager

    describe(ctx.store, name)  # AccountNotFound before anything is cancelled
    cancelled = WorkManager(ctx.store).cancel(tag=account_tag(name))
    remove_account(ctx.store, name)
    if as_json:
        echo_json({"removed": name, "cancelled_works": sorted(cancelled)})
        return
    click.echo(
        f"removed account {name}" + (f" ({len(cancelled)} work(s) cancelled)" if cancelled else "")
    )
