"""What the machine looks like right now: network, power and storage.

Work constraints (:mod:`stayfresh.work._constraints`) need the answers Android
gets from ``ConnectivityManager``, ``BatteryManager`` and ``StorageManager``.
A desktop or server has no such single source, so each answer is pieced
together here, from the best source available:

Network (Linux)
    1. NetworkManager over the D-Bus system bus, when ``jeepney`` is installed
       and NetworkManager runs. ``State`` and ``Connectivity`` say whether we
       are connected; ``Metered`` (or the primary connection's device's
       ``Metered``) says whether the link costs money: ``NM_METERED_YES`` (1)
       and ``NM_METERED_GUESS_YES`` (3) are metered, ``NO``/``GUESS_NO`` are
       not, ``UNKNOWN`` is unknown.
    2. Otherwise the kernel: a default route in ``/proc/net/route`` (or
       ``/proc/net/ipv6_route``) through an interface that is up means
       connected; the interfaces carrying it are classified from
       ``/sys/class/net``: a ``wireless/`` directory or ``DEVTYPE=wlan`` is
       Wi-Fi (unmetered), ``DEVTYPE=wwan``, PPP links and ``wwan*``/``ppp*``/
       ``rmnet*`` names or USB tethering drivers (``rndis_host``,
       ``cdc_ether``, ``ipheth``) are metered, any other Ethernet-type link is
       wired (unmetered). Tunnels (VPNs) say nothing about cost and are
       skipped when something else carries a default route; alone they give
       "unknown".
Power (Linux)
    ``/sys/class/power_supply``: batteries (``type`` Battery, system scope)
    give ``capacity`` and ``status``; ``Mains``/``USB`` supplies give
    ``online``. Battery low means at most 15 % and not charging, Android's
    ``BATTERY_LOW`` level. No battery is never low; without any supply
    information the machine is taken to be on mains power.
Storage (everywhere)
    Free space (for unprivileged users) of the data directory's file system.
    Low means less than ``min(10 % of the file system, 500 MiB)`` free:
    Android's ``DEVICE_STORAGE_LOW`` threshold with its older 10 %, so a big
    disk is "low" only when it is nearly full.

macOS and Windows have small best-effort paths (``route``/``pmset`` on macOS,
``psutil`` when installed) that are **untested here**. Every reading can be
overridden from settings; see :mod:`stayfresh.work._constraints`.

Network detection lives in :mod:`._device_network` (re-exported here); this
module holds power and storage.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ._device_network import (
    NM_BUS_NAME,
    NM_CONNECTIVITY_NONE,
    NM_CONNECTIVITY_PORTAL,
    NM_METERED_GUESS_NO,
    NM_METERED_GUESS_YES,
    NM_METERED_NO,
    NM_METERED_YES,
    NM_PATH,
    NM_STATE_CONNECTED_GLOBAL,
    NM_STATE_CONNECTED_SITE,
    DBusUnavailable,
    NetworkState,
    _psutil,
    _read,
    classify_interface,
    network_from_nm,
    nm_get_all,
    open_system_bus,
    read_network,
    read_network_nm,
    read_network_other,
    read_network_sysfs,
)

__all__ = [
    "BATTERY_LOW_PERCENT",
    "NM_BUS_NAME",
    "NM_CONNECTIVITY_NONE",
    "NM_CONNECTIVITY_PORTAL",
    "NM_METERED_GUESS_NO",
    "NM_METERED_GUESS_YES",
    "NM_METERED_NO",
    "NM_METERED_YES",
    "NM_PATH",
    "NM_STATE_CONNECTED_GLOBAL",
    "NM_STATE_CONNECTED_SITE",
    "STORAGE_LOW_FRACTION",
    "STORAGE_LOW_MAX_BYTES",
    "DBusUnavailable",
    "NetworkState",
    "PowerState",
    "StorageState",
    "classify_interface",
    "network_from_nm",
    "nm_get_all",
    "open_system_bus",
    "parse_pmset_batt",
    "read_network",
    "read_network_nm",
    "read_network_other",
    "read_network_sysfs",
    "read_power",
    "read_power_other",
    "read_power_sysfs",
    "read_storage",
    "storage_is_low",
]

log = logging.getLogger(__name__)

#: battery percentage at or below which the battery is low (Android: 15)
BATTERY_LOW_PERCENT = 15.0
#: storage is low below this share of the file system ...
STORAGE_LOW_FRACTION = 0.10
#: ... or below this many bytes, whichever is smaller
STORAGE_LOW_MAX_BYTES = 500 * 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class PowerState:
    """Battery and charger. ``battery_percent`` is None without a battery."""

    battery_present: bool
    battery_percent: float | None
    charging: bool
    battery_low: bool
    source: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class StorageState:
    """Free space where stayfresh keeps its data."""

    path: str
    free_bytes: int | None
    total_bytes: int | None
    low: bool
    source: str


# -- power -----------------------------------------------------------------------


def read_power_sysfs(sys_root: Path) -> PowerState | None:
    """Batteries and chargers from /sys/class/power_supply; None if the class is absent."""
    base = sys_root / "class" / "power_supply"
    if not base.is_dir():
        return None
    percents: list[float] = []
    charging = False
    external: bool | None = None
    for supply in sorted(base.iterdir()):
        kind = _read(supply / "type")
        if kind == "Battery":
            if _read(supply / "scope") == "Device" or _read(supply / "present") == "0":
                continue  # a mouse or a headset, not what powers the machine
            capacity = _read(supply / "capacity")
            if capacity is not None and capacity.lstrip("-").isdigit():
                percents.append(float(capacity))
            if _read(supply / "status") in ("Charging", "Full"):
                charging = True
        elif kind in ("Mains", "USB", "USB_C", "USB_PD", "UPS", "Wireless"):
            online = _read(supply / "online") == "1"
            external = online or bool(external)
    if external:
        charging = True
    if not percents:
        # a desktop or server: never low; on mains unless a supply says offline
        on_mains = True if external is None else external
        return PowerState(
            battery_present=False,
            battery_percent=None,
            charging=on_mains,
            battery_low=False,
            source="sysfs",
        )
    percent = sum(percents) / len(percents)
    return PowerState(
        battery_present=True,
        battery_percent=percent,
        charging=charging,
        battery_low=percent <= BATTERY_LOW_PERCENT and not charging,
        source="sysfs",
    )


def parse_pmset_batt(output: str) -> PowerState:
    """Parse macOS ``pmset -g batt`` (pure; untested against a real Mac)."""
    on_ac = "'AC Power'" in output
    match = re.search(r"(\d+)%;\s*([^;]+);", output)
    if not match:
        return PowerState(
            battery_present=False,
            battery_percent=None,
            charging=on_ac or "'Battery Power'" not in output,
            battery_low=False,
            source="pmset",
        )
    percent = float(match.group(1))
    status = match.group(2).strip().lower()
    charging = on_ac or status in ("charging", "charged", "finishing charge")
    return PowerState(
        battery_present=True,
        battery_percent=percent,
        charging=charging,
        battery_low=percent <= BATTERY_LOW_PERCENT and not charging,
        source="pmset",
    )


def read_power_other() -> PowerState:
    """macOS ``pmset``, else ``psutil.sensors_battery()``; untested here."""
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["pmset", "-g", "batt"], capture_output=True, text=True, timeout=5
            ).stdout
            return parse_pmset_batt(out)
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("pmset failed: %r", exc)
    psutil = _psutil()
    battery = psutil.sensors_battery() if psutil is not None else None
    if battery is None:
        return PowerState(
            battery_present=False,
            battery_percent=None,
            charging=True,
            battery_low=False,
            source="assumed",
        )
    charging = bool(battery.power_plugged)
    percent = float(battery.percent)
    return PowerState(
        battery_present=True,
        battery_percent=percent,
        charging=charging,
        battery_low=percent <= BATTERY_LOW_PERCENT and not charging,
        source="psutil",
    )


def read_power(sys_root: Path = Path("/sys")) -> PowerState:
    """Battery and charger from the best available source."""
    state = read_power_sysfs(sys_root) if sys.platform.startswith("linux") else None
    return state if state is not None else read_power_other()


# -- storage ---------------------------------------------------------------------


def storage_is_low(free: int, total: int) -> bool:
    """Below ``min(10 % of total, 500 MiB)`` free (pure)."""
    return free < min(total * STORAGE_LOW_FRACTION, STORAGE_LOW_MAX_BYTES)


def read_storage(data_dir: Path) -> StorageState:
    """Free space of the file system holding ``data_dir`` (or its nearest parent)."""
    path = data_dir
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        log.debug("disk usage of %s unavailable: %r", path, exc)
        return StorageState(
            path=str(data_dir), free_bytes=None, total_bytes=None, low=False, source="unknown"
        )
    return StorageState(
        path=str(data_dir),
        free_bytes=usage.free,
        total_bytes=usage.total,
        low=storage_is_low(usage.free, usage.total),
        source="statvfs",
    )
