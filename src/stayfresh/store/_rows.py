"""The store's value objects and how a database row becomes one.

Plain frozen dataclasses of primitive values: what callers hand the store
and what it hands back. Both backends read rows by column name
(``sqlite3.Row`` and psycopg's dict rows alike), so one mapping serves both.
Times are POSIX seconds (UTC); JSON columns are dicts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from ._guard import fingerprint, intent_owner, owner_alive

UniquePolicy = Literal["keep", "replace", "append", "update", "cancel_and_reenqueue"]
EnqueueAction = Literal["enqueued", "kept", "replaced", "appended", "updated"]
SyncState = Literal["running", "finished"]
#: delivery states; ``sending`` is the only one that is not final or retried
DeliveryState = Literal["sending", "sent", "failed", "missed", "unknown"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TokenRow:
    """A token set as stored. Times are POSIX seconds (UTC)."""

    access_token: str | None
    refresh_token: str | None
    token_type: str = "Bearer"
    scope: str | None = None
    expires_at: float | None = None
    obtained_at: float | None = None

    def __repr__(self) -> str:  # never show secrets
        return (
            f"TokenRow(expires_at={self.expires_at!r}, token_type={self.token_type!r}, "
            f"scope={self.scope!r})"
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AccountRow:
    """One account: its provider configuration, its tokens and their version.

    ``version`` grows by one on every token write; writes are compare-and-swap
    on it (see :meth:`Store.swap_tokens`).
    """

    name: str
    provider: str
    config: Mapping[str, Any]
    tokens: TokenRow
    version: int
    status: str  # "ok" | "needs_login"
    status_message: str | None
    created_at: float
    updated_at: float

    def __repr__(self) -> str:
        return (
            f"AccountRow(name={self.name!r}, provider={self.provider!r}, "
            f"version={self.version}, status={self.status!r}, tokens={self.tokens!r})"
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RefreshIntent:
    """A refresh about to spend an account's refresh token (see :meth:`Store.begin_refresh`).

    ``fingerprint`` is a SHA-256 prefix of that refresh token, never the token.
    """

    account: str
    owner: str  # host:pid
    fingerprint: str
    version: int
    started_at: float
    expires_at: float

    def spends(self, refresh_token: str | None) -> bool:
        """Is this the intent to spend ``refresh_token``?"""
        return self.fingerprint == fingerprint(refresh_token)

    def held_elsewhere(self, now: float) -> bool:
        """Is another process still spending it: the lease runs, the owner is not this
        process and not known to be dead (``now``: wall-clock POSIX seconds)."""
        return now < self.expires_at and self.owner != intent_owner() and owner_alive(self.owner)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewWork:
    """A work to insert, with its first schedule already computed by the engine."""

    id: str
    name: str | None
    worker: str
    input: Mapping[str, Any]
    periodic: bool
    interval: float | None
    flex: float | None
    constraints: Mapping[str, Any]
    backoff_policy: str
    backoff_delay: float
    timeout: float
    tags: tuple[str, ...]
    scheduled_at: float
    #: ids of works this one waits for (a chain); they must exist
    after: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WorkRow:
    """A work as stored."""

    id: str
    name: str | None
    worker: str
    input: Mapping[str, Any]
    periodic: bool
    interval: float | None
    flex: float | None
    constraints: Mapping[str, Any]
    backoff_policy: str
    backoff_delay: float
    timeout: float
    tags: tuple[str, ...]
    state: str
    run_attempt: int
    scheduled_at: float
    next_run_at: float
    run_now: bool
    lease_owner: str | None
    lease_until: float | None
    current_run: int | None
    output: Mapping[str, Any] | None
    progress: Mapping[str, Any] | None
    last_outcome: str | None
    last_error: str | None
    last_run_at: float | None
    created_at: float
    updated_at: float
    finished_at: float | None
    prerequisites: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class EnqueueResult:
    """What :meth:`WorkStore.enqueue_work` did: the ids now standing for the request."""

    ids: tuple[str, ...]
    action: EnqueueAction


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedRun:
    """A work claimed by one runner, and the history row of this attempt."""

    work: WorkRow
    run_id: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunFinish:
    """The end of one run and the work's next state, computed by the engine.

    ``run_attempt`` is the work's attempt counter after this run (0 after a
    periodic period completes, unchanged for a retry, one less for a
    released run that never counted).
    """

    work_id: str
    run_id: int
    runner_id: str
    ended_at: float
    outcome: str  # success | failure | retry | timeout | released | error
    output: Mapping[str, Any] | None
    error: str | None
    state: str
    scheduled_at: float
    next_run_at: float
    run_attempt: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DaemonRow:
    """A running daemon's heartbeat: who, where, since when, its last loop (POSIX seconds)."""

    id: str
    host: str
    pid: int
    started_at: float
    last_seen_at: float


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunRow:
    """One attempt in a work's history."""

    id: int
    work_id: str
    attempt: int
    runner_id: str
    scheduled_at: float
    started_at: float
    ended_at: float | None
    outcome: str
    output: Mapping[str, Any] | None
    error: str | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewLibraryItem:
    """One item of a fetched page, ready to store.

    ``data`` is the item's JSON text as the source sent it and ``digest`` a
    hash of it; an item is "updated" when its digest changes.
    """

    item_id: str
    title: str | None
    authors: str | None
    data: str
    digest: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LibraryItemRow:
    """One stored library item."""

    account: str
    item_id: str
    title: str | None
    authors: str | None
    data: str
    first_seen_at: float
    updated_at: float
    removed_at: float | None
    download_path: str | None
    download_size: int | None
    downloaded_at: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LibrarySyncRow:
    """An account's sync cursor (``running``) or its last sync's figures (``finished``).

    Counters are cumulative over the sync, resumed runs included.
    """

    account: str
    sync_id: str
    source: str
    state: SyncState
    next_page: int
    cursor: str | None
    total_items: int | None
    total_pages: int | None
    pages: int
    items_seen: int
    added: int
    updated: int
    removed: int
    started_at: float
    updated_at: float
    finished_at: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PageCounts:
    """What storing one page changed."""

    added: int
    updated: int
    unchanged: int


#: sink id of the implicit log sink used while no sink is configured
DEFAULT_SINK_ID = 0


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewRule:
    """A reminder to store: one time (``at``) or recurring (``rrule`` from ``dtstart`` in ``tz``)."""

    title: str
    body: str
    at: float | None
    rrule: str | None
    dtstart: str | None  # naive ISO local time in ``tz``
    tz: str
    enabled: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RuleRow:
    """A reminder as stored."""

    id: int
    title: str
    body: str
    at: float | None
    rrule: str | None
    dtstart: str | None
    tz: str
    enabled: bool
    created_at: float
    #: no occurrence fires before this instant (a snooze); None: not snoozed
    snoozed_until: float | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PendingRow:
    """One occurrence in the window, with the text it will be delivered with."""

    rule_id: int
    due_at: float
    title: str
    body: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SinkRow:
    """A delivery target. ``target`` is an Apprise URL and may contain secrets."""

    id: int
    kind: str  # log | apprise | desktop
    target: str | None
    at_least_once: bool
    created_at: float

    def __repr__(self) -> str:  # the URL may carry a token
        return f"SinkRow(id={self.id}, kind={self.kind!r}, at_least_once={self.at_least_once})"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryRow:
    """The delivery of one occurrence to one sink."""

    rule_id: int
    due_at: float
    sink_id: int
    title: str
    body: str
    state: DeliveryState
    attempts: int
    claimed_until: float | None
    next_attempt_at: float | None
    updated_at: float
    error: str | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ClaimOutcome:
    """What :meth:`NotifyStore.claim_notifications` did, for the deliverer to act on and log."""

    #: rows now ``sending`` under this caller's claim: send them, then finish them
    claims: list[DeliveryRow]
    #: occurrences found past the grace period, recorded ``missed``
    missed: list[DeliveryRow]
    #: at-most-once sends interrupted by a crash, recorded ``unknown`` (never resent)
    unknown: list[DeliveryRow]
    #: retries or interrupted at-least-once sends past the grace period, given up
    gave_up: list[DeliveryRow]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RescheduleResult:
    """What one full reschedule did."""

    rules: int
    cancelled: int
    scheduled: int
    overdue_kept: int
    rules_version: int


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NotifyFreshness:
    """Everything the foreground layer needs to decide, read in one query."""

    last_reschedule_at: float | None
    rules_version: int
    window_rules_version: int
    has_rules: bool


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TelemetryRow:
    """Persisted counters of one layer of one state (``kind``, ``key``, ``layer``).

    ``executions`` = successes + failures + skips. Of the failures,
    ``transient_failures`` are retried later and ``person_failures`` need a
    person (a new login). ``buckets[i]`` counts the successes that took at most
    ``LATENCY_BUCKETS_MS[i]`` ms (cumulative, as a Prometheus histogram).
    """

    kind: str
    key: str
    layer: str
    executions: int
    successes: int
    failures: int
    transient_failures: int
    person_failures: int
    skips: int
    last_success_at: float | None
    last_failure_at: float | None
    last_skip_at: float | None
    last_error: str | None
    latency_count: int
    latency_sum_ms: float
    buckets: tuple[int, ...]

    def latency_ms(self, quantile: float) -> float | None:
        """An upper bound of the ``quantile`` latency (None: none measured, inf: over 10 s)."""
        if not self.latency_count:
            return None
        rank = quantile * self.latency_count
        for bound, count in zip(LATENCY_BUCKETS_MS, self.buckets, strict=True):
            if count >= rank:
                return bound
        return float("inf")

    @classmethod
    def total(
        cls, rows: Sequence[TelemetryRow], *, kind: str, key: str, layer: str = "all"
    ) -> TelemetryRow:
        """The sum of ``rows`` (e.g. one state's layers); the latest times and error."""

        def latest(field: str) -> float | None:
            return max((t for r in rows if (t := getattr(r, field)) is not None), default=None)

        failed = [r for r in rows if r.last_failure_at is not None]
        return cls(
            kind=kind, key=key, layer=layer,
            executions=sum(r.executions for r in rows), successes=sum(r.successes for r in rows),
            failures=sum(r.failures for r in rows),
            transient_failures=sum(r.transient_failures for r in rows),
            person_failures=sum(r.person_failures for r in rows), skips=sum(r.skips for r in rows),
            last_success_at=latest("last_success_at"), last_failure_at=latest("last_failure_at"),
            last_skip_at=latest("last_skip_at"),
            last_error=max(failed, key=lambda r: r.last_failure_at or 0.0).last_error if failed else None,
            latency_count=sum(r.latency_count for r in rows),
            latency_sum_ms=sum(r.latency_sum_ms for r in rows),
            buckets=tuple(sum(r.buckets[i] for r in rows) for i in range(len(LATENCY_BUCKETS_MS))),
        )  # fmt: skip


#: the upper bounds (ms) of the latency histogram's buckets, one column each (``le_10ms``…)
LATENCY_BUCKETS_MS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
BUCKET_COLUMNS = tuple(
    f"le_{int(b)}ms" if b < 1000 or b % 1000 else f"le_{int(b // 1000)}s"
    for b in LATENCY_BUCKETS_MS
)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FreshStateRow:
    """A kind's durable state (JSON), versioned for compare-and-swap writes."""

    kind: str
    key: str
    value: Mapping[str, Any]
    version: int
    updated_at: float


class RowLike(Protocol):
    """A database row read by column name (``sqlite3.Row``, psycopg's dict rows)."""

    def __getitem__(self, key: str) -> Any: ...


def loads_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    return {} if text == "{}" else dict(json.loads(text))  # "{}": most inputs, no decoder


def _mapping(text: str | None) -> dict[str, Any]:
    return loads_json(text) or {}


#: how a column is read into a field, by the field's annotation: SQLite has no boolean
#: type and both drivers' JSON columns are text; every other value is taken as it is
_READ: dict[str, Callable[[Any], Any]] = {
    "bool": bool,
    "int": int,
    "float": float,
    "Mapping[str, Any]": _mapping,
    "Mapping[str, Any] | None": loads_json,
}

R = TypeVar("R")


_READERS: dict[tuple[type[Any], tuple[str, ...]], Callable[..., Any]] = {}


def from_row(cls: type[R], row: RowLike, **given: Any) -> R:
    """The dataclass ``cls`` with every field not ``given`` read from the column of its name.

    The reader of each (class, given fields) is generated once, as dataclasses
    generate ``__init__``: the rows of a claim are read as fast as by a
    hand-written constructor call, without one being written per class.
    """
    key = (cls, tuple(given))
    read = _READERS.get(key)
    if read is None:
        namespace: dict[str, Any] = {"cls": cls}
        args = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            value = f.name if f.name in given else f"row[{f.name!r}]"
            convert = None if f.name in given else _READ.get(str(f.type))
            if convert is not None:
                namespace[f"_{f.name}"] = convert
                value = f"_{f.name}({value})"
            args.append(f"{f.name}={value}")
        params = ", ".join(("row", "*", *given) if given else ("row",))
        source = f"def read({params}):\n return cls({', '.join(args)})"
        exec(source, namespace)
        read = _READERS[key] = namespace["read"]
    return read(row, **given)  # type: ignore[no-any-return]


def work_from_row(r: RowLike, tags: tuple[str, ...], deps: tuple[str, ...]) -> WorkRow:
    return from_row(WorkRow, r, tags=tags, prerequisites=deps)


def account_from_row(row: RowLike) -> AccountRow:
    return from_row(AccountRow, row, tokens=from_row(TokenRow, row))


def new_intent(
    account: str, version: int, refresh_token: str | None, *, at: float, lease: float
) -> RefreshIntent:
    """This process's intent to spend ``refresh_token`` (only its fingerprint is kept)."""
    return RefreshIntent(
        account=account,
        owner=intent_owner(),
        fingerprint=fingerprint(refresh_token),
        version=version,
        started_at=at,
        expires_at=at + lease,
    )


def intent_from_row(row: RowLike) -> RefreshIntent:
    return from_row(RefreshIntent, row)
