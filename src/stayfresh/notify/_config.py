"""Notification settings kept in the store (window length, capacity, grace, send lease).

They live in the store's settings so that every process (the CLI, the
daemon, an embedding application) uses the same values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from ..errors import ConfigError
from ..store import Store

PREFIX = "notify."
#: ADR-007's constants
NOTIFICATION_REFRESH_HOURS = 4
BACKGROUND_TASK_INTERVAL_HOURS = 3
NOTIFICATION_REFRESH_TASK = "NOTIFICATION_REFRESH_TASK"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    """How the window is built and how late a notification may still be delivered.

    ``send_lease``: a send that has not been recorded this long after it
    started is presumed dead (its process crashed); what happens next depends
    on the sink's at-most-once / at-least-once choice.
    """

    window: dt.timedelta = dt.timedelta(days=2)
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

        def seconds(key: str, default: dt.timedelta) -> dt.timedelta:
            raw = store.get_setting(PREFIX + key)
            return default if raw is None else dt.timedelta(seconds=float(raw))

        capacity = store.get_setting(PREFIX + "capacity")
        base = cls()
        return cls(
            window=seconds("window", base.window),
            capacity=None if capacity is None else int(capacity),
            grace=seconds("grace", base.grace),
            send_lease=seconds("send_lease", base.send_lease),
        )

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
