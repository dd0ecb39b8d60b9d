"""The seed's Settings screen: four values, validated once, stored in the store.

Settings live in the store's key/value table under ``settings.<key>`` so that
every process (the CLI, the daemon, an application) reads the same values.
Only validated, normalised text is ever stored (``6h``, ``on``), so reading
never has to guess (durations go through the one bounded duration parser, and
error messages quote at most a short prefix of what was typed); a value that is unreadable anyway (written by hand, or
by a newer version) falls back to its default with a warning instead of
stopping the daemon.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from .._input import shorten
from ..errors import ConfigError
from ..store import Store
from ..work import format_duration, min_interval, parse_duration

log = logging.getLogger(__name__)

SETTING_PREFIX = "settings."

#: the seed's sync frequencies: "manual" (no periodic sync) or an interval
SYNC_FREQUENCIES: dict[str, float | None] = {
    "manual": None,
    "1h": 3600.0,
    "6h": 6 * 3600.0,
    "12h": 12 * 3600.0,
    "24h": 24 * 3600.0,
}
#: the longest token refresh interval accepted: a backup check rarer than weekly
#: would miss most refresh tokens' lifetimes (Amazon's are 7-14 days unused)
MAX_TOKEN_REFRESH_INTERVAL = 7 * 86400.0

_TRUE = ("on", "true", "yes", "1", "enabled")
_FALSE = ("off", "false", "no", "0", "disabled")

DEFAULTS: dict[str, str] = {
    "sync_frequency": "manual",
    "sync_wifi_only": "on",
    "auto_token_refresh": "on",
    "token_refresh_interval": "24h",
}

DESCRIPTIONS: dict[str, str] = {
    "sync_frequency": "library sync: manual, 1h, 6h, 12h or 24h",
    "sync_wifi_only": "library sync only on unmetered networks (Wi-Fi): on or off",
    "auto_token_refresh": "background token refresh (the safety net): on or off",
    "token_refresh_interval": "how often the background token check runs (e.g. 24h, 12h)",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What the Settings screen holds, with the seed's defaults."""

    sync_frequency: str = "manual"
    sync_wifi_only: bool = True
    auto_token_refresh: bool = True
    token_refresh_interval: float = 24 * 3600.0

    @property
    def sync_interval(self) -> float | None:
        """Seconds between library syncs, or None for manual only."""
        return SYNC_FREQUENCIES[self.sync_frequency]

    def to_json(self) -> dict[str, Any]:
        """Values as ``settings show --json`` prints them (and ``set`` accepts them)."""
        return {
            "sync_frequency": self.sync_frequency,
            "sync_wifi_only": _on_off(self.sync_wifi_only),
            "auto_token_refresh": _on_off(self.auto_token_refresh),
            "token_refresh_interval": format_interval(self.token_refresh_interval),
        }


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def format_interval(seconds: float) -> str:
    """``86400`` → ``"24h"`` (the seed's words), else the engine's ``1h30m`` style."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    return format_duration(seconds)


def normalize_key(key: str) -> str:
    """``sync-frequency`` and ``settings.sync_frequency`` both name ``sync_frequency``."""
    bare = key.strip().lower().replace("-", "_").removeprefix(SETTING_PREFIX)
    if bare not in DEFAULTS:
        raise ConfigError(f"unknown setting {shorten(key)}; settings are: {', '.join(DEFAULTS)}")
    return bare


def validate_setting(
    key: str, value: str, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(key, normalised value) for a user's input; :class:`ConfigError` (exit 2) if invalid."""
    name = normalize_key(key)
    text = value.strip().lower()
    if name == "sync_frequency":
        return name, _frequency(text)
    if name in ("sync_wifi_only", "auto_token_refresh"):
        if text in _TRUE:
            return name, "on"
        if text in _FALSE:
            return name, "off"
        raise ConfigError(f"{name} must be on or off, not {shorten(value)}")
    return name, format_interval(_interval(value, environ))


def _frequency(text: str) -> str:
    if text in ("manual", "off", "never", "none"):
        return "manual"
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = -1.0
    for label, interval in SYNC_FREQUENCIES.items():
        if interval is not None and abs(seconds - interval) < 0.5:
            return label
    raise ConfigError(
        f"sync_frequency must be one of {', '.join(SYNC_FREQUENCIES)}, not {shorten(text)}"
    )


def _interval(value: str, environ: Mapping[str, str] | None) -> float:
    try:
        seconds = parse_duration(value, what="token_refresh_interval")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    floor = min_interval(dict(os.environ if environ is None else environ))
    if seconds < floor:
        raise ConfigError(
            f"token_refresh_interval must be at least {format_duration(floor)} "
            f"(the shortest periodic interval), not {shorten(value)}"
        )
    if seconds > MAX_TOKEN_REFRESH_INTERVAL:
        raise ConfigError(
            f"token_refresh_interval must be at most "
            f"{format_duration(MAX_TOKEN_REFRESH_INTERVAL)}, not {shorten(value)}"
        )
    return seconds


def load_settings(store: Store) -> Settings:
    """The stored settings, defaults for anything unset or unreadable."""
    values: dict[str, str] = {}
    for key, default in DEFAULTS.items():
        raw = store.get_setting(SETTING_PREFIX + key)
        if raw is None:
            values[key] = default
            continue
        try:
            values[key] = validate_setting(key, raw)[1]
        except ConfigError as exc:
            log.warning("stored setting ignored, using %s=%s: %s", key, default, exc)
            values[key] = default
    return Settings(
        sync_frequency=values["sync_frequency"],
        sync_wifi_only=values["sync_wifi_only"] == "on",
        auto_token_refresh=values["auto_token_refresh"] == "on",
        token_refresh_interval=parse_duration(values["token_refresh_interval"]),
    )


def save_setting(store: Store, key: str, value: str) -> Settings:
    """Validate and store one setting; return the settings now in force.

    This only stores. Call :func:`~stayfresh.jobs.apply_settings` afterwards
    (``stayfresh settings set`` does) so the works follow at once.
    """
    name, normalized = validate_setting(key, value)
    if normalized == DEFAULTS[name]:
        store.set_setting(SETTING_PREFIX + name, None)  # back to the default: no row
    else:
        store.set_setting(SETTING_PREFIX + name, normalized)
    log.info("setting %s = %s", name, normalized)
    return load_settings(store)
