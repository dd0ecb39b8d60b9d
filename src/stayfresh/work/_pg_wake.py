"""Waking runners on every host through PostgreSQL's LISTEN/NOTIFY.

The store NOTIFYs the channel inside the transactions that change what is
due (enqueue, cancel, run-now, a finish that re-enqueues), so the wake-up is
sent exactly when the change commits, whoever made it. :class:`PgWaker` lets
the engine send one explicitly too (a constraint override changed).

:class:`PgListener` gives the runner a descriptor that never changes: one end
of a socket pair. A thread owns the listening connection and writes a byte to
the pair for each batch of notifications; it blocks in ``select`` on that
connection and a stop pipe, so an idle daemon makes no calls. When the
connection is lost (server restart, network cut — TCP keepalives notice a
silent one within about a minute) the thread reconnects with exponential
backoff and, only while disconnected, pokes the runner every
:data:`FALLBACK_CHECK` seconds so that nothing due is missed; after
reconnecting it pokes once, because changes may have happened unheard.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from typing import Any

import psycopg

from ._control import WakeListener, Waker

log = logging.getLogger(__name__)

#: seconds between fallback pokes while the listening connection is down
FALLBACK_CHECK = 30.0
#: the longest wait between reconnection attempts
MAX_BACKOFF = 30.0
APPLICATION_NAME = "stayfresh-listener"
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class PgWaker(Waker):
    """NOTIFYs the wake channel; returns how many listeners are connected to the database."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def notify(self) -> int:
        try:
            return int(self.store.wake_runners(APPLICATION_NAME))
        except Exception as exc:  # a wake-up is best effort: the runner's timer still fires
            log.warning("could not wake runners: %s", exc)
            return 0


class PgListener(WakeListener):
    """A runner's end: readable after any NOTIFY on the wake channel, from any host."""

    def __init__(self, url: str, channel: str, runner_id: str) -> None:
        self.url = url
        self.channel = channel
        self.runner_id = runner_id
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self._stop_r, self._stop_w = socket.socketpair()
        self._stopping = threading.Event()
        #: for tests and logs: how many times the thread (re)connected
        self.connects = 0
        self.connected = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"stayfresh-listen-{runner_id[:6]}", daemon=True
        )
        self._thread.start()

    def fileno(self) -> int:
        return self._r.fileno()

    def drain(self) -> int:
        count = 0
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            while chunk := self._r.recv(4096):
                count += len(chunk)
        return count

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        self._thread.join(timeout=10)
        for sock in (self._r, self._w, self._stop_r, self._stop_w):
            sock.close()

    # -- the listening thread ------------------------------------------------------------

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._w.send(b"!")

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until closed; True when closing."""
        ready, _, _ = select.select([self._stop_r], [], [], seconds)
        return bool(ready) or self._stopping.is_set()

    def _run(self) -> None:
        backoff = 0.1
        down_since: float | None = None
        last_fallback = time.monotonic()
        while not self._stopping.is_set():
            try:
                conn = psycopg.connect(
                    self.url, autocommit=True, application_name=APPLICATION_NAME,
                    connect_timeout=10, **_KEEPALIVES,
                )  # fmt: skip
            except psycopg.Error as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("wake channel: cannot connect (%s); checking every %gs",
                                exc, FALLBACK_CHECK)  # fmt: skip
                if time.monotonic() - last_fallback >= FALLBACK_CHECK:
                    last_fallback = time.monotonic()
                    self._poke()
                if self._sleep(min(backoff, FALLBACK_CHECK)):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            try:
                conn.execute(f"LISTEN {self.channel}")
                self.connects += 1
                self.connected.set()
                if down_since is not None or self.connects > 1:
                    log.info("wake channel: listening again")
                    self._poke()  # changes may have happened while nobody listened
                backoff, down_since = 0.1, None
                self._listen(conn)
            except psycopg.Error as exc:
                log.warning("wake channel: connection lost (%s); reconnecting", exc)
                self.connected.clear()
                down_since = time.monotonic()
                last_fallback = time.monotonic()
                self._poke()
            finally:
                conn.close()

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        """Forward notifications until closed; raises psycopg.Error when the connection dies."""
        fd = conn.fileno()
        while not self._stopping.is_set():
            stop = self._stop_r.fileno()
            ready, _, _ = select.select([fd, stop], [], [])
            if stop in ready:
                return
            got = list(conn.notifies(timeout=0))
            if got:
                self._poke()
            else:
                # readable but nothing to read: an error or EOF is waiting; surface it
                conn.execute("SELECT 1")
