"""Reading secrets from the environment, a file or stdin — never from argv."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def secret_options(name: str, what: str, *, required: bool = False) -> Callable[[F], F]:
    """Add ``--NAME-env VAR`` and ``--NAME-file PATH`` (``-`` for stdin) to a command."""
    env_opt = click.option(
        f"--{name}-env",
        metavar="VAR",
        help=f"Read the {what} from environment variable VAR.",
    )
    file_opt = click.option(
        f"--{name}-file",
        metavar="PATH",
        help=f"Read the {what} from a file (- for stdin).",
    )

    def decorate(func: F) -> F:
        return env_opt(file_opt(func))

    return decorate


def read_secret(
    what: str, env: str | None, file: str | None, *, required: bool = False
) -> str | None:
    """The secret named by ``env`` or ``file``; None when neither was given."""
    if env and file:
        raise ConfigError(f"give the {what} by environment variable or by file, not both")
    value: str | None = None
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"environment variable {env} (for the {what}) is not set")
    elif file:
        try:
            value = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} from {file}: {exc.strerror}") from None
    if value is not None:
        value = value.strip()
        if not value:
            raise ConfigError(f"the {what} is empty")
    if value is None and required:
        raise ConfigError(f"the {what} is required (--{what.replace(' ', '-')}-env VAR or -file)")
    return value
