"""The work engine's store methods, written once for every backend, and its rules.

The business decisions (which states a unique-work policy looks at, what a
prerequisite's outcome makes of a new work, why a run was lost) are pure
functions of rows and ``now``; the SQL that applies them is in
``queries/work.sql``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ._contracts import WorkStore
from ._rows import RunFinish
from ._sql import SQLBase

#: states in which a work may still run (or wait to)
UNFINISHED_STATES = ("ENQUEUED", "RUNNING", "BLOCKED")


#: terminal states; periodic work only ever reaches CANCELLED
FINISHED_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


def constraints_key(constraints: Mapping[str, Any] | None) -> str:
    """The canonical JSON of a constraint set: one spelling per value.

    Stores keep constraints in this form, so a runner can name the constraint
    sets it found unmet in :meth:`WorkStore.due_work` by plain string equality.
    """
    return json.dumps(dict(constraints or {}), sort_keys=True, separators=(",", ":"))


#: the history error of a run another runner took over, by why it could
LOST_EXPIRED = "runner stopped renewing its lease"


LOST_DEAD = "runner process is gone (taken over before its lease ran out)"


def lost_reason(lease_until: float | None, now: float) -> str:
    """Why a RUNNING work's run was lost when it is claimed again at ``now``."""
    return LOST_EXPIRED if lease_until is None or lease_until <= now else LOST_DEAD


def late_note(finish: RunFinish) -> str:
    """Appended to a ``lost`` run's error when its runner reports after all.

    The run lost its lease (its runner was frozen, suspended, cut off), so its
    result must not touch the work; the history still says what it was.
    """
    return (
        f"; its runner ended it later with {finish.outcome!r} at"
        f" {dt.datetime.fromtimestamp(finish.ended_at, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        " (result discarded: the work had been taken over)"
    )


class WorkSQL(SQLBase, WorkStore):
    """The :class:`WorkStore` methods, for both backends."""
