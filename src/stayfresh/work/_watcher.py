"""The constraint watcher: wake the runner when device state may have changed.

Android tells WorkManager when connectivity, battery or storage change; here
the kernel (rtnetlink) and NetworkManager (D-Bus signals) tell us about the
network, and nothing tells us about the battery, the disk or user predicates
without udev, so those are rechecked on a slow timer, and only while the
watcher runs. The runner runs it only while due work waits on a constraint.
"""

from __future__ import annotations

import importlib
import logging
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._device import NM_BUS_NAME, NM_PATH, open_system_bus

log = logging.getLogger(__name__)

# netlink (linux/rtnetlink.h)
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
_RTM_NEWLINK = 16
_RTM_TYPES = {16, 17, 20, 21, 24, 25}  # NEW/DEL LINK, ADDR, ROUTE
_IFLA_WIRELESS = 11
_NLMSG_HDR = struct.Struct("=IHHII")
_IFINFO_LEN = 16


def netlink_is_relevant(data: bytes) -> bool:
    """True if a batch of rtnetlink messages reports a link, address or route change.

    Wireless-extension events (scan results) arrive as RTM_NEWLINK carrying
    only IFLA_WIRELESS; they say nothing about connectivity and are ignored.
    """
    offset = 0
    while offset + _NLMSG_HDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
        if length < _NLMSG_HDR.size:
            break
        payload = data[offset + _NLMSG_HDR.size : offset + length]
        if msg_type in _RTM_TYPES and (msg_type != _RTM_NEWLINK or not _only_wireless(payload)):
            return True
        offset += (length + 3) & ~3
    return False


def _only_wireless(payload: bytes) -> bool:
    attrs, pos = set(), _IFINFO_LEN
    while pos + 4 <= len(payload):
        rta_len, rta_type = struct.unpack_from("=HH", payload, pos)
        if rta_len < 4:
            break
        attrs.add(rta_type & 0x3FFF)
        pos += (rta_len + 3) & ~3
    return _IFLA_WIRELESS in attrs and len(attrs) <= 2  # IFLA_WIRELESS (+ IFLA_IFNAME)


def is_nm_change(msg: Any) -> bool:
    """True for NetworkManager's state or property-change signals on the manager object."""
    fields = msg.header.fields
    jeepney = importlib.import_module("jeepney")
    path = fields.get(jeepney.HeaderFields.path)
    interface = fields.get(jeepney.HeaderFields.interface)
    member = fields.get(jeepney.HeaderFields.member)
    return path == NM_PATH and (interface, member) in {
        ("org.freedesktop.DBus.Properties", "PropertiesChanged"),
        (NM_BUS_NAME, "StateChanged"),
        (NM_BUS_NAME, "PropertiesChanged"),
    }


class _SourceGone(Exception):
    """An event source broke (the bus went away); the watcher drops it."""


class _Source:
    """One file descriptor the watcher blocks on, and how to drain it.

    ``drain`` reads everything pending without blocking and says whether any
    of it matters; it raises :class:`_SourceGone` when the source is dead.
    """

    def __init__(self, name: str, sock: Any, drain: Callable[[], bool], close: Callable[[], None]):
        self.name, self.sock, self.drain, self.close = name, sock, drain, close

    def fileno(self) -> int:
        return int(self.sock.fileno())


class ConstraintWatcher:
    """Calls ``on_change`` when device state may have changed, without busy polling.

    One background thread blocks in ``select`` on:

    - an rtnetlink socket (Linux): the kernel reports every link, address and
      route change, with or without NetworkManager;
    - NetworkManager's D-Bus signals (when jeepney and NM are present), which
      also carry changes the kernel cannot see, such as a link marked metered;
    - a wake-up socket used by :meth:`stop`.

    Battery, charger, storage and user predicates have no event source here
    (that would need udev), so while started the thread also calls
    ``on_change`` every ``poll_interval`` seconds (60 by default). The runner
    starts the watcher only while some due work waits on a constraint, so an
    idle daemon does not wake at all. Bursts of events are debounced: the
    callback runs once after ``debounce`` seconds of quiet (at most 1 s late).
    A network override makes the network sources pointless; they are not opened.
    """

    def __init__(
        self,
        on_change: Callable[[], None],
        overrides: Mapping[str, str] | None = None,
        *,
        poll_interval: float = 60.0,
        debounce: float = 0.2,
        netlink: bool = True,
        bus_factory: Callable[[], Any] | None = open_system_bus,
    ) -> None:
        self._on_change = on_change
        forced = str((overrides or {}).get("network", "auto")).strip().lower()
        self._network_forced = forced in ("none", "metered", "unmetered")
        self._poll_interval = poll_interval
        self._debounce = debounce
        self._use_netlink = netlink
        self._bus_factory = bus_factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waker: socket.socket | None = None
        self.sources: tuple[str, ...] = ()  # names of the event sources in use, for status

    def start(self) -> None:
        """Start watching (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            sources: list[_Source] = []
            if not self._network_forced:
                if self._use_netlink and sys.platform.startswith("linux"):
                    source = _open_netlink()
                    if source is not None:
                        sources.append(source)
                if self._bus_factory is not None and sys.platform.startswith("linux"):
                    source = _open_nm_signals(self._bus_factory)
                    if source is not None:
                        sources.append(source)
            waker_r, waker_w = socket.socketpair()
            self._waker = waker_w
            self.sources = tuple(s.name for s in sources)
            self._thread = threading.Thread(
                target=self._run, args=(sources, waker_r), name="stayfresh-constraints", daemon=True
            )
            self._thread.start()
            log.debug(
                "constraint watcher started (sources: %s)", ", ".join(self.sources) or "timer"
            )

    def stop(self) -> None:
        """Stop watching and wait for the thread (idempotent)."""
        with self._lock:
            thread, waker = self._thread, self._waker
            self._thread = self._waker = None
        if thread is None or waker is None:
            return
        waker.send(b"x")
        thread.join(timeout=5)
        waker.close()
        log.debug("constraint watcher stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self, sources: list[_Source], waker: socket.socket) -> None:
        try:
            next_tick = time.monotonic() + self._poll_interval
            while True:
                ready = self._wait(sources, waker, max(0.0, next_tick - time.monotonic()))
                if ready is None:
                    return
                if not ready:
                    next_tick = time.monotonic() + self._poll_interval
                    self._fire("periodic check")
                    continue
                if not self._drain(ready, sources):
                    continue
                names = {s.name for s in ready}
                limit = time.monotonic() + 1.0
                while time.monotonic() < limit:  # debounce a burst
                    more = self._wait(sources, waker, self._debounce)
                    if more is None:
                        return
                    if not more:
                        break
                    self._drain(more, sources)
                    names.update(s.name for s in more)
                self._fire(", ".join(sorted(names)))
        except Exception:
            log.exception(
                "constraint watcher failed; constraints are rechecked only when work changes"
            )
        finally:
            for s in sources:
                s.close()
            waker.close()

    @staticmethod
    def _drain(ready: list[_Source], sources: list[_Source]) -> bool:
        """Drain the ready sources; a dead one is closed, dropped and counts as a change."""
        relevant = False
        for source in ready:
            try:
                relevant = source.drain() or relevant
            except _SourceGone as exc:
                log.warning("constraint event source %s lost: %s", source.name, exc)
                sources.remove(source)
                source.close()
                relevant = True
        return relevant

    @staticmethod
    def _wait(sources: list[_Source], waker: socket.socket, timeout: float) -> list[_Source] | None:
        """Sources ready within ``timeout`` ([] on timeout), None when stopping."""
        waiting: list[_Source | socket.socket] = [waker, *sources]
        readable, _, _ = select.select(waiting, [], [], timeout)
        if waker in readable:
            return None
        return [s for s in readable if isinstance(s, _Source)]

    def _fire(self, why: str) -> None:
        log.debug("device state may have changed (%s)", why)
        try:
            self._on_change()
        except Exception:
            log.exception("constraint on_change callback failed")


def _open_netlink() -> _Source | None:
    groups = (
        RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV6_ROUTE
    )
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        sock.bind((0, groups))
        sock.setblocking(False)
    except (OSError, AttributeError) as exc:
        log.debug("netlink route socket unavailable: %r", exc)
        return None

    def drain() -> bool:
        relevant = False
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return relevant
            except OSError as exc:  # ENOBUFS: we missed events, so assume a change
                log.debug("netlink receive: %r", exc)
                return True
            relevant = relevant or netlink_is_relevant(data)

    return _Source("netlink", sock, drain, sock.close)


def _open_nm_signals(bus_factory: Callable[[], Any]) -> _Source | None:
    """Subscribe to NetworkManager's signals; None without jeepney, a bus or NM."""
    try:
        conn = bus_factory()
    except Exception as exc:
        log.debug("no D-Bus for NetworkManager signals: %r", exc)
        return None
    try:
        jeepney = importlib.import_module("jeepney")
        owned = conn.send_and_get_reply(jeepney.message_bus.NameHasOwner(NM_BUS_NAME), timeout=2.0)
        if not owned.body or not owned.body[0]:
            conn.close()
            log.debug("NetworkManager is not on the system bus")
            return None
        for interface, member in (
            ("org.freedesktop.DBus.Properties", "PropertiesChanged"),
            (NM_BUS_NAME, "StateChanged"),
            (NM_BUS_NAME, "PropertiesChanged"),
        ):
            rule = jeepney.MatchRule(
                type="signal", sender=NM_BUS_NAME, path=NM_PATH, interface=interface, member=member
            )
            conn.send_and_get_reply(jeepney.message_bus.AddMatch(rule), timeout=2.0)
    except Exception as exc:
        log.debug("subscribing to NetworkManager failed: %r", exc)
        conn.close()
        return None

    def drain() -> bool:
        relevant = False
        while True:
            try:
                msg = conn.receive(timeout=0)
            except TimeoutError:
                return relevant
            except (OSError, EOFError, ValueError) as exc:
                raise _SourceGone(repr(exc)) from exc
            relevant = relevant or is_nm_change(msg)

    return _Source("networkmanager", conn.sock, drain, conn.close)
