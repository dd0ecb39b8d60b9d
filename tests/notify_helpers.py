"""Helpers for the notification tests: a webhook server, racing layer processes.

:class:`Webhook` is a real HTTP server on 127.0.0.1 that Apprise's
``json://`` plugin posts to. It records every request, can answer with an
error, and can hold a request until the test releases it (to kill a daemon
between sending and recording).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stayfresh.testing import LocalHTTPServer, Request, Response


class Webhook(LocalHTTPServer):
    """An Apprise JSON endpoint: ``json://127.0.0.1:PORT/hook``.

    ``requests`` (from :class:`~stayfresh.testing.LocalHTTPServer`) holds every
    request; :meth:`titles` the notification titles posted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.hold = False
        self.received = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def handle(self, request: Request) -> Response:
        self.received.set()
        if self.hold:
            self.release.wait(30)
        return Response(self.status, b"ok")

    def titles(self) -> list[str]:
        with self.lock:
            return [(r.json() or {}).get("title", "") for r in self.requests]

    def start(self) -> Webhook:
        super().start()
        return self

    def stop(self) -> None:
        self.release.set()
        super().stop()


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook().start()
    try:
        yield hook
    finally:
        hook.stop()


# -- two processes racing (spawned; they import this module) ------------------------------


def race_layer(layer: str, db: str, rounds: int, start: Any, tried: list[Any], out: Any) -> None:
    """One side of the race: each round, wait at the barrier, then run ``layer``.

    The caller that wins the lock holds it (in an after-reschedule hook)
    until the other caller has come back, so the two always overlap: the
    loser must return at once (skip, not queue) or the round hangs.
    """
    from stayfresh import notify
    from stayfresh.notify import _hooks
    from stayfresh.store import SQLiteStore

    store = SQLiteStore(db)
    current = {"round": 0}

    def hold_until_other_tried(_store: object, _now: float) -> None:
        if not tried[current["round"]].wait(60):
            raise AssertionError("the other layer never came back")

    _hooks.add_reschedule_hook(hold_until_other_tried)
    for r in range(rounds):
        current["round"] = r
        start.wait(60)
        if layer == "foreground":
            outcome = notify.on_app_start(store, every=dt.timedelta(0))
        else:
            outcome = notify.refresh(store, "background")
        if outcome.status == "skipped":
            tried[r].set()
        out.put(
            (
                r,
                layer,
                outcome.status,
                outcome.state.result.scheduled if outcome.state and outcome.state.result else None,
            )
        )
    store.close()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))
