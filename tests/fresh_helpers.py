"""A small kind of state for the core's own tests: a counter kept fresh for ``ttl`` seconds.

Its state is the store's generic durable state (``get_fresh_state``); each
refresh adds one to ``n`` after calling :attr:`Counter.source` — which tests
replace to block, fail, or log the call to a file (seen across processes).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from stayfresh.errors import TransientError
from stayfresh.fresh import Call, Flow, Kind, Request
from stayfresh.store import FreshStateRow, Store


def log_to_env_file(key: str, n: int) -> None:
    """Append one line per refresh to ``$FRESH_LOG`` (when set): counted across processes."""
    path = os.environ.get("FRESH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {key} {n}\n")


class Counter(Kind[FreshStateRow | None]):
    name = "counter"
    wait_window = 5.0

    def __init__(self, ttl: float = 60.0, source: Callable[[str, int], Any] | None = None) -> None:
        self.ttl = ttl
        self.source = source or log_to_env_file
        self.loads = 0
        self._count = threading.Lock()

    def load(self, store: Store, key: str) -> FreshStateRow | None:
        found = store.get_fresh_state(self.name, key)
        with self._count:  # counted once read: a test may wait for every caller's read
            self.loads += 1
        return found

    def stale_from(self, state: FreshStateRow | None, within: float) -> float:
        return float("-inf") if state is None else float(state.value["fresh_until"]) - within

    def usable_until(self, state: FreshStateRow | None) -> float:
        return float("-inf") if state is None else float(state.value["fresh_until"])

    def version(self, state: FreshStateRow | None) -> int:
        return 0 if state is None else state.version

    def refresh(
        self, store: Store, key: str, state: FreshStateRow | None, request: Request
    ) -> Flow[FreshStateRow | None]:
        n = 1 if state is None else int(state.value["n"]) + 1
        yield Call(self.source, (key, n))
        value = {"n": n, "fresh_until": request.clock() + self.ttl}
        expected = None if state is None else state.version
        written = yield Call(
            store.put_fresh_state, (self.name, key, value), {"expected_version": expected}
        )
        if written is None:
            raise TransientError("written concurrently")
        found: FreshStateRow | None = yield Call(store.get_fresh_state, (self.name, key))
        return found


class SkipCounter(Counter):
    """The same counter in skip mode: a second caller never waits."""

    name = "skip-counter"
    mode = "skip"


#: the instances the background worker loads by path (``fresh_helpers:COUNTER``)
COUNTER = Counter()


def ensure_in_process(location: str, key: str, start: Any, out: Any) -> None:
    """One of several processes: wait at the barrier, then ``ensure`` the same stale key."""
    from stayfresh.fresh import Fresh
    from stayfresh.store import open_store

    store = open_store(location)
    fresh = Fresh(Counter(source=_slow_log), store)
    start.wait(60)
    outcome = fresh.ensure(key)
    state = outcome.state
    out.put((outcome.status, None if state is None else state.value["n"]))
    store.close()


def _slow_log(key: str, n: int) -> None:
    import time

    log_to_env_file(key, n)
    time.sleep(0.5)  # long enough for every other process to find the lock held
