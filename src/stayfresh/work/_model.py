"""The values of the work engine: requests, states, policies, results, views.

Value objects are frozen and keyword-only. Times inside the store are POSIX
floats; the public views (:class:`WorkInfo`, :class:`RunInfo`) convert them to
aware UTC datetimes at this boundary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from .._input import check_name
from ..errors import ConfigError
from ..store import RunRow, WorkRow
from ._constraints import Constraints
from ._schedule import DEFAULT_BACKOFF, DEFAULT_TIMEOUT, BackoffPolicy, parse_duration


class WorkState(StrEnum):
    """WorkManager's states.

    ENQUEUED: waiting for its time or its constraints. RUNNING: a runner holds
    its lease. SUCCEEDED / FAILED: a one-time work's end. BLOCKED: waiting for
    prerequisites in a chain. CANCELLED: stopped on request — the only end a
    periodic work has.
    """

    ENQUEUED = "ENQUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    CANCELLED = "CANCELLED"

    @property
    def is_finished(self) -> bool:
        return self in (WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED)


class ExistingWorkPolicy(StrEnum):
    """What enqueueing a one-time work does when unfinished work of that name exists."""

    KEEP = "keep"
    REPLACE = "replace"
    APPEND = "append"
    UPDATE = "update"


class ExistingPeriodicWorkPolicy(StrEnum):
    """What enqueueing a periodic work does when work of that name exists."""

    KEEP = "keep"
    UPDATE = "update"
    CANCEL_AND_REENQUEUE = "cancel_and_reenqueue"


def _seconds(value: float | str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value, what=what)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _json_object(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A JSON-serialisable dict copy, so that what the store keeps is what was given."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a JSON object (a mapping), not {type(value).__name__}")
    try:
        return dict(json.loads(json.dumps(dict(value))))
    except RecursionError:  # a mapping nested thousands deep (or one that contains itself)
        raise ConfigError(f"{what} nests too deeply to store") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not JSON-serialisable: {exc}") from exc


#: characters a work name or tag may use besides a name's (``token-refresh:alice``)
WORK_NAME_EXTRA = ":/"


def check_work_name(value: object, what: str = "work name") -> str:
    """A work name or tag: a safe name (see :func:`stayfresh._input.check_name`) that may use : and /."""
    try:
        return check_name(value, what, extra=WORK_NAME_EXTRA)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkRequest:
    """What to run and when: one-time (``every=None``) or periodic.

    Durations accept seconds or strings such as ``"15m"`` (at most ten years).
    Periodic intervals below 15 minutes (flex below 5) are refused with
    :class:`ConfigError` when enqueued (WorkManager raises them silently),
    unless ``STAYFRESH_MIN_INTERVAL`` lowers the minimum. Tags are names.
    """

    worker: str
    input: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    every: float | None = None
    flex: float | None = None
    delay: float = 0.0
    constraints: Constraints = dataclasses.field(default_factory=Constraints)
    backoff: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    backoff_delay: float = DEFAULT_BACKOFF
    timeout: float = DEFAULT_TIMEOUT
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.worker or not isinstance(self.worker, str):
            raise ConfigError("a work needs a worker: 'package.module:function' or a built-in name")
        set_ = object.__setattr__
        set_(self, "input", _json_object(self.input, "input"))
        set_(self, "every", _seconds(self.every, "every"))
        set_(self, "flex", _seconds(self.flex, "flex"))
        set_(self, "delay", _seconds(self.delay, "delay") or 0.0)
        set_(self, "backoff_delay", _seconds(self.backoff_delay, "backoff delay"))
        set_(self, "timeout", _seconds(self.timeout, "timeout"))
        set_(self, "backoff", BackoffPolicy(self.backoff))
        if isinstance(self.tags, str):
            raise ConfigError("tags must be a sequence of strings, not one string")
        set_(self, "tags", tuple(dict.fromkeys(check_work_name(t, "tag") for t in self.tags)))
        if self.every is not None and self.every <= 0:
            raise ConfigError("a periodic interval must be positive")
        if self.flex is not None and self.every is None:
            raise ConfigError("a flex window needs a periodic interval")
        if not self.timeout or self.timeout <= 0:
            raise ConfigError("a time limit must be positive")

    @property
    def periodic(self) -> bool:
        return self.every is not None

    @classmethod
    def one_time(cls, worker: str, **options: Any) -> WorkRequest:
        """A work that runs once (after ``delay``), retried per its backoff."""
        return cls(worker=worker, **options)

    @classmethod
    def periodic_every(cls, worker: str, every: float | str, **options: Any) -> WorkRequest:
        """A work that runs once per ``every`` (optionally within a ``flex`` window)."""
        return cls(worker=worker, every=every, **options)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Result:
    """What a worker returns: success (with output), retry, or failure (with output)."""

    kind: Literal["success", "retry", "failure"]
    output: Mapping[str, Any] | None = None

    @classmethod
    def success(cls, output: Mapping[str, Any] | None = None) -> Result:
        return cls("success", _json_object(output, "output") if output is not None else None)

    @classmethod
    def retry(cls) -> Result:
        return cls("retry")

    @classmethod
    def failure(cls, output: Mapping[str, Any] | None = None) -> Result:
        return cls("failure", _json_object(output, "output") if output is not None else None)


def _at(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _when(ts: float | None) -> dt.datetime | None:
    return None if ts is None else _at(ts)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkInfo:
    """A work as the public sees it (WorkManager's ``WorkInfo``)."""

    id: str
    name: str | None
    worker: str
    state: WorkState
    periodic: bool
    interval: float | None
    flex: float | None
    run_attempt: int
    next_run_at: dt.datetime | None
    input: Mapping[str, Any]
    output: Mapping[str, Any] | None
    progress: Mapping[str, Any] | None
    tags: tuple[str, ...]
    constraints: Constraints
    last_outcome: str | None
    last_error: str | None
    last_run_at: dt.datetime | None
    created_at: dt.datetime
    prerequisites: tuple[str, ...]
    lease_owner: str | None

    @classmethod
    def from_row(cls, row: WorkRow) -> WorkInfo:
        state = WorkState(row.state)
        waiting = state in (WorkState.ENQUEUED, WorkState.RUNNING)
        return cls(
            id=row.id,
            name=row.name,
            worker=row.worker,
            state=state,
            periodic=row.periodic,
            interval=row.interval,
            flex=row.flex if row.flex != row.interval else None,
            run_attempt=row.run_attempt,
            next_run_at=_when(row.next_run_at) if waiting else None,
            input=row.input,
            output=row.output,
            progress=row.progress,
            tags=row.tags,
            constraints=Constraints.from_json(row.constraints),
            last_outcome=row.last_outcome,
            last_error=row.last_error,
            last_run_at=_when(row.last_run_at),
            created_at=_at(row.created_at),
            prerequisites=row.prerequisites,
            lease_owner=row.lease_owner,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "worker": self.worker,
            "state": self.state.value,
            "periodic": self.periodic,
            "interval": self.interval,
            "flex": self.flex,
            "run_attempt": self.run_attempt,
            "next_run_at": _iso(self.next_run_at),
            "input": dict(self.input),
            "output": None if self.output is None else dict(self.output),
            "progress": None if self.progress is None else dict(self.progress),
            "tags": list(self.tags),
            "constraints": self.constraints.to_json(),
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "last_run_at": _iso(self.last_run_at),
            "created_at": _iso(self.created_at),
            "prerequisites": list(self.prerequisites),
            "runner": self.lease_owner,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunInfo:
    """One attempt of a work, from its history."""

    work_id: str
    attempt: int
    runner: str
    scheduled_at: dt.datetime
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: str
    output: Mapping[str, Any] | None
    error: str | None

    @classmethod
    def from_row(cls, row: RunRow) -> RunInfo:
        return cls(
            work_id=row.work_id,
            attempt=row.attempt,
            runner=row.runner_id,
            scheduled_at=_at(row.scheduled_at),
            started_at=_at(row.started_at),
            ended_at=_when(row.ended_at),
            outcome=row.outcome,
            output=row.output,
            error=row.error,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "work_id": self.work_id,
            "attempt": self.attempt,
            "runner": self.runner,
            "scheduled_at": _iso(self.scheduled_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "outcome": self.outcome,
            "output": None if self.output is None else dict(self.output),
            "error": self.error,
        }
