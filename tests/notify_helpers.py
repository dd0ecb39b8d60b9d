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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Webhook:
    """An Apprise JSON endpoint: ``json://127.0.0.1:PORT/hook``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.hold = False
        self.received = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with hook._lock:
                    hook.requests.append({"path": self.path, "json": payload})
                hook.received.set()
                if hook.hold:
                    hook.release.wait(30)
                try:
                    self.send_response(hook.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client was killed meanwhile
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        with self._lock:
            return [r["json"].get("title", "") for r in self.requests]

    def start(self) -> Webhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


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
    from stayfresh.notify import _refresh
    from stayfresh.store import SQLiteStore

    store = SQLiteStore(db)
    current = {"round": 0}

    def hold_until_other_tried(_store: object, _now: float) -> None:
        if not tried[current["round"]].wait(60):
            raise AssertionError("the other layer never came back")

    _refresh.add_reschedule_hook(hold_until_other_tried)
    for r in range(rounds):
        current["round"] = r
        start.wait(60)
        if layer == "foreground":
            outcome = notify.on_app_start(store, every=dt.timedelta(0))
        else:
            outcome = notify.refresh(store, "background")
        if outcome.status == "skipped":
            tried[r].set()
        out.put((r, layer, outcome.status, outcome.result.scheduled if outcome.result else None))
    store.close()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))
