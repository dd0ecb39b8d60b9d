"""The store's contracts, in one place: what every backend promises.

:class:`Store` is everything stayfresh keeps, behind one narrow interface,
made of one part per concern (:class:`WorkStore`, :class:`LibraryStore`,
:class:`NotifyStore`, and the accounts, settings and locks on :class:`Store`
itself). The interface speaks in plain rows (the value objects of
:mod:`._rows`), so the store never imports the parts built on top of it
(``tokens``, ``work``, ``notify``). Each method documents the guarantee callers
rely on; the contract suite ``tests/test_store_contract.py`` holds both
backends to it.

The store never decides *when* something is due or *which* rule applies:
the engine computes schedules, ``stayfresh.notify`` expands rules, and the
store's few business decisions are pure functions beside the SQL that
applies them. What the store guarantees is atomicity between processes (and,
with PostgreSQL, machines): every method is one short transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

from ..errors import StoreError
from ._guard import INTENT_LEASE
from ._rows import (
    AccountRow,
    ClaimedRun,
    ClaimOutcome,
    DaemonRow,
    DeliveryRow,
    EnqueueResult,
    FreshStateRow,
    LibraryItemRow,
    LibrarySyncRow,
    NewLibraryItem,
    NewRule,
    NewWork,
    NotifyFreshness,
    PageCounts,
    PendingRow,
    RefreshIntent,
    RescheduleResult,
    RuleRow,
    RunFinish,
    RunRow,
    SinkRow,
    TelemetryRow,
    TokenRow,
    UniquePolicy,
    WorkRow,
)


class AccountExists(StoreError):
    """An account with that name is already stored."""


class RefreshLock(abc.ABC):
    """A lock shared by every process (and, on PostgreSQL, every machine).

    Used as the "never twice at once" guard of DESIGN.md. It is not reentrant,
    may be released from another thread than the one that took it, and is
    only an optimisation for tokens: the truth is the compare-and-swap write.
    """

    @abc.abstractmethod
    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; wait at most ``timeout`` seconds (None: forever, 0: try once).

        Returns False when it could not be taken in time.
        """

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock back. Releasing a lock not held is an error."""

    def __enter__(self) -> RefreshLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class WorkStore(abc.ABC):
    """Durable work: every method is one short transaction."""

    @abc.abstractmethod
    def enqueue_work(
        self, works: Sequence[NewWork], *, policy: UniquePolicy | None, now: float
    ) -> EnqueueResult:
        """Insert ``works`` (one work or a chain sharing one ``name``) atomically.

        Without a name or policy the works are simply inserted. Otherwise the
        policy is applied against the *existing* works of that name — for
        one-time work those unfinished (ENQUEUED, RUNNING, BLOCKED); for
        periodic work those not CANCELLED:

        - ``keep``: if any exist, insert nothing and return their ids;
        - ``replace`` / ``cancel_and_reenqueue``: cancel them (and their
          dependents), then insert;
        - ``append``: the new works' roots also wait for every existing one;
        - ``update``: change the existing work's definition in place (worker,
          input, interval, flex, constraints, backoff, timeout, tags), keeping
          its id, state, attempt count and next run time; with several
          existing works, the newest is updated. Only a single work may be
          given.

        A work whose prerequisites already include a FAILED (CANCELLED) one is
        inserted FAILED (CANCELLED); one with unfinished prerequisites is
        BLOCKED; otherwise ENQUEUED with ``next_run_at = scheduled_at``.
        """

    @abc.abstractmethod
    def get_work(self, work_id: str) -> WorkRow | None:
        """The work with that id, or None."""

    @abc.abstractmethod
    def find_work(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        states: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[WorkRow]:
        """Works matching every given filter, newest first."""

    @abc.abstractmethod
    def due_work(
        self,
        now: float,
        *,
        limit: int,
        skip_constraints: Collection[str] = (),
        dead_owners: Collection[str] = (),
    ) -> list[WorkRow]:
        """Works a runner could claim at ``now``, earliest due first.

        ENQUEUED works with ``next_run_at <= now``, and RUNNING works whose
        lease ran out (their runner died) or whose ``lease_owner`` is one of
        ``dead_owners`` (the caller proved those processes gone, see
        ``stayfresh.work._owner``: the store cannot). Works whose :func:`constraints_key`
        is in ``skip_constraints`` are left out (the runner found those
        constraints unmet) unless they were forced with :meth:`run_work_now`.
        Read-only: claiming happens in :meth:`claim_work`.
        """

    @abc.abstractmethod
    def claim_work(
        self,
        ids: Collection[str],
        *,
        runner_id: str,
        now: float,
        lease_seconds: float,
        dead_owners: Collection[str] = (),
    ) -> list[ClaimedRun]:
        """Atomically take the lease on those of ``ids`` that are still claimable.

        Claimable means what :meth:`due_work` lists (with the same
        ``dead_owners``). Each claimed work becomes RUNNING, owned by
        ``runner_id`` until ``now + lease_seconds``, its attempt counter grows
        by one and a history row is opened. A RUNNING work taken over from a
        dead runner has its old history row closed as ``lost`` (error: the
        lease ran out, or the owner's process is gone). Two runners can never
        both claim the same work: the check and the update are one transaction.
        """

    @abc.abstractmethod
    def renew_leases(
        self, ids: Collection[str], *, runner_id: str, now: float, lease_seconds: float
    ) -> set[str]:
        """Extend this runner's leases; return the ids it still holds.

        A work missing from the answer was cancelled (or its lease was lost):
        the runner should stop running it.
        """

    @abc.abstractmethod
    def finish_runs(self, finishes: Sequence[RunFinish], *, keep_runs: int) -> list[str]:
        """Record the end of runs and move each work to its next state.

        The work row changes only while ``runner_id`` still holds the lease of
        that run (a cancelled or reclaimed work keeps its state); the history
        row is closed either way. A row already closed (``lost`` when another
        runner took the work over, ``cancelled``) keeps its outcome, and the
        late result is appended to its error text, so the history says what
        the run that lost its lease would have reported. A SUCCEEDED
        work unblocks its dependents once all their prerequisites succeeded,
        merging the prerequisites' outputs over the dependent's input; a
        FAILED (CANCELLED) one fails (cancels) every transitive dependent. At
        most ``keep_runs`` history rows are kept per work. Returns the ids
        whose state changed: a finish whose work is missing from the answer
        had lost its lease.
        """

    @abc.abstractmethod
    def cancel_work(
        self,
        *,
        ids: Collection[str] = (),
        name: str | None = None,
        tag: str | None = None,
        everything: bool = False,
        now: float,
    ) -> list[str]:
        """Cancel unfinished works chosen by id, name, tag, or all of them.

        Their transitive dependents are cancelled too; a RUNNING work loses
        its lease (so its runner stops it) and its open history row is closed
        as ``cancelled``. Returns every id cancelled.
        """

    @abc.abstractmethod
    def run_work_now(self, ids: Collection[str], *, now: float) -> list[str]:
        """Make ENQUEUED works due at ``now``, ignoring constraints once."""

    @abc.abstractmethod
    def set_progress(self, work_id: str, run_id: int, progress: Mapping[str, Any]) -> bool:
        """Store the progress of a running run; False if that run no longer holds the work."""

    @abc.abstractmethod
    def next_wake_time(self, now: float, *, runner_id: str) -> float | None:
        """The earliest time after ``now`` at which a runner has something to do.

        The smallest future ``next_run_at`` of ENQUEUED work, or lease expiry
        of work RUNNING under another runner; None when nothing is scheduled.
        """

    @abc.abstractmethod
    def work_runs(self, work_ids: Collection[str], *, limit: int = 100) -> list[RunRow]:
        """The newest history rows of those works, newest first."""

    @abc.abstractmethod
    def beat(self, runner_id: str, *, host: str, pid: int, started_at: float, now: float) -> None:
        """Record a daemon's heartbeat (and forget heartbeats older than a day)."""

    @abc.abstractmethod
    def daemons(self, *, seen_since: float) -> list[DaemonRow]:
        """The daemons whose last heartbeat is at or after ``seen_since``, oldest first."""

    @abc.abstractmethod
    def forget_daemon(self, runner_id: str) -> None:
        """Remove a daemon's heartbeat (it stopped cleanly)."""

    @abc.abstractmethod
    def run_counts(self) -> dict[str, dict[str, int]]:
        """Every work's ended runs by outcome, counted since it was enqueued (never trimmed)."""

    @abc.abstractmethod
    def prune_work(self, *, finished_before: float) -> int:
        """Delete finished one-time works (and their history) finished before a time.

        Works with an unfinished dependent are kept. Returns how many went.
        """


class LibraryStore(abc.ABC):
    """Library items and sync cursors."""

    @abc.abstractmethod
    def get_library_sync(self, account: str) -> LibrarySyncRow | None:
        """The account's sync row (running cursor or last finished sync), or None."""

    @abc.abstractmethod
    def save_library_sync(self, row: LibrarySyncRow) -> None:
        """Insert or replace the account's sync row (starting or restarting a sync)."""

    @abc.abstractmethod
    def store_library_page(
        self,
        account: str,
        sync_id: str,
        items: Sequence[NewLibraryItem],
        cursor: LibrarySyncRow,
        *,
        now: float,
    ) -> PageCounts:
        """Upsert ``items`` as seen by ``sync_id`` and write ``cursor``, in ONE transaction.

        New items are inserted; known items get their data, ``seen_sync`` and,
        when the digest changed or they had been removed, a new ``updated_at``
        and ``removed_at = NULL``. ``cursor`` (the position after this page)
        replaces the sync row, with this page's added and updated counts
        added to its ``added`` and ``updated`` (only the transaction knows
        them). Either all of it is durable when this returns, or none of it.
        """

    @abc.abstractmethod
    def finish_library_sync(self, cursor: LibrarySyncRow, *, now: float) -> int:
        """Mark items not seen by ``cursor.sync_id`` removed and store the finished row.

        One transaction. Returns how many items became removed now (already
        removed ones are not counted again); the stored row's ``removed`` is
        that number and its state ``finished``.
        """

    @abc.abstractmethod
    def list_library(
        self,
        account: str,
        *,
        search: str | None = None,
        include_removed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[LibraryItemRow]:
        """Items ordered by title then id; ``search`` matches title, authors or id.

        The match is a case-insensitive substring match (no wildcards).
        """

    @abc.abstractmethod
    def count_library(self, account: str, *, include_removed: bool = False) -> int:
        """How many items the account's library holds."""

    @abc.abstractmethod
    def get_library_item(self, account: str, item_id: str) -> LibraryItemRow | None:
        """One item (removed or not), or None."""

    @abc.abstractmethod
    def set_library_download(
        self, account: str, item_id: str, *, path: str, size: int, now: float
    ) -> bool:
        """Record where an item was downloaded; False when the item is not in the library."""


class NotifyStore(abc.ABC):
    """Rules, window, deliveries, sinks and telemetry; every method is one transaction."""

    # -- rules -------------------------------------------------------------------------

    @abc.abstractmethod
    def add_notify_rule(self, rule: NewRule, *, now: float) -> RuleRow:
        """Store a rule and bump the rules version (the window is now stale)."""

    @abc.abstractmethod
    def get_notify_rule(self, rule_id: int) -> RuleRow | None:
        """The rule with that id, or None."""

    @abc.abstractmethod
    def list_notify_rules(self) -> list[RuleRow]:
        """Every rule, by id."""

    @abc.abstractmethod
    def update_notify_rule(self, rule_id: int, rule: NewRule) -> RuleRow | None:
        """Replace rule ``rule_id``'s definition (its id and creation time stay); None
        if there is no such rule. Like adding or deleting, it makes the window stale."""

    @abc.abstractmethod
    def snooze_notify_rule(self, rule_id: int, until: float | None) -> RuleRow | None:
        """Fire none of rule ``rule_id``'s occurrences before ``until`` (None: unsnooze);
        None if there is no such rule. The window goes stale."""

    @abc.abstractmethod
    def delete_notify_rule(self, rule_id: int) -> bool:
        """Remove a rule and its pending occurrences (delivery history stays); bump the version."""

    # -- the window ----------------------------------------------------------------------

    @abc.abstractmethod
    def notify_freshness(self) -> NotifyFreshness:
        """Last reschedule time, rules versions and whether any rule exists: one read."""

    @abc.abstractmethod
    def reschedule_notifications(
        self,
        plan: Callable[[Sequence[RuleRow]], Sequence[PendingRow]],
        *,
        now: float,
    ) -> RescheduleResult:
        """Replace the window in one transaction: cancel all, compute, schedule fresh.

        Inside one write transaction: read the enabled rules, call ``plan``
        with them (pure; its rows must be due at or after ``now``), delete
        every pending row due at or after ``now`` and every row of a rule that
        is gone or disabled, insert the plan's rows, set the window's rules
        version and ``last_reschedule_at = now``. Overdue rows (due before ``now``) of live rules are kept for
        the deliverer, which sends them late or records them missed. If
        ``plan`` raises, nothing changes.
        """

    @abc.abstractmethod
    def list_pending_notifications(self, *, limit: int | None = None) -> list[PendingRow]:
        """Pending occurrences, earliest first."""

    # -- sinks -------------------------------------------------------------------------

    @abc.abstractmethod
    def add_notify_sink(
        self, kind: str, target: str | None, *, at_least_once: bool, now: float
    ) -> SinkRow:
        """Store a sink."""

    @abc.abstractmethod
    def list_notify_sinks(self) -> list[SinkRow]:
        """Every sink, by id."""

    @abc.abstractmethod
    def delete_notify_sink(self, sink_id: int) -> bool:
        """Remove a sink; False when it did not exist."""

    # -- delivery ------------------------------------------------------------------------

    @abc.abstractmethod
    def claim_notifications(
        self, *, now: float, grace: float, lease: float, sinks: Mapping[int, bool]
    ) -> ClaimOutcome:
        """Take everything deliverable at ``now`` for ``sinks`` (id → at-least-once), atomically.

        - Pending rows due at or before ``now`` leave the window; for each
          sink a delivery row is inserted unless one exists: ``missed`` when
          due more than ``grace`` ago, else ``sending`` with
          ``claimed_until = now + lease`` and attempt 1 (a claim).
        - ``failed`` rows whose ``next_attempt_at`` has come are claimed again.
        - ``sending`` rows whose claim ran out (their sender died): for an
          at-least-once sink, claimed again within the grace period, else
          given up; for an at-most-once sink, recorded ``unknown`` and never
          resent.
        - Rows of sinks not in ``sinks`` (removed) are given up.
        """

    @abc.abstractmethod
    def finish_notification(
        self,
        claim: DeliveryRow,
        *,
        ok: bool,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        """Record the end of one claimed send: ``sent``, or ``failed`` (retried at ``retry_at``).

        Only while the claim is still this one (same attempt, still
        ``sending``); returns False when another deliverer took it over.
        """

    @abc.abstractmethod
    def next_notification_time(self) -> float | None:
        """When a deliverer next has something to do: the earliest pending due time,
        failed retry or sending claim expiry; None when nothing waits."""

    @abc.abstractmethod
    def list_notification_deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        """Delivery records, most recently updated first."""


class FreshStore(abc.ABC):
    """What every kind of state kept fresh shares (:mod:`stayfresh.fresh`), by ``(kind, key)``."""

    @abc.abstractmethod
    def lock(self, kind: str, key: str) -> RefreshLock:
        """The cross-process lock of one state (``acquire(0)``: skip; a timeout: wait)."""

    @abc.abstractmethod
    def record_fresh(
        self,
        kind: str,
        key: str,
        layer: str,
        outcome: Literal["success", "failure", "skip"],
        *,
        at: float,
        latency_ms: float | None = None,
        error: str | None = None,
        failure: Literal["transient", "person", "other"] = "other",
    ) -> None:
        """Count one execution of ``layer`` on the state: its outcome, time, latency, error."""

    @abc.abstractmethod
    def fresh_telemetry(
        self, kind: str | None = None, key: str | None = None
    ) -> list[TelemetryRow]:
        """The counters of every (kind, key, layer) that ran, filtered by kind and key."""

    @abc.abstractmethod
    def get_fresh_state(self, kind: str, key: str) -> FreshStateRow | None:
        """A kind's durable state, or None."""

    @abc.abstractmethod
    def put_fresh_state(
        self, kind: str, key: str, value: Mapping[str, Any], *, expected_version: int | None
    ) -> int | None:
        """Write a state (compare-and-swap): its new version, or None when the version moved.

        ``expected_version=None`` creates it, and returns None when it already exists.
        """

    @abc.abstractmethod
    def forget_fresh(self, kind: str, key: str) -> None:
        """Delete a state's telemetry and durable state."""


class Store(WorkStore, LibraryStore, NotifyStore, FreshStore):
    """Everything stayfresh keeps, behind one narrow interface.

    Implementations are safe to share between threads, and several processes
    may open the same database at once.
    """

    #: a short human label: the file path or the server's address (no password)
    location: str

    # -- accounts and tokens -------------------------------------------------

    @abc.abstractmethod
    def create_account(
        self, name: str, provider: str, config: Mapping[str, Any], tokens: TokenRow
    ) -> AccountRow:
        """Store a new account at version 1; raise :class:`AccountExists` if taken."""

    @abc.abstractmethod
    def get_account(self, name: str) -> AccountRow | None:
        """The account as committed now, or None. Always reads the database."""

    @abc.abstractmethod
    def list_accounts(self) -> list[AccountRow]:
        """All accounts, ordered by name."""

    @abc.abstractmethod
    def delete_account(self, name: str) -> bool:
        """Remove the account and its metrics; False when it did not exist."""

    @abc.abstractmethod
    def clear_secrets(
        self, name: str, *, config_keys: Collection[str], message: str | None = None
    ) -> bool:
        """Forget the account's tokens and the ``config_keys`` of its configuration.

        For logout: the row stays (other tables may refer to it) with no
        access or refresh token, status ``needs_login`` and ``message``, and
        its version bumped so that no in-flight refresh can write old tokens
        back. The old values must not survive in the database files
        (overwritten, not merely unlinked). False when there is no such account.
        """

    @abc.abstractmethod
    def update_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Replace the provider configuration (no token change, no version bump)."""

    @abc.abstractmethod
    def swap_tokens(
        self, name: str, expected_version: int, tokens: TokenRow, *, mark_ok: bool = True
    ) -> int | None:
        """Write ``tokens`` only if the stored version is still ``expected_version``.

        Returns the new version, or None when another writer got there first
        (the stored row is then left as it is). The write is durable when this
        returns. With ``mark_ok`` the account's status becomes ``ok``. Either
        way the account's refresh intent ends, and the room it reserved is
        given back just before this commit (it is what lets it succeed on a
        full disk).
        """

    @abc.abstractmethod
    def set_status(self, name: str, status: str, message: str | None = None) -> None:
        """Set the account's status (``ok`` or ``needs_login``) and its message."""

    @abc.abstractmethod
    def end_refresh(
        self, name: str, *, needs_login: str | None = None, rejected: str | None = None
    ) -> None:
        """End ``name``'s refresh intent after a failed refresh (tokens unchanged).

        With ``needs_login`` (a message) the account's status becomes
        ``needs_login`` in the same transaction — but only while ``rejected``,
        the refresh token the provider refused, is still the stored one.
        Uses the room :meth:`begin_refresh` set aside, so it commits on a full disk.
        """

    @abc.abstractmethod
    def begin_refresh(
        self, name: str, version: int, *, now: float | None = None, lease: float = INTENT_LEASE
    ) -> RefreshIntent | None:
        """Durably record that this process is about to spend ``name``'s refresh token.

        Called (holding :meth:`lock` ``("token", name)``) right before the refresh request
        is sent; committed when it returns. A database that cannot take this
        write (disk full, busy) raises here, before the provider can rotate
        the refresh token, so no login is lost to a commit that cannot
        happen. It also sets aside room for the commit that ends it
        (:meth:`swap_tokens`, or :meth:`end_refresh`). The intent expires
        ``lease`` seconds after ``now``.

        Decided in one transaction on the locked account row, so two processes
        that both believe they hold the lock (one lost it with its connection)
        never both spend the token: None when the account is gone or its
        version is no longer ``version`` (newer tokens are stored: spend those);
        another process's intent (``held_elsewhere``) when it is spending the
        same refresh token right now; otherwise this process's new intent,
        replacing any earlier one.
        """

    @abc.abstractmethod
    def refresh_intent(self, name: str) -> RefreshIntent | None:
        """The account's unfinished refresh intent, or None (expired ones included)."""

    # -- small key/value settings --------------------------------------------

    @abc.abstractmethod
    def get_setting(self, key: str) -> str | None:
        """A stored setting, or None."""

    @abc.abstractmethod
    def set_setting(self, key: str, value: str | None) -> None:
        """Store (or, with None, delete) a setting."""

    # -- lifecycle -------------------------------------------------------------

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections held by this process."""
