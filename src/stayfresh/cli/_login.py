"""``stayfresh login`` and ``stayfresh account import``: getting tokens into an account.

Instructions for the user (the URL to open, the device code) go to stderr, so
stdout carries only the result (text or ``--json``). No secret is printed:
the result shows the account's status and expiry as ``account show`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError
from ..jobs import on_account_ready
from ..store import Store
from ..tokens import AMAZON_LOCALES, describe
from ._accounts import account
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx
from ._human import duration
from ._params import Duration
from ._secrets import read_limited, read_secret, secret_options

if TYPE_CHECKING:  # the login machinery loads when a login or import runs, not for `account list`
    from ..tokens import DevicePrompt, NewAccount


def _say(message: str) -> None:
    click.echo(message, err=True)


def _show_device_prompt(prompt: DevicePrompt) -> None:
    _say(f"To sign in, open {prompt.verification_uri} and enter the code: {prompt.user_code}")
    if prompt.verification_uri_complete:
        _say(f"(or open {prompt.verification_uri_complete})")
    _say(f"Waiting for approval (the code is valid for {duration(prompt.expires_in)})…")


def _show_url(url: str) -> None:
    _say("Open this URL in a browser to sign in (trying to open it for you):")
    _say(url)
    _say("Waiting for the sign-in to finish…")


def _result(ctx: Context, name: str, verb: str, as_json: bool) -> None:
    info = describe(ctx.store, name)
    if as_json:
        echo_json(info)
        return
    expires = info["expires_at"] or "unknown"
    click.echo(
        f"{verb} {name} ({info['provider']}): status {info['status']}, token expires {expires}"
    )


@cli.command("login")
@click.argument("name")
@click.option(
    "--device", is_flag=True, help="Use the device authorization grant (no browser here)."
)
@click.option(
    "--authorize-url",
    metavar="URL",
    help="Authorization endpoint for oauth2 accounts (oidc ones find it by discovery).",
)
@click.option(
    "--no-browser",
    is_flag=True,
    envvar="STAYFRESH_NO_BROWSER",
    show_envvar=True,
    help="Print the URL but do not open a browser.",
)
@click.option(
    "--timeout",
    type=Duration(minimum=1.0, maximum=86400.0),
    default="5m",
    show_default=True,
    help="How long to wait for the sign-in (1s to 1d; plain numbers are seconds).",
)
@click.option("--scope", help='Scope to request (oidc default: "openid offline_access").')
@click.option(
    "--provider",
    type=click.Choice(["oauth2", "oidc"]),
    help="Create the account at login with this provider (when NAME does not exist).",
)
@click.option("--issuer", metavar="URL", help="OIDC issuer (with --provider oidc).")
@click.option("--token-url", metavar="URL", help="Token endpoint (with --provider).")
@click.option("--client-id", metavar="ID", help="OAuth client id (with --provider).")
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "none"]),
    help="How the client authenticates (with --provider).",
)
@secret_options("client-secret", "client secret")
@json_option
@handle_errors
@pass_ctx
def login(ctx: Context, /, name: str, as_json: bool, **opts: Any) -> None:
    """Sign in to account NAME in a browser (or with --device) and store its tokens.

    The account becomes healthy (status ok) again. For a new account give
    --provider oidc --issuer URL --client-id ID (or oauth2 with --token-url and
    --authorize-url).
    """
    new_account = _new_account(ctx.store, name, opts)
    if opts["device"]:
        if opts["authorize_url"]:
            raise ConfigError("--authorize-url is for the browser login, not --device")
        from ..tokens import login_device

        login_device(
            ctx.store,
            name,
            new_account=new_account,
            scope=opts["scope"],
            timeout=opts["timeout"],
            on_prompt=_show_device_prompt,
        )
    else:
        from ..tokens import login_browser

        login_browser(
            ctx.store,
            name,
            new_account=new_account,
            authorize_url=opts["authorize_url"],
            scope=opts["scope"],
            timeout=opts["timeout"],
            open_browser=not opts["no_browser"],
            on_url=_show_url,
        )
    on_account_ready(ctx.store, name)
    _result(ctx, name, "logged in to", as_json)


def _new_account(store: Store, name: str, opts: dict[str, Any]) -> NewAccount | None:
    """The account to create at login; or, for an existing one, store a new client secret.

    (After ``logout`` a confidential client has lost its secret: ``login NAME
    --client-secret-env VAR`` gives it back.)
    """
    keys = ("issuer", "token_url", "client_id", "auth_method")
    secret = read_secret("client secret", opts["client_secret_env"], opts["client_secret_file"])
    if not opts["provider"]:
        if any(opts[k] for k in keys):
            raise ConfigError("account options at login need --provider (to create the account)")
        if secret:
            row = store.get_account(name)
            if row is None:
                raise ConfigError(f"no account named {name!r}: give --provider to create it")
            store.update_config(name, {**row.config, "client_secret": secret})
        return None
    config: dict[str, Any] = {k: opts[k] for k in keys if opts[k]}
    if opts["scope"]:
        config["scope"] = opts["scope"]
    if secret:
        config["client_secret"] = secret
    from ..tokens import NewAccount

    return NewAccount(provider=opts["provider"], config=config)


@account.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@secret_options("password", "password of an encrypted audible auth file")
@click.option("--replace", is_flag=True, help="Renew the tokens of existing account NAME.")
@click.option("--token-url", metavar="URL", help="Override the provider's token endpoint.")
@click.option(
    "--locale",
    type=click.Choice(sorted(AMAZON_LOCALES)),
    help="Amazon marketplace, when the file has none.",
)
@json_option
@handle_errors
@pass_ctx
def account_import(
    ctx: Context, /, name: str, file: str, replace: bool, as_json: bool, **opts: Any
) -> None:
    """Import account NAME from FILE (- for stdin).

    FILE is stayfresh's account JSON or an auth file of the audible package /
    audible-cli (plain, or encrypted: give the password with --password-env
    VAR). Only tokens, expiry, locale and device serial are kept.
    """
    if file == "-" and opts["password_file"] == "-":
        raise ConfigError("FILE and --password-file cannot both be stdin")
    password = read_secret("file password", opts["password_env"], opts["password_file"])
    from ..tokens import import_account, read_import_file
    from ..tokens.internal import MAX_IMPORT_FILE

    raw = read_limited(file, MAX_IMPORT_FILE, "account file")
    imported = read_import_file(raw, password=password)
    overrides = {k: opts[k] for k in ("token_url", "locale") if opts[k]}
    import_account(ctx.store, name, imported, replace=replace, overrides=overrides)
    on_account_ready(ctx.store, name)
    _result(ctx, name, "imported" if not replace else "renewed tokens of", as_json)
