"""What a kind of state declares, and what one call of a layer did.

A :class:`Kind` is the whole of what is specific to one kind of state: how to
load it, from when it is stale (pure), how to make it fresh, whether a second
caller waits for the refresh in progress (``share``: tokens) or returns at
once (``skip``: the notification window), and how long the old state stays
usable while refreshes fail. Everything else — the in-memory valid path,
single flight in the process, the store's lock between processes, the re-read
after the lock, the shared failure and its cooldown, telemetry, the background
layer — is :mod:`stayfresh.fresh`'s, written once.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from ..errors import ReauthRequired, TransientError

if TYPE_CHECKING:
    from ..store import Store
    from ._effects import Flow

S = TypeVar("S")
#: ``share``: a caller that finds a refresh in progress waits for it and takes its result;
#: ``skip``: it returns at once, marked ``skipped`` (never queued)
Mode = Literal["share", "skip"]
#: layer 1 (``use``: just in time, before the state is used), layer 2 (``background``:
#: the periodic safety net), or a person asking (``manual``)
Layer = Literal["use", "background", "manual"]
Status = Literal["fresh", "refreshed", "joined", "skipped", "failed"]
#: how a failure is counted: retried later, needs a person (a login), or anything else
Failure = Literal["transient", "person", "other"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """One refresh as the kind's :meth:`Kind.refresh` sees it."""

    layer: Layer
    force: bool
    within: float
    clock: Callable[[], float]
    #: how long this call may wait for another caller's work (the caller's lock timeout)
    patience: float = 60.0


class Kind(abc.ABC, Generic[S]):
    """A kind of state kept fresh. Subclass it; :class:`~stayfresh.fresh.Fresh` does the rest.

    The class attributes are its policy; the methods say what is specific to it.
    """

    #: names its lock, telemetry and background works (``token``, ``notify``, ``http``…)
    name: ClassVar[str]
    mode: ClassVar[Mode] = "share"
    #: the default margin handed to :meth:`stale_from` (seconds; tokens: 30 min)
    within: float = 0.0
    #: the margin the background layer uses (None: :attr:`within`)
    background_within: float | None = None
    #: share mode: while another caller refreshes, a state still usable for longer than
    #: this is used at once instead of waiting (tokens: the 2-minute mandatory window)
    wait_window: float = 0.0
    #: keep the state in memory between calls, so the valid path reads no store
    #: (off for state other processes change without refreshing it, like reminders)
    cache: ClassVar[bool] = True
    #: the errors that are failed refreshes (shared with waiters, counted, cooled down);
    #: any other exception propagates
    failures: ClassVar[tuple[type[Exception], ...]] = (Exception,)

    @abc.abstractmethod
    def load(self, store: Store, key: str) -> S:
        """The stored state of ``key`` (raise when there is none)."""

    @abc.abstractmethod
    def stale_from(self, state: S, within: float) -> float:
        """The POSIX time from which ``state`` must be refreshed (inf: never). Pure."""

    @abc.abstractmethod
    def refresh(self, store: Store, key: str, state: S, request: Request) -> Flow[S]:
        """Make ``state`` fresh: a generator yielding effects, returning the new state.

        Runs holding the store's lock for ``(name, key)``, with ``state`` as
        re-read after taking it. Yield :class:`~stayfresh.fresh.Call` for
        store work and :class:`~stayfresh.fresh.Http` for requests, so one body
        serves the sync and async callers; raise one of :attr:`failures` to fail.
        """

    def fresh_from(self, state: S) -> float:
        """The POSIX time before which ``state`` is stale too (the clock went back). Pure."""
        return float("-inf")

    def is_fresh(self, state: S, within: float, now: float) -> bool:
        """The one test: ``fresh_from(state) <= now < stale_from(state, within)``."""
        return self.fresh_from(state) <= now < self.stale_from(state, within)

    def usable_until(self, state: S) -> float:
        """Until when ``state`` may still be used while its refresh fails (POSIX time)."""
        return float("-inf")

    def version(self, state: S) -> object:
        """What changes when someone else refreshed ``state`` (compared with ``!=`` across
        the lock); the state itself by default, so give a version when states are large."""
        return state

    def blocked(self, state: S) -> Exception | None:
        """Why ``state`` cannot be refreshed without a person (e.g. a login), or None."""
        return None

    def replaced(self, state: S, rejected: Any) -> bool:
        """Has the value a server ``rejected`` already been replaced in ``state``?

        Then a refresh forced by that rejection is moot (tokens: a 401 on an old token).
        """
        return False

    def reason(self, state: S, within: float, now: float) -> str:
        """Why ``state`` is fresh or stale at ``now`` (for logs and ``--json``)."""
        until = self.stale_from(state, within)
        if now < self.fresh_from(state):
            return "the clock is before the state was made"
        if until == float("inf"):
            return "never goes stale"
        if until == float("-inf"):
            return "stale"
        when = dt.datetime.fromtimestamp(until, dt.UTC).isoformat(timespec="seconds")
        return f"{'fresh until' if now < until else 'stale since'} {when}"

    def failure(self, error: BaseException) -> Failure:
        """How a failure is counted in telemetry."""
        if isinstance(error, TransientError):
            return "transient"
        if isinstance(error, ReauthRequired):
            return "person"
        return "other"


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome(Generic[S]):
    """What one call did: the state now, and how it got there.

    - ``fresh``: it was fresh; nothing done.
    - ``refreshed``: this call refreshed it.
    - ``joined``: another caller (thread, task, process) refreshed it; this is its result.
    - ``skipped``: another caller is refreshing it and this one did not wait
      (skip mode; or share mode while the state is still good).
    - ``failed``: the refresh failed (``error``); ``usable`` says whether ``state``,
      the old one, may still be used.
    """

    status: Status
    state: S | None
    key: str
    layer: Layer
    at: float
    reason: str = ""
    error: BaseException | None = None
    usable: bool = True

    @property
    def changed(self) -> bool:
        """Is ``state`` new (refreshed here or by another caller)?"""
        return self.status in ("refreshed", "joined")

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: status and why, plus the state's own fields if it has any."""
        doc: dict[str, Any] = {
            "key": self.key,
            "layer": self.layer,
            "status": self.status,
            "reason": self.reason,
            "at": dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(),
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }
        describe = getattr(self.state, "to_json", None)
        if callable(describe):
            doc.update(describe())
        return doc
