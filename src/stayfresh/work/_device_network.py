"""Network detection: is the machine online, and is the link metered?

The network half of :mod:`stayfresh.work._device` (whose docstring lists the
sources and the rules): NetworkManager over D-Bus first, then the kernel's
routing table and ``/sys/class/net``, then best-effort macOS/psutil paths.
It is the largest and most platform-dependent reading, so it has its own
module; :mod:`._device` re-exports its public names. The small file and
``psutil`` helpers at the top are shared with the power readings there.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NM_BUS_NAME = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
NM_STATE_CONNECTED_SITE = 60
NM_STATE_CONNECTED_GLOBAL = 70
NM_CONNECTIVITY_NONE = 1
NM_CONNECTIVITY_PORTAL = 2
NM_METERED_YES = 1
NM_METERED_NO = 2
NM_METERED_GUESS_YES = 3
NM_METERED_GUESS_NO = 4

_ARPHRD_ETHER = 1
_ARPHRD_PPP = 512
_ARPHRD_LOOPBACK = 772
_ARPHRD_NONE = 65534  # tun, wireguard
_RTF_UP = 0x1
_METERED_NAMES = re.compile(r"^(wwan|ppp|rmnet|ccmni|wwp|usb)\d*")
_TETHER_DRIVERS = {"rndis_host", "cdc_ether", "cdc_ncm", "cdc_mbim", "qmi_wwan", "ipheth"}
_TUNNEL_NAMES = re.compile(r"^(tun|tap|wg|vpn|tailscale|zt)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkState:
    """Whether we are online, and whether the link is metered (None: unknown)."""

    connected: bool
    metered: bool | None
    kind: str  # wifi | ethernet | cellular | tethered | vpn | unknown | none
    source: str  # networkmanager | sysfs | macos | psutil | assumed | override
    interfaces: tuple[str, ...] = ()


# -- reading files and optional modules (shared with power) ----------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _psutil() -> Any | None:
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


# -- network: NetworkManager over D-Bus ---------------------------------------


class DBusUnavailable(Exception):
    """No usable NetworkManager on the system bus; fall back to the kernel."""


def _jeepney() -> Any:
    """Import jeepney lazily: it is optional, and only Linux desktops have NM."""
    try:
        return importlib.import_module("jeepney")
    except ImportError as exc:
        raise DBusUnavailable("jeepney is not installed") from exc


def open_system_bus() -> Any:
    """A blocking jeepney connection to the system bus, or DBusUnavailable."""
    _jeepney()
    blocking = importlib.import_module("jeepney.io.blocking")
    try:
        return blocking.open_dbus_connection(bus="SYSTEM", auth_timeout=1.0)
    except (OSError, TimeoutError, KeyError, ValueError, RuntimeError) as exc:
        raise DBusUnavailable(f"no system bus: {exc}") from exc


def nm_get_all(bus: Any, path: str, interface: str) -> dict[str, Any]:
    """``org.freedesktop.DBus.Properties.GetAll`` on an NM object, variants unwrapped.

    ``bus`` is anything with jeepney's ``send_and_get_reply(msg, timeout=)``.
    """
    jeepney = _jeepney()
    address = jeepney.DBusAddress(path, bus_name=NM_BUS_NAME, interface=interface)
    reply = bus.send_and_get_reply(jeepney.Properties(address).get_all(), timeout=2.0)
    if reply.header.message_type == jeepney.MessageType.error:
        raise DBusUnavailable(f"{interface} GetAll failed: {reply.body}")
    props: dict[str, Any] = {}
    for name, (_signature, value) in reply.body[0].items():
        props[name] = value
    return props


def network_from_nm(manager: Mapping[str, Any], device_metered: int | None) -> NetworkState:
    """Decide from NetworkManager's manager properties (pure).

    Connected: ``State`` is CONNECTED_GLOBAL, or CONNECTED_SITE while the
    connectivity check does not report a captive portal or no connectivity.
    Metered: the manager's ``Metered`` (NM >= 1.2), else ``device_metered``.
    """
    state = int(manager.get("State", 0))
    connectivity = int(manager.get("Connectivity", 0))
    connected = state >= NM_STATE_CONNECTED_GLOBAL or (
        state == NM_STATE_CONNECTED_SITE
        and connectivity not in (NM_CONNECTIVITY_NONE, NM_CONNECTIVITY_PORTAL)
    )
    raw = manager.get("Metered", device_metered)
    metered: bool | None = None
    if raw in (NM_METERED_YES, NM_METERED_GUESS_YES):
        metered = True
    elif raw in (NM_METERED_NO, NM_METERED_GUESS_NO):
        metered = False
    ctype = str(manager.get("PrimaryConnectionType", ""))
    kind = {
        "802-11-wireless": "wifi",
        "802-3-ethernet": "ethernet",
        "gsm": "cellular",
        "cdma": "cellular",
        "bluetooth": "tethered",
        "vpn": "vpn",
        "wireguard": "vpn",
    }.get(ctype, "unknown" if connected else "none")
    return NetworkState(connected=connected, metered=metered, kind=kind, source="networkmanager")


def read_network_nm(bus: Any) -> NetworkState:
    """Ask NetworkManager (through ``bus``) for the network state."""
    manager = nm_get_all(bus, NM_PATH, NM_BUS_NAME)
    device_metered: int | None = None
    primary = str(manager.get("PrimaryConnection", "/"))
    if "Metered" not in manager and primary not in ("", "/"):
        active = nm_get_all(bus, primary, NM_BUS_NAME + ".Connection.Active")
        for device in active.get("Devices", [])[:1]:
            device_metered = int(nm_get_all(bus, device, NM_BUS_NAME + ".Device")["Metered"])
    return network_from_nm(manager, device_metered)


# -- network: the kernel ---------------------------------------------------------


def _default_route_interfaces(proc_root: Path) -> list[str]:
    """Interfaces carrying an IPv4 or IPv6 default route, in table order."""
    found: list[str] = []
    text = _read(proc_root / "net" / "route") or ""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if (
            len(fields) >= 8
            and fields[1] == fields[7] == "00000000"  # destination and mask 0.0.0.0
            and int(fields[3], 16) & _RTF_UP
            and fields[0] not in found
        ):
            found.append(fields[0])
    text6 = _read(proc_root / "net" / "ipv6_route") or ""
    for line in text6.splitlines():
        fields = line.split()
        # dest, dest prefix length, ..., flags (field 8), device (last)
        if (
            len(fields) >= 10
            and fields[0] == "0" * 32
            and fields[1] == "00"
            and fields[9] != "lo"
            and int(fields[8], 16) & _RTF_UP
            and fields[9] not in found
        ):
            found.append(fields[9])
    return found


def classify_interface(sys_root: Path, name: str) -> str:
    """wifi | ethernet | cellular | tethered | vpn | unknown, from /sys/class/net."""
    base = sys_root / "class" / "net" / name
    uevent = _read(base / "uevent") or ""
    devtype = next((ln[8:] for ln in uevent.splitlines() if ln.startswith("DEVTYPE=")), "")
    if (base / "wireless").is_dir() or (base / "phy80211").exists() or devtype == "wlan":
        return "wifi"
    arp_type = int(_read(base / "type") or "0")
    if devtype == "wwan" or arp_type == _ARPHRD_PPP:
        return "cellular"
    driver = base / "device" / "driver"
    if driver.exists() and os.path.basename(os.path.realpath(driver)) in _TETHER_DRIVERS:
        return "tethered"
    if _METERED_NAMES.match(name):
        return "cellular" if not name.startswith("usb") else "tethered"
    if arp_type == _ARPHRD_NONE or _TUNNEL_NAMES.match(name) or devtype in ("wireguard", "tun"):
        return "vpn"
    if arp_type == _ARPHRD_ETHER:
        return "ethernet"
    return "unknown"


def read_network_sysfs(sys_root: Path, proc_root: Path) -> NetworkState:
    """Connected and metered from the routing table and interface types."""
    up: list[str] = []
    for name in _default_route_interfaces(proc_root):
        base = sys_root / "class" / "net" / name
        operstate = _read(base / "operstate") or "unknown"
        if int(_read(base / "type") or "0") == _ARPHRD_LOOPBACK or operstate in ("down", "dormant"):
            continue
        up.append(name)
    if not up:
        return NetworkState(connected=False, metered=None, kind="none", source="sysfs")
    kinds = {name: classify_interface(sys_root, name) for name in up}
    physical = [k for k in kinds.values() if k not in ("vpn", "unknown")]
    if not physical:
        kind = "vpn" if "vpn" in kinds.values() else "unknown"
        return NetworkState(
            connected=True, metered=None, kind=kind, source="sysfs", interfaces=tuple(up)
        )
    metered = any(k in ("cellular", "tethered") for k in physical)
    kind = next((k for k in physical if k in ("cellular", "tethered")), physical[0])
    return NetworkState(
        connected=True, metered=metered, kind=kind, source="sysfs", interfaces=tuple(up)
    )


def read_network_other() -> NetworkState:
    """macOS / Windows, best effort and untested here: connected only, metered unknown."""
    if sys.platform == "darwin":
        try:
            result = subprocess.run(
                ["route", "-n", "get", "default"], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            result = None
        if result is not None:
            match = re.search(r"interface:\s*(\S+)", result.stdout)
            connected = result.returncode == 0 and match is not None
            kind = "unknown" if connected else "none"
            ifaces = (match.group(1),) if match else ()
            return NetworkState(
                connected=connected, metered=None, kind=kind, source="macos", interfaces=ifaces
            )
    psutil = _psutil()
    if psutil is not None:
        up = [
            name
            for name, stats in psutil.net_if_stats().items()
            if stats.isup and not name.lower().startswith(("lo", "loopback"))
        ]
        kind = "unknown" if up else "none"
        return NetworkState(
            connected=bool(up), metered=None, kind=kind, source="psutil", interfaces=tuple(up)
        )
    return NetworkState(connected=True, metered=None, kind="unknown", source="assumed")


def read_network(
    sys_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    *,
    bus_factory: Callable[[], Any] | None = open_system_bus,
) -> NetworkState:
    """The best available answer; ``bus_factory=None`` skips NetworkManager."""
    if bus_factory is not None and sys.platform.startswith("linux"):
        bus = None
        try:
            bus = bus_factory()
            return read_network_nm(bus)
        except DBusUnavailable as exc:
            log.debug("NetworkManager not used: %s", exc)
        except Exception as exc:  # a broken bus must not stop the runner
            log.debug("NetworkManager query failed: %r", exc)
        finally:
            if bus is not None and hasattr(bus, "close"):
                bus.close()
    if (proc_root / "net" / "route").exists():
        return read_network_sysfs(sys_root, proc_root)
    return read_network_other()
