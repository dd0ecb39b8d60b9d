"""The ``stayfresh`` command line.

Which module defines each command (loaded only when that command runs, or
when ``--help`` lists them). Importing this package wires nothing: the root
command calls :func:`stayfresh._wiring.install` (the one composition point)
and runs the notification foreground layer when a command opens its database.
"""

from __future__ import annotations

from ._app import add_db_option_everywhere, cli

# command name -> the modules that attach it (and its subcommands) to ``cli``
_COMMANDS: dict[str, tuple[str, ...]] = {
    "account": ("_accounts", "_login"),  # ``account import`` lives with login
    "constraints": ("_service",),
    "daemon": ("_work",),
    "download": ("_library",),
    "library": ("_library",),
    "login": ("_login",),
    "logout": ("_jobs",),
    "notify": ("_notify",),
    "service": ("_service",),
    "settings": ("_jobs",),
    "status": ("_jobs",),
    "sync": ("_library",),
    "token": ("_token",),
    "work": ("_work",),
}
cli.lazy_commands(
    {name: tuple(f"{__name__}.{m}" for m in modules) for name, modules in _COMMANDS.items()}
)
add_db_option_everywhere(cli)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
