"""Work constraints: when a work may run, and a watcher that says when to look again.

A work waits (stays ENQUEUED) while any of its :class:`Constraints` is unmet,
as with WorkManager. :func:`unmet_constraints` answers "may it run now, and if
not, why not" from the device readings of :mod:`stayfresh.work._device`; the
:class:`ConstraintWatcher` (:mod:`stayfresh.work._watcher`, re-exported here)
wakes the runner when those readings may have changed, so the runner never
polls.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ._device import (
    NetworkState,
    PowerState,
    StorageState,
    open_system_bus,
    read_network,
    read_power,
    read_storage,
)
from ._watcher import ConstraintWatcher

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger(__name__)

__all__ = [
    "OVERRIDE_CHOICES",
    "SETTING_PREFIX",
    "ConstraintWatcher",
    "Constraints",
    "DeviceProbe",
    "DeviceState",
    "check_predicate",
    "overrides_from_store",
    "read_device_state",
    "set_override",
    "unmet_constraints",
    "validate_override",
]

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
