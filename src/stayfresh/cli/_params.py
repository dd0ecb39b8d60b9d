"""Click types for every option that takes a duration, a name, a worker or a JSON object.

Each type is a thin wrapper around the one parser of its kind
(:mod:`stayfresh._input`), so that every
command accepts the same forms, and a bad value is refused as a one-line
usage error (exit 2) while the arguments are parsed: before the command
opens the database, so nothing is ever half-stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .._input import MAX_DURATION, check_text, format_duration, loads_json, parse_duration
from ..errors import ConfigError, StayfreshError


class Duration(click.ParamType[float]):
    """``30s``, ``15m``, ``1h30m``, ``2d``, ``250ms`` or plain seconds, within bounds.

    Every duration is finite, at least 0 and at most ten years (the parser's
    rules); ``positive`` also refuses 0, ``minimum`` / ``maximum`` narrow the
    range for one option (a lease of at least 1 s, an HTTP timeout of at most
    an hour).
    """

    name = "duration"

    def __init__(
        self, *, positive: bool = False, minimum: float = 0.0, maximum: float = MAX_DURATION
    ) -> None:
        self.positive = positive
        self.minimum = minimum
        self.maximum = maximum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        raw = value if number else str(value)
        try:
            seconds = parse_duration(raw, what="the duration")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.positive and seconds <= 0:
            self.fail("the duration must be more than 0", param, ctx)
        if seconds < self.minimum:
            self.fail(f"the duration must be at least {format_duration(self.minimum)}", param, ctx)
        if seconds > self.maximum:
            self.fail(f"the duration must be at most {format_duration(self.maximum)}", param, ctx)
        return seconds


#: any duration from 0 to ten years (delays, grace periods, thresholds)
DURATION = Duration()
#: a duration that must be more than 0 (intervals, time limits, retry delays)
POSITIVE_DURATION = Duration(positive=True)


class Checked(click.ParamType[str]):
    """A string accepted by ``check`` (a name rule from :mod:`stayfresh._input` or a part)."""

    def __init__(self, name: str, check: Callable[[str], str]) -> None:
        self.name = name
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self.check(str(value))
        except (ValueError, StayfreshError) as exc:  # a rule's ValueError or ConfigError
            self.fail(str(exc), param, ctx)


#: a library item id as given to ``download``: one printable line, at most 200 characters
ITEM_ID = Checked("item_id", lambda value: check_text(value, "item id"))
#: work names and tags: safe names of at most 200 characters that may use : and /
WORK_NAME = Checked("name", lambda value: _check_work_name(value))
TAG = Checked("tag", lambda value: _check_work_name(value, "tag"))


def _check_work_name(value: object, what: str = "work name") -> str:
    # imported here: the work engine is not needed by commands that only read tokens
    from ..work.internal import check_work_name

    return check_work_name(value, what)


def resolvable_worker(spec: str) -> str:
    """``spec`` if it resolves to a callable now, as a runner would resolve it.

    A typo is exit 2 at ``work add``, not a failure at 3 a.m. in the daemon.
    Importing the user's module may fail in any way (a syntax error, an
    exception at import time): that is bad input, reported as one line.
    """
    if len(spec) > 200:
        raise ConfigError(f"the worker is longer than 200 characters ({len(spec)})")
    from ..work import resolve_worker  # imported here, as in _check_work_name

    try:
        resolve_worker(spec)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(f"cannot load worker {spec!r}: {type(exc).__name__}: {exc}") from None
    return spec


WORKER = Checked("worker", resolvable_worker)


class JsonObject(click.ParamType[dict[str, Any]]):
    """A JSON object of at most 64 KiB nesting at most 32 levels (``work add --input``)."""

    name = "json"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            data = loads_json(str(value), "the value")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if not isinstance(data, dict):
            self.fail(f"the value must be a JSON object, not {type(data).__name__}", param, ctx)
        return data


JSON_OBJECT = JsonObject()
