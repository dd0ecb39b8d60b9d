"""The ``stayfresh`` command line.

Importing this package loads nothing but this file: ``stayfresh token NAME``
first tries its valid path (:mod:`._fast`: ``sqlite3`` and two reads, no
click), and only when that cannot answer is the click application built.
Which module defines each command (loaded only when that command runs, or
when ``--help`` lists them) is listed here. The root command calls
:func:`stayfresh._wiring.install` (the one composition point) and runs the
notification foreground layer when a command opens its database.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from ._app import StayfreshGroup

# command name -> the modules that attach it (and its subcommands) to ``cli``
_COMMANDS: dict[str, tuple[str, ...]] = {
    "account": ("_accounts", "_login"),  # ``account import`` lives with login
    "completion": ("_completion",),
    "constraints": ("_service",),
    "daemon": ("_work",),
    "download": ("_library",),
    "library": ("_library",),
    "login": ("_login",),
    "logout": ("_jobs",),
    "metrics": ("_jobs",),
    "notify": ("_notify",),
    "service": ("_service",),
    "settings": ("_jobs",),
    "status": ("_jobs",),
    "sync": ("_library",),
    "token": ("_token",),
    "work": ("_work",),
}

__all__ = ["cli", "main"]


def _application() -> StayfreshGroup:
    """The click application, with every command declared (each loads when it runs)."""
    from ._app import add_db_option_everywhere, cli

    if not cli.declared:
        cli.lazy_commands(
            {name: tuple(f"{__name__}.{m}" for m in modules) for name, modules in _COMMANDS.items()}
        )
        add_db_option_everywhere(cli)
    return cli


def __getattr__(name: str) -> object:
    if name == "cli":  # ``from stayfresh.cli import cli`` builds the application on first use
        return _application()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    from ._fast import token_valid_path

    code = token_valid_path(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    _application()()
