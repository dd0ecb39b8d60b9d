"""The runner: sleeps until the next due time, claims due work, runs it.

One scheduling thread does everything but the work itself. Each pass it
(1) records finished runs in one transaction, (2) renews leases at half their
length and notices cancelled work, (3) cancels runs past their time limit,
(4) claims due work whose constraints hold and starts a thread per run, then
asks the store for the next due time and blocks in a single ``select`` on:
the control socket (other processes changed work), an in-process wake pipe
(a run finished, a constraint changed, ``stop()``), and a wall-clock timerfd
armed at the next due time (see :mod:`._timer`). The select timeout is only
used for this runner's own short timers (lease renewal, time limits) while
work runs. An idle runner therefore makes no system calls at all until
something is due or someone pokes it.

Without a timerfd (not Linux, or an injected clock) each sleep is capped at
:data:`FALLBACK_MAX_SLEEP` so a suspend/resume cannot delay work by more than
that; the wall/monotonic offset is compared after every wake and a jump is
logged.

What happens to a claim once taken (its thread, its outcome, lease renewal,
time limits, release on shutdown) lives in :mod:`._runs`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..store import ClaimedRun, DaemonRow, Store, constraints_key
from ._constraints import (
    Constraints,
    ConstraintWatcher,
    DeviceProbe,
    overrides_from_store,
    unmet_constraints,
)
from ._control import WakeListener, listener_for
from ._engine import DEFAULT_KEEP_FINISHED, DEFAULT_KEEP_RUNS, Outcome
from ._owner import dead_owners, local_owner_id, owner_is_dead, owner_is_here
from ._runs import _Run, _RunKeeping
from ._timer import WallTimer, wall_timer

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

FALLBACK_MAX_SLEEP = 300.0
#: a wall/monotonic offset change larger than this is reported as a clock jump
CLOCK_JUMP = 2.0
#: a pass that took longer than this (seconds) is followed by another at once
PASS_WAITED = 1.0
#: seconds between a daemon's heartbeats in the store (``status`` counts a daemon alive
#: while its last one is younger than :data:`ALIVE_FOR`)
HEARTBEAT = 60.0
ALIVE_FOR = 3 * HEARTBEAT


def live_daemons(store: Store, now: float | None = None) -> list[DaemonRow]:
    """The daemons running on ``store``.

    One of this machine is alive while its process is (a killed one is not
    counted, an idle one sleeping for hours is); one of another host while its
    heartbeat is younger than :data:`ALIVE_FOR`.
    """
    at = time.time() if now is None else now
    return [
        row
        for row in store.daemons(seen_since=0.0)
        if (
            not owner_is_dead(row.id)
            if owner_is_here(row.id)
            else at - row.last_seen_at < ALIVE_FOR
        )
    ]


class Runner(_RunKeeping):
    """Runs due work from a store until stopped; embeddable in a thread or asyncio.

    ``max_concurrent`` runs at once; leases last ``lease_seconds`` and are
    renewed at half that. On :meth:`stop`, runs get ``grace`` seconds to end,
    then are cancelled and released for another runner.
    """

    def __init__(
        self,
        store: Store,
        *,
        runner_id: str | None = None,
        clock: Callable[[], float] = time.time,
        max_concurrent: int = 8,
        lease_seconds: float = 60.0,
        grace: float = 30.0,
        keep_runs: int = DEFAULT_KEEP_RUNS,
        overrides: Mapping[str, str] | None = None,
        listen: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        # "storage not low" is about the disk this runner's database is on
        location = Path(store.location)
        self._probe = DeviceProbe(data_dir=location.parent if location.is_absolute() else None)
        self.token = uuid.uuid4().hex[:12]
        self.runner_id = runner_id or local_owner_id(self.token[:6])
        self.clock = clock
        self.max_concurrent = max(1, max_concurrent)
        self.lease_seconds = lease_seconds
        self.grace = grace
        self.keep_runs = keep_runs
        self._overrides = overrides
        self._listen = listen
        self._env = dict(os.environ if environ is None else environ)
        self._runs: dict[str, _Run] = {}
        self._done: queue.Queue[tuple[_Run, Outcome, Mapping[str, Any] | None, str | None]] = (
            queue.Queue()
        )
        # the in-process wake pipe exists only while run_forever runs
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._watcher: ConstraintWatcher | None = None
        self._poked = False
        self._sleep_due: float | None = None
        self._again = False  # the last pass waited: look again before sleeping
        self._next_beat = 0.0  # monotonic time of the next heartbeat
        #: wake for heartbeats only where other hosts must see them (PostgreSQL)
        self._beat_every = HEARTBEAT if getattr(store, "dialect", "") == "postgres" else None
        self._started_at = 0.0
        self._next_renew = 0.0
        self._renew_wall = 0.0
        #: the wake channel's own check period (None: it reports breakage itself)
        self._listen_every: float | None = None
        self._listener_check = 0.0
        #: when runs of dead processes on this machine were last looked for (-inf: never)
        self._owners_checked = float("-inf")
        self._last_prune = 0.0
        #: counters for tests and `daemon` logs: passes of the loop and why it woke
        self.stats: dict[str, int] = {
            "passes": 0,
            "socket": 0,
            "timer": 0,
            "internal": 0,
            "timeout": 0,
        }

    # -- embedding -------------------------------------------------------------------

    def start(self) -> Runner:
        """Run in a background thread; returns at once."""
        self._thread = threading.Thread(
            target=self.run_forever, name="stayfresh-runner", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, grace: float | None = None, *, wait: bool = True) -> None:
        """Stop claiming; let runs finish within ``grace`` s, then release them."""
        if grace is not None:
            self.grace = grace
        self._stopping.set()
        self.wake()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    async def serve(self) -> None:
        """Run until cancelled, from asyncio; async workers run on this event loop."""
        import asyncio  # not at import: an idle daemon never loads it (~15 ms, ~2 MB)

        self._async_loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(asyncio.to_thread(self.run_forever))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.stop(wait=False)
            await task
            raise

    def wake(self) -> None:
        """Make the loop look again (thread-safe; used by callbacks and stop)."""
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                wake_w.send(b"!")

    # -- the loop ----------------------------------------------------------------------

    def run_forever(self) -> None:
        """The scheduling loop; returns after :meth:`stop` and a graceful shutdown."""
        listener: WakeListener | None = (
            listener_for(self.store, self.token) if self._listen else None
        )
        timer = wall_timer() if self.clock is time.time else None
        wake_r, self._wake_w = socket.socketpair()
        wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_r = wake_r
        sel = selectors.DefaultSelector()
        sel.register(wake_r, selectors.EVENT_READ, "internal")
        if listener is not None:
            sel.register(listener.fileno(), selectors.EVENT_READ, "socket")
            self._listen_every = listener.check_every
            self._listener_check = time.monotonic() + (listener.check_every or 0.0)
        if timer is not None:
            sel.register(timer.fileno(), selectors.EVENT_READ, "timer")
        offset = time.time() - time.monotonic()
        log.info("runner %s started on %s", self.runner_id, self.store.location)
        self._started_at = time.time()
        try:
            while not self._stopping.is_set():
                self._heartbeat()
                self._pass()
                timeout = self._sleep_plan(timer)
                if self._beat_every is not None:  # other hosts see us only by our heartbeats
                    beat_in = max(0.0, self._next_beat - time.monotonic())
                    timeout = beat_in if timeout is None else min(timeout, beat_in)
                log.debug(
                    "sleeping: next due %s, timeout %s",
                    "none" if self._sleep_due is None else f"{self._sleep_due:.3f}",
                    "none" if timeout is None else f"{timeout:.3f}s",
                )
                events = sel.select(timeout)
                log.debug("woke by %s", ",".join(str(k.data) for k, _ in events) or "timeout")
                if not events:
                    self.stats["timeout"] += 1
                for key, _ in events:
                    why = str(key.data)
                    self.stats[why] += 1
                    if why == "internal":
                        self._drain_internal()
                    elif why == "socket" and listener is not None:
                        listener.drain()
                        self._poked = True
                    elif why == "timer" and timer is not None and timer.drain():
                        log.info("wall clock stepped (suspend/resume or clock change)")
                if listener is not None:
                    self._check_listener(listener, sel)
                new_offset = time.time() - time.monotonic()
                if abs(new_offset - offset) > CLOCK_JUMP:
                    log.info("clock jump of %+.1fs detected; rescheduling", new_offset - offset)
                offset = new_offset
            self._shutdown()
            with contextlib.suppress(Exception):  # a clean stop: not alive any more
                self.store.forget_daemon(self.runner_id)
        finally:
            sel.close()
            wake_w = self._wake_w
            self._wake_r = self._wake_w = None
            wake_r.close()
            if wake_w is not None:
                wake_w.close()
            if listener is not None:
                listener.close()
            if timer is not None:
                timer.close()
            if self._watcher is not None:
                self._watcher.stop()
            self._stopped.set()
            log.info("runner %s stopped", self.runner_id)

    def _heartbeat(self) -> None:
        """Tell the store this daemon is alive (who, where, since when).

        Once at start, then on every loop at most every HEARTBEAT seconds. On a
        database shared by hosts (PostgreSQL) the loop also wakes for it; on a
        SQLite file every daemon is on this machine, where a live process is
        seen as such (:func:`live_daemons`), so an idle daemon keeps sleeping.
        """
        if time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + HEARTBEAT
        try:
            self.store.beat(
                self.runner_id, host=socket.gethostname(), pid=os.getpid(),
                started_at=self._started_at, now=time.time(),
            )  # fmt: skip
        except StoreError as exc:  # the next beat tries again; the work goes on
            log.warning("could not record the heartbeat: %s", exc)

    def _check_listener(self, listener: WakeListener, sel: selectors.BaseSelector) -> None:
        """Where the wake channel cannot report its own breakage, check it on its period."""
        every = self._listen_every = listener.check_every  # it may start or stop needing checks
        if every is None or time.monotonic() < self._listener_check:
            return
        self._listener_check = time.monotonic() + every
        before = listener.fileno()
        if listener.check():
            self._poked = True
            sel.unregister(before)
            sel.register(listener.fileno(), selectors.EVENT_READ, "socket")

    def _drain_internal(self) -> None:
        if self._wake_r is None:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def _pass(self) -> None:
        self.stats["passes"] += 1
        self._record_finished()
        now = self.clock()
        self._check_leases(now)
        self._check_time_limits()
        if not self._stopping.is_set():
            self._claim(now, self._start)
        # a pass that waited (a locked table, a busy file) read "due" with a stale time:
        # what came due meanwhile is in the past for the sleep plan, so look again at once
        self._again = self.clock() - now > PASS_WAITED
        if now - self._last_prune > 3600:
            self._last_prune = now
            pruned = self.store.prune_work(finished_before=now - DEFAULT_KEEP_FINISHED)
            if pruned:
                log.info("pruned %d finished work(s)", pruned)

    def _sleep_plan(self, timer: WallTimer | None) -> float | None:
        """Arm the wall timer at the next due time; return the select timeout."""
        now = self.clock()
        due = (
            None
            if len(self._runs) >= self.max_concurrent
            else self.store.next_wake_time(now, runner_id=self.runner_id)
        )
        if not self._done.empty() or self._again:
            return 0.0
        timeouts: list[float] = []
        if self._listen_every is not None:
            timeouts.append(self._listener_check - time.monotonic())
        if self._runs:
            mono = time.monotonic()
            timeouts.append(self._next_renew - mono)
            timeouts.extend(r.deadline - mono for r in self._runs.values() if not r.timed_out)
        self._sleep_due = due
        if timer is not None:
            # with runs in progress, also wake when their leases are due for renewal
            # by the wall clock (a suspend stops the monotonic select timeout)
            renew = self._renew_wall if self._runs else None
            timer.arm(due if renew is None else renew if due is None else min(due, renew))
        elif due is not None:
            timeouts.append(min(due - now, FALLBACK_MAX_SLEEP))
        return max(0.0, min(timeouts)) if timeouts else None

    # -- claiming ------------------------------------------------------------------------

    def _dead_owners(self, now: float) -> set[str]:
        """Owners of RUNNING work on this machine whose process is gone (see :mod:`._owner`).

        Looked for on the first pass (a daemon restarted after SIGKILL takes
        its own runs back at once instead of waiting out their leases), then
        on passes at most once per half lease, so a busy runner does not pay a
        query per pass; runs of processes that are not provably dead are
        claimed when their leases run out, like any other.
        """
        if now - self._owners_checked < self.lease_seconds / 2:
            return set()
        self._owners_checked = now
        running = self.store.find_work(states=["RUNNING"])
        return dead_owners(
            (r.lease_owner for r in running if (r.lease_until or 0.0) > now), me=self.runner_id
        )

    def _claim(self, now: float, start: Callable[[ClaimedRun], None]) -> None:
        unmet: set[str] = set()
        overrides: Mapping[str, str] | None = self._overrides
        dead = self._dead_owners(now)
        while len(self._runs) < self.max_concurrent:
            free = self.max_concurrent - len(self._runs)
            rows = self.store.due_work(
                now, limit=free + len(unmet), skip_constraints=unmet, dead_owners=dead
            )
            rows = [r for r in rows if r.id not in self._runs]
            if not rows:
                break
            ready: list[str] = []
            for row in rows:
                key = constraints_key(row.constraints)
                if row.run_now or key == "{}" or key in unmet:
                    if key not in unmet or row.run_now:
                        ready.append(row.id)
                    continue
                if overrides is None:
                    overrides = overrides_from_store(self.store)
                reasons = unmet_constraints(
                    Constraints.from_json(row.constraints), overrides, probe=self._probe
                )
                if reasons:
                    log.info("work %s waits: %s", row.name or row.id, "; ".join(reasons))
                    unmet.add(key)
                else:
                    ready.append(row.id)
            if not ready:
                continue
            # the clock again: the reads above may have waited (a locked table, a busy file)
            claims = self.store.claim_work(
                ready[:free], runner_id=self.runner_id, now=max(now, self.clock()),
                lease_seconds=self.lease_seconds, dead_owners=dead,
            )  # fmt: skip
            if not claims:
                break  # another runner was faster; look again on the next pass
            for claim in claims:
                start(claim)
        self._manage_watcher(bool(unmet), overrides)

    def _manage_watcher(self, waiting: bool, overrides: Mapping[str, str] | None) -> None:
        """Watch device state only while due work waits on a constraint."""
        if waiting and self._watcher is None:
            self._watcher = ConstraintWatcher(self.wake, overrides)
            self._watcher.start()
        elif not waiting and self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    # -- for tests and scripts --------------------------------------------------------

    def run_pending(self, now: float | None = None) -> int:
        """Claim what is due at ``now`` and run it inline in this thread; return how many ran.

        For tests with a fake clock and for one-shot scripts: no threads, no
        sleeping, no time limits.
        """
        count = 0
        while True:
            claimed: list[ClaimedRun] = []
            self._claim(self.clock() if now is None else now, claimed.append)
            if not claimed:
                return count
            for claim in claimed:
                run = _Run(claim, self._context(claim), float("inf"))
                self._runs[claim.work.id] = run
                self._done.put((run, *self.invoke(claim, run.ctx)))
                count += 1
            self._record_finished()
