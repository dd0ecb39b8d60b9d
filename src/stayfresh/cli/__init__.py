"""The ``stayfresh`` command line.

The composition point: which module defines each command (loaded only when
that command runs, or when ``--help`` lists them) and the start-up hooks
every command runs.
"""

from __future__ import annotations

from ._app import ON_STORE_OPEN, add_db_option_everywhere, cli
from ._foreground import foreground_layer

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

# the notification foreground layer runs whenever a command opens its database
if foreground_layer not in ON_STORE_OPEN:
    ON_STORE_OPEN.append(foreground_layer)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
