"""``stayfresh token NAME`` on its valid path, without click, the store classes or the keeper.

People put ``$(stayfresh token work)`` in front of every request, so the
common answer — the stored token is good for longer than the threshold and
the notification window is fresh — costs ``sqlite3`` and two reads
(:func:`stayfresh.store.peek`). The rules are the ones the full command
applies (:func:`stayfresh.tokens.internal.deadline`,
:func:`stayfresh.notify.reschedule_needed`), not copies. Anything this path
is not sure about returns None and the full command runs instead, from the
start: another option, logging asked for, PostgreSQL, a database that is
missing, not private or not migrated, an account that is missing or due for a
refresh, a notification window to rebuild, any error. Nothing here writes, so
running the full command afterwards is always safe.
"""

from __future__ import annotations

import os
import sys
import time

#: environment variables that change what ``stayfresh token`` does or prints
#: (click reads STAYFRESH_<COMMAND>_<OPTION> for every option, and -v as STAYFRESH_VERBOSE)
_ENV_PREFIXES = ("STAYFRESH_TOKEN_", "STAYFRESH_VERBOSE")


def parse(argv: list[str]) -> tuple[str | None, str] | None:
    """``(db, name)`` for ``[--db PATH] token NAME [--db PATH]``; None for anything else."""
    db: str | None = None
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--db":
            db = next(args, None)
            if db is None:
                return None
        elif arg.startswith("--db="):
            db = arg[5:]
        elif arg.startswith("-"):
            return None  # -v, --json, --force, --threshold, --help, --: the full command
        else:
            rest.append(arg)
    if len(rest) != 2 or rest[0] != "token" or not rest[1]:
        return None
    return db, rest[1]


def _environment_says_more() -> bool:
    if any(key.startswith(_ENV_PREFIXES) for key in os.environ):
        return True
    return os.environ.get("STAYFRESH_LOG_LEVEL", "").upper() in ("DEBUG", "INFO")


def valid_token(db: str | None, name: str, now: float) -> str | None:
    """NAME's stored access token if nothing needs doing first, else None."""
    from ..notify import reschedule_needed
    from ..store import peek
    from ..tokens.internal import DEFAULT_THRESHOLD_SECONDS, deadline

    foreground = os.environ.get("STAYFRESH_NOTIFY_FOREGROUND", "1") != "0"
    reads: dict[str, dict[str, object]] = {"get_account": {"name": name}}
    if foreground:
        reads["freshness"] = {}
    rows = peek(db, reads)
    if rows is None:
        return None
    fresh = rows.get("freshness")
    if foreground and (
        fresh is None
        or reschedule_needed(
            fresh["last_reschedule_at"],
            int(fresh["rules_version"]),
            int(fresh["window_rules_version"]),
            bool(fresh["has_rules"]),
            now,
        )[0]
    ):
        return None  # the full command runs the foreground layer first
    row = rows["get_account"]
    if row is None or not row["access_token"]:
        return None
    if now >= deadline(True, row["expires_at"], row["obtained_at"], DEFAULT_THRESHOLD_SECONDS):
        return None
    token: str = row["access_token"]
    return token


def token_valid_path(argv: list[str]) -> int | None:
    """Print the token and return 0, or return None: run the full command."""
    parsed = parse(argv)
    if parsed is None or _environment_says_more():
        return None
    try:
        token = valid_token(*parsed, now=time.time())
    except Exception:  # the full command does it again, and reports what went wrong
        return None
    if token is None:
        return None
    sys.stdout.write(token + "\n")
    return 0
