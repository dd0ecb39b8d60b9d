"""The ``stayfresh`` root command: global options, logging, exit codes.

Every option falls back to a ``STAYFRESH_*`` environment variable. Errors of
the :mod:`stayfresh.errors` hierarchy become one line on stderr and the exit
code documented in the README (0 ok, 1 other, 2 usage, 3 re-auth, 4 transient).
Usage errors (a bad option value, a missing argument) are one line too, so a
script reads ``error: …`` and exit 2 whatever was wrong. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property, wraps
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from .._wiring import install
from ..errors import ConfigError, ReauthRequired, StayfreshError

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: the longest error line printed; a message quoting hostile input is cut here
MAX_ERROR_LINE = 500


def one_line(text: str, limit: int = MAX_ERROR_LINE) -> str:
    """``text`` on one line (runs of whitespace collapsed), cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Context:
    """What every command shares: the database location and the opened store."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db

    @cached_property
    def store(self) -> Store:
        from ..store import open_store  # a command that never opens it never loads the store
        from ._foreground import foreground_layer

        try:
            store = open_store(self.db)
        except OSError as exc:  # a --db path that cannot be a database here: bad input
            where = self.db or "the default database"
            raise ConfigError(f"cannot open {where}: {exc.strerror or exc}") from None
        # the notification foreground layer: "whenever a command runs", on the right --db
        foreground_layer(store)
        return store


pass_ctx = click.make_pass_decorator(Context)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message and the record's own fields.

    The fields are what a call passed as ``extra`` (a work's name, id, worker,
    outcome, …): names and numbers, never tokens — the messages themselves show
    secrets only as prefixes (``tokens.internal.secret_prefix``).
    """

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message",
        "asctime",
        "taskName",
    }

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update((k, v) for k, v in vars(record).items() if k not in self._STANDARD)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup_logging(verbosity: int, level_name: str | None, log_format: str = "text") -> None:
    """stderr logging: ``-v`` INFO, ``-vv`` DEBUG, else ``STAYFRESH_LOG_LEVEL`` or WARNING.

    ``log_format`` ``json`` writes one JSON object per line (:class:`JsonLogFormatter`).
    """
    if verbosity >= 2:
        level = logging.DEBUG
    elif verbosity == 1:
        level = logging.INFO
    else:
        level = getattr(logging, (level_name or "WARNING").upper(), logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("stayfresh")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # libraries we drive log their own retries; show them only when asked (-v)
    for name in ("psycopg", "httpx2", "httpx"):
        other = logging.getLogger(name)
        other.handlers[:] = [handler]
        other.setLevel(level if verbosity else logging.ERROR)
        other.propagate = False


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn stayfresh errors into a message and their exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ReauthRequired as exc:
            click.echo(f"error: {one_line(str(exc))}\n{exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except StayfreshError as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


class _OneLineError(click.ClickException):
    """A usage or typed error shown as ``error: …`` on one line, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance too

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class StayfreshGroup(click.Group):
    """The root group: click's usage errors become one line, like every other error.

    click prints a usage block, a hint and the error on three or more lines;
    scripts and people both read one ``error: …`` line better. The help hint
    stays, in parentheses. A typed error raised while the arguments are read
    (in a parameter type or callback, outside :func:`handle_errors`) is shown
    the same way. Other exceptions are bugs and are not caught here.

    Commands load lazily: :meth:`lazy_commands` says which modules define
    each command, and a module is imported only when its command runs (or
    when ``--help`` lists them all). ``stayfresh token NAME`` runs once per
    request in scripts; it should not pay for importing every other command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, tuple[str, ...]] = {}

    def lazy_commands(self, modules: dict[str, tuple[str, ...]]) -> None:
        """Declare command name -> the modules (absolute names) that attach it and its subcommands."""
        self._lazy.update(modules)

    @property
    def declared(self) -> bool:
        """Whether :meth:`lazy_commands` has been told the commands."""
        return bool(self._lazy)

    def _load(self, modules: tuple[str, ...]) -> None:
        if modules:
            for name in modules:
                importlib.import_module(name)  # its decorators attach its commands to ``cli``
            add_db_option_everywhere(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load(self._lazy.get(cmd_name, ()))
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for modules in self._lazy.values():
            self._load(modules)
        return super().list_commands(ctx)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except _OneLineError:
        raise
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        raise _OneLineError(one_line(exc.format_message()) + hint, exc.exit_code) from None
    except StayfreshError as exc:
        raise _OneLineError(one_line(str(exc)), exc.exit_code) from None


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None
) -> None:
    """A table on stdout: rich's boxed table on a terminal, plain columns in a pipe.

    In a pipe (or a file) the columns are padded and separated by two spaces
    under an upper-case header, as ``kubectl get`` prints them: no box, no
    colour, nothing cut, one line per row — stable for ``grep``, ``awk``,
    ``column``. rich is imported only for a terminal.
    """
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    lines = [[h.upper() for h in headers], *[[" ".join(c.split()) for c in r] for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    if title:
        click.echo(f"{title}:")
    for line in lines:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _set_db(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).db = value


def _more_logging(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """``-v`` after the command: the root's logging set up again, that much more verbose."""
    if value:
        root = ctx.find_root().params
        setup_logging(
            value + int(root.get("verbose") or 0),
            root.get("log_level"),
            str(root.get("log_format") or "text").lower(),
        )


def add_db_option_everywhere(group: click.Group) -> None:
    """Give every subcommand its own ``--db PATH`` and ``-v`` too (``stayfresh token X --db P -v``).

    Added once, after all commands are registered, so no command has to
    remember them. The options are eager and only set the shared context
    (or the logging), before the command runs.
    """
    for param in group.params:  # every option's STAYFRESH_* fallback, in --help
        if isinstance(param, click.Option) and not param.hidden:
            param.show_envvar = True
    for command in group.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                param.show_envvar = True
        if isinstance(command, click.Group):
            add_db_option_everywhere(command)
            continue
        if not any(p.name == "db" for p in command.params):
            command.params.append(
                click.Option(
                    ["--db"],
                    metavar="PATH",
                    expose_value=False,
                    is_eager=True,
                    callback=_set_db,
                    help="Database file (same as the global --db; env STAYFRESH_DB).",
                )
            )
        if not any(p.name == "more_verbose" for p in command.params):
            command.params.append(
                click.Option(
                    ["-v", "--verbose", "more_verbose"],
                    count=True,
                    expose_value=False,
                    is_eager=True,
                    callback=_more_logging,
                    help="More logging on stderr (same as the global -v).",
                )
            )


@click.group(
    cls=StayfreshGroup,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "STAYFRESH"},
)
@click.option(
    "--db",
    envvar="STAYFRESH_DB",
    show_envvar=True,
    metavar="PATH",
    help="Database file (default: stayfresh.db in the user data directory).",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option(
    "--log-level",
    envvar="STAYFRESH_LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level when -v is not given.",
)
@click.option(
    "--log-format",
    envvar="STAYFRESH_LOG_FORMAT",
    show_envvar=True,
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or as one JSON object per line.",
)
@click.version_option(package_name="stayfresh")
@click.pass_context
def cli(
    ctx: click.Context, db: str | None, verbose: int, log_level: str | None, log_format: str
) -> None:
    """stayfresh keeps OAuth tokens (and other time-sensitive state) fresh."""
    if ctx.invoked_subcommand != "token":
        # the one composition point (stayfresh._wiring). Not for `token NAME`, the hot
        # path that loads no jobs: a reschedule it makes gets its delivery work from
        # the daemon's next background refresh, or from the next other command
        install()
    setup_logging(verbose, log_level, log_format.lower())
    ctx.ensure_object(Context).db = db
