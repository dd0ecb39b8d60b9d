"""Reading secrets from the environment, a file or stdin — never from argv.

Every read is bounded: a secret is a few hundred bytes, so reading stops at
:data:`MAX_SECRET_BYTES` + 1 and refuses more (``--refresh-token-file
/dev/zero`` is exit 2 after 64 KiB, not a read that fills the memory).
:func:`read_limited` is the one bounded reader for every file or stdin a
command takes (secrets, account files, sink URLs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

#: the largest secret accepted from a file, stdin or the environment
MAX_SECRET_BYTES = 64 * 1024


def read_limited(file: str, limit: int, what: str) -> bytes:
    """The bytes of ``file`` (``-`` for stdin); :class:`ConfigError` beyond ``limit`` bytes.

    Reads at most ``limit + 1`` bytes, so an endless or huge source costs
    no more than that before it is refused.
    """
    try:
        if file == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            data = (
                stdin.read(limit + 1)
                if stdin is not None
                else sys.stdin.read(limit + 1).encode("utf-8")
            )
        else:
            with open(file, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {file}: {exc.strerror}") from None
    if len(data) > limit:
        source = "stdin" if file == "-" else file
        raise ConfigError(f"the {what} from {source} is larger than {limit // 1024} KiB")
    return data


def read_stdin_line(what: str, limit: int = MAX_SECRET_BYTES) -> str:
    """The first line of stdin, stripped; :class:`ConfigError` when it is longer than ``limit``.

    Unlike :func:`read_limited` it does not wait for end of input, so a person
    can type the value and press Enter.
    """
    line = sys.stdin.readline(limit + 1)
    if len(line) > limit:
        raise ConfigError(f"the {what} from stdin is longer than {limit // 1024} KiB")
    return line.strip()


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
        if len(value.encode("utf-8", "surrogateescape")) > MAX_SECRET_BYTES:
            raise ConfigError(f"the {what} in {env} is larger than {MAX_SECRET_BYTES // 1024} KiB")
    elif file:
        try:
            value = read_limited(file, MAX_SECRET_BYTES, what).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"the {what} in {file} is not UTF-8 text") from None
    if value is not None:
        value = value.strip()
        if not value:
            raise ConfigError(f"the {what} is empty")
    if value is None and required:
        raise ConfigError(f"the {what} is required (--{what.replace(' ', '-')}-env VAR or -file)")
    return value
