"""Notification settings kept in the store (window length, capacity, grace, send lease).

They live in the store's settings so that every process (the CLI, the
daemon, an embedding application) uses the same values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from .._input import parse_duration, shorten
from ..errors import ConfigError
from ..store import Store

log = logging.getLogger("stayfresh.notify")

PREFIX = "notify."
#: ADR-007's constants
BACKGROUND_TASK_INTERVAL_HOURS = 3
NOTIFICATION_REFRESH_TASK = "NOTIFICATION_REFRESH_TASK"
#: how far ahead pending notifications are kept (ADR-001's rolling window)
NOTIFICATION_WINDOW = dt.timedelta(days=2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    """How the window is built and how late a notification may still be delivered.

    ``send_lease``: a send that has not been recorded this long after it
    started is presumed dead (its process crashed); what happens next depends
    on the sink's at-most-once / at-least-once choice.
    """

    window: dt.timedelta = NOTIFICATION_WINDOW
    capacity: int | None = None
    grace: dt.timedelta = dt.timedelta(hours=1)
    send_lease: dt.timedelta = dt.timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.window <= dt.timedelta(0):
            raise ConfigError("the window must be longer than zero")
        if self.capacity is not None and self.capacity < 1:
            raise ConfigError("capacity must be at least 1 (or unset)")
        if self.grace < dt.timedelta(0) or self.send_lease <= dt.timedelta(0):
            raise ConfigError("grace must be ≥ 0 and the send lease > 0")

    @classmethod
    def load(cls, store: Store) -> NotifyConfig:
        """The stored settings, defaults for those not set."""

        config = cls()
        for key in ("window", "capacity", "grace", "send_lease"):
            raw = store.get_setting(PREFIX + key)
            if raw is None:
                continue
            try:  # the database is input too: bounded parsers, and the default if it lies
                value: Any
                if key == "capacity":
                    if not (raw.isdigit() and len(raw) <= 9):
                        raise ValueError(f"not a count: {shorten(raw)}")
                    value = int(raw)
                else:
                    value = dt.timedelta(seconds=parse_duration(raw, what=key))
                config = dataclasses.replace(config, **{key: value})
            except (ValueError, ConfigError) as exc:
                log.error("stored notify setting %s is unusable (%s); using the default", key, exc)
        return config

    def save(self, store: Store) -> None:
        store.set_setting(PREFIX + "window", str(self.window.total_seconds()))
        store.set_setting(
            PREFIX + "capacity", None if self.capacity is None else str(self.capacity)
        )
        store.set_setting(PREFIX + "grace", str(self.grace.total_seconds()))
        store.set_setting(PREFIX + "send_lease", str(self.send_lease.total_seconds()))

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "window_seconds": self.window.total_seconds(),
            "capacity": self.capacity,
            "grace_seconds": self.grace.total_seconds(),
            "send_lease_seconds": self.send_lease.total_seconds(),
        }
