"""The ``stayfresh`` command line."""

from __future__ import annotations

from ._app import cli

# each module attaches its commands to ``cli`` when imported
from . import _accounts, _login, _token  # noqa: E402, F401, I001

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
