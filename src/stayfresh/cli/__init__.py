"""The ``stayfresh`` command line."""

from __future__ import annotations

from ._app import cli

__all__ = ["cli", "main"]


def _register() -> None:
    # each module attaches its commands to ``cli`` when imported
    from . import _accounts, _token  # noqa: F401


_register()


def main() -> None:
    """Console-script entry point."""
    cli()
