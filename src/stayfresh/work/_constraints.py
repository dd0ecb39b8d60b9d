"""Work constraints: when a work may run, and a watcher that says when to look again.

A work waits (stays ENQUEUED) while any of its :class:`Constraints` is unmet,
as with WorkManager. :func:`unmet_constraints` answers "may it run now, and if
not, why not" from the device readings of :mod:`stayfresh.work._device`; the
:class:`ConstraintWatcher` wakes the runner when those readings may have
changed, so the runner never polls.

Overrides
    Detection cannot always know (a phone's hotspot looks like Wi-Fi, a VM has
    no battery, a VPN hides the link). Four settings, stored in the store's
    settings table under ``constraints.<key>`` and set with
    ``stayfresh constraints set KEY VALUE``, replace a reading:

    ========== ===================================== ==============================
    key        values                                meaning
    ========== ===================================== ==============================
    network    auto | none | metered | unmetered     offline / online and metered /
                                                     online and unmetered
    battery    auto | ok | low                       battery low or not
    charging   auto | yes | no                       plugged in or not
    storage    auto | ok | low                       storage low or not
    ========== ===================================== ==============================

    ``auto`` (the default, stored as no setting) uses detection. The mapping
    passed around in code uses the bare keys (``{"network": "metered"}``).
    A network whose cost cannot be detected (a lone VPN, macOS, Windows)
    counts as unmetered; set ``network`` to ``metered`` if it is not.

User predicates
    ``"package.module:function"``: imported and called with no arguments each
    time the constraints are checked; a truthy result means met. An exception
    (including failing to import it) means unmet, and is logged.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ._device import (
    NM_BUS_NAME,
    NM_PATH,
    NetworkState,
    PowerState,
    StorageState,
    open_system_bus,
    read_network,
    read_power,
    read_storage,
)

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger(__name__)

NetworkRequirement = Literal["connected", "unmetered"]
_NETWORK_VALUES = ("connected", "unmetered")
_PREDICATE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

#: the override settings and their allowed values; "auto" means "detect"
OVERRIDE_CHOICES: dict[str, tuple[str, ...]] = {
    "network": ("auto", "none", "metered", "unmetered"),
    "battery": ("auto", "ok", "low"),
    "charging": ("auto", "yes", "no"),
    "storage": ("auto", "ok", "low"),
}
SETTING_PREFIX = "constraints."


@dataclasses.dataclass(frozen=True, kw_only=True)
class Constraints:
    """What must hold before a work runs. The default constrains nothing."""

    network: NetworkRequirement | None = None
    battery_not_low: bool = False
    charging: bool = False
    storage_not_low: bool = False
    predicates: tuple[str, ...] = ()  # import paths "pkg.mod:func" returning bool

    def __post_init__(self) -> None:
        if self.network is not None and self.network not in _NETWORK_VALUES:
            raise ConfigError(
                f"network constraint must be connected or unmetered, not {self.network!r}"
            )
        if isinstance(self.predicates, str):
            raise ConfigError("predicates must be a sequence of import paths, not one string")
        object.__setattr__(self, "predicates", tuple(self.predicates))
        for path in self.predicates:
            if not _PREDICATE_RE.match(path):
                raise ConfigError(f"predicate must look like package.module:function, not {path!r}")

    def to_json(self) -> dict[str, Any]:
        """Only the constraints that are set, so that "none" is ``{}`` in the store."""
        data: dict[str, Any] = {}
        if self.network is not None:
            data["network"] = self.network
        for name in ("battery_not_low", "charging", "storage_not_low"):
            if getattr(self, name):
                data[name] = True
        if self.predicates:
            data["predicates"] = list(self.predicates)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Constraints:
        """Inverse of :meth:`to_json`; unknown keys are an error, not silently dropped.

        Dropping a constraint a newer version wrote would run work it forbids.
        """
        if not data:
            return cls()
        unknown = set(data) - {
            "network",
            "battery_not_low",
            "charging",
            "storage_not_low",
            "predicates",
        }
        if unknown:
            raise ConfigError(f"unknown constraint(s): {', '.join(sorted(unknown))}")
        return cls(
            network=data.get("network"),
            battery_not_low=bool(data.get("battery_not_low", False)),
            charging=bool(data.get("charging", False)),
            storage_not_low=bool(data.get("storage_not_low", False)),
            predicates=tuple(data.get("predicates") or ()),
        )

    def is_empty(self) -> bool:
        """True when nothing is constrained: the runner need not look at the device."""
        return self == Constraints()


# -- overrides -------------------------------------------------------------------


def validate_override(key: str, value: str) -> str:
    """The normalised value, or ConfigError naming the allowed keys and values."""
    key = key.strip().lower()
    if key not in OVERRIDE_CHOICES:
        raise ConfigError(
            f"unknown constraint setting {key!r}; use one of: {', '.join(OVERRIDE_CHOICES)}"
        )
    normalised = value.strip().lower()
    if normalised not in OVERRIDE_CHOICES[key]:
        raise ConfigError(f"{key} must be one of {', '.join(OVERRIDE_CHOICES[key])}, not {value!r}")
    return normalised


def _clean_overrides(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Valid, non-auto overrides; invalid ones are logged and ignored (detection wins)."""
    clean: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        try:
            normalised = validate_override(key, value)
        except ConfigError as exc:
            log.warning("ignoring constraint override: %s", exc)
            continue
        if normalised != "auto":
            clean[key.strip().lower()] = normalised
    return clean


def overrides_from_store(store: Store) -> dict[str, str]:
    """The overrides stored in settings (``constraints.network`` ...), bare keys, no "auto"."""
    raw = {key: store.get_setting(SETTING_PREFIX + key) for key in OVERRIDE_CHOICES}
    return _clean_overrides({k: v for k, v in raw.items() if v is not None})


def set_override(store: Store, key: str, value: str) -> str:
    """Validate and store one override; "auto" deletes the setting. Returns the value."""
    normalised = validate_override(key, value)
    store.set_setting(
        SETTING_PREFIX + key.strip().lower(), None if normalised == "auto" else normalised
    )
    return normalised


# -- device state ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceProbe:
    """Where readings come from. The defaults read this machine; tests point elsewhere.

    ``data_dir`` is the directory whose free space counts for "storage not low"
    (default: the directory of the default database).
    """

    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    data_dir: Path | None = None
    bus_factory: Callable[[], Any] | None = open_system_bus

    def network(self, overrides: Mapping[str, str]) -> NetworkState:
        forced = overrides.get("network")
        if forced is not None:
            return NetworkState(
                connected=forced != "none",
                metered=None if forced == "none" else forced == "metered",
                kind="none" if forced == "none" else "unknown",
                source="override",
            )
        return read_network(self.sys_root, self.proc_root, bus_factory=self.bus_factory)

    def power(self, overrides: Mapping[str, str]) -> PowerState:
        state = read_power(self.sys_root)
        changes: dict[str, Any] = {}
        if "battery" in overrides:
            changes["battery_low"] = overrides["battery"] == "low"
        if "charging" in overrides:
            changes["charging"] = overrides["charging"] == "yes"
            if "battery" not in overrides:  # charging is never "low battery"
                changes["battery_low"] = state.battery_low and not changes["charging"]
        return dataclasses.replace(state, **changes, source="override") if changes else state

    def storage(self, overrides: Mapping[str, str]) -> StorageState:
        state = read_storage(self.data_dir or _default_data_dir())
        if "storage" in overrides:
            return dataclasses.replace(state, low=overrides["storage"] == "low", source="override")
        return state


def _default_data_dir() -> Path:
    from ..store import default_db_path

    return default_db_path().parent


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceState:
    """All readings at one moment, after overrides, and which overrides were active."""

    network: NetworkState
    power: PowerState
    storage: StorageState
    overrides: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "network": dataclasses.asdict(self.network),
            "power": dataclasses.asdict(self.power),
            "storage": dataclasses.asdict(self.storage),
            "overrides": dict(self.overrides),
        }


def read_device_state(
    overrides: Mapping[str, str] | None = None, *, probe: DeviceProbe | None = None
) -> DeviceState:
    """Read network, power and storage now, with ``overrides`` applied."""
    probe = probe or DeviceProbe()
    clean = _clean_overrides(overrides)
    return DeviceState(
        network=probe.network(clean),
        power=probe.power(clean),
        storage=probe.storage(clean),
        overrides=clean,
    )


# -- the decision ----------------------------------------------------------------


def check_predicate(path: str) -> str | None:
    """None when the predicate holds, else the reason it does not (never raises)."""
    try:
        module_name, _, attr_path = path.partition(":")
        target: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            target = getattr(target, attr)
        result = target()
    except Exception as exc:
        log.warning("constraint predicate %s failed; treating it as unmet", path, exc_info=True)
        return f"predicate {path} raised {type(exc).__name__}: {exc}"
    return None if result else f"predicate {path} returned {result!r}"


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024 / 1024:.0f} MiB"


def unmet_constraints(
    c: Constraints,
    overrides: Mapping[str, str] | None = None,
    *,
    probe: DeviceProbe | None = None,
) -> list[str]:
    """Human reasons why ``c`` is not met now; empty when the work may run.

    Only the readings ``c`` needs are taken, so a work that only wants a
    network never touches the battery or the disk.
    """
    if c.is_empty():
        return []
    probe = probe or DeviceProbe()
    clean = _clean_overrides(overrides)
    reasons: list[str] = []
    if c.network is not None:
        net = probe.network(clean)
        where = f" ({', '.join(net.interfaces)})" if net.interfaces else ""
        if not net.connected:
            reasons.append(f"network: not connected (source: {net.source})")
        elif c.network == "unmetered" and net.metered:
            reasons.append(f"network: metered {net.kind}{where} (source: {net.source})")
    if c.battery_not_low or c.charging:
        power = probe.power(clean)
        if c.battery_not_low and power.battery_low:
            pct = "" if power.battery_percent is None else f" ({power.battery_percent:.0f}%)"
            reasons.append(f"battery: low{pct} (source: {power.source})")
        if c.charging and not power.charging:
            reasons.append(f"charging: not plugged in (source: {power.source})")
    if c.storage_not_low:
        storage = probe.storage(clean)
        if storage.low:
            reasons.append(
                f"storage: low ({_mib(storage.free_bytes)} free of {_mib(storage.total_bytes)} "
                f"at {storage.path}; source: {storage.source})"
            )
    for path in c.predicates:
        reason = check_predicate(path)
        if reason is not None:
            reasons.append(reason)
    return reasons


# -- the watcher -----------------------------------------------------------------

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
        self._overrides = _clean_overrides(overrides)
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
            if "network" not in self._overrides:
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
