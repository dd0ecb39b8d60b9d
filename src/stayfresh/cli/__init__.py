"""The ``stayfresh`` command line."""

from __future__ import annotations

# each command module attaches its commands to ``cli`` when imported
from . import _accounts, _jobs, _library, _login, _notify, _service, _token, _work  # noqa: F401
from ._app import add_db_option_everywhere, cli

add_db_option_everywhere(cli)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
