"""Where notifications go: the log, any Apprise URL, the desktop.

Apprise (``stayfresh[notify]``) and desktop-notifier (``stayfresh[desktop]``)
are optional and imported only when a sink of theirs sends, so the CLI and the
daemon start without them. A sink raises :class:`SinkError` when a send did
not go through; the deliverer records it and retries within the grace period.

Apprise URLs often carry secrets (bot tokens, passwords): they are stored in
the owner-only database and shown only in Apprise's privacy form.
"""

from __future__ import annotations

import abc
import importlib
import logging
import threading
import warnings
from typing import Any

from ..errors import ConfigError, StayfreshError
from ..store import DEFAULT_SINK_ID, SinkRow

log = logging.getLogger(__name__)
#: the log sink writes here, at WARNING, so a daemon shows reminders at the default log level
delivered_log = logging.getLogger("stayfresh.notify.delivered")

KINDS = ("log", "apprise", "desktop")


class SinkError(StayfreshError):
    """A send did not go through; the message says why (no secrets)."""


class Sink(abc.ABC):
    """One delivery target."""

    def __init__(self, row: SinkRow) -> None:
        self.row = row

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def at_least_once(self) -> bool:
        return self.row.at_least_once

    @abc.abstractmethod
    def send(self, title: str, body: str) -> None:
        """Deliver one notification or raise :class:`SinkError`."""

    def describe(self) -> str:
        return self.row.kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, {self.describe()})"


class LogSink(Sink):
    """Writes the notification to the ``stayfresh.notify.delivered`` logger."""

    def send(self, title: str, body: str) -> None:
        delivered_log.warning("notification: %s%s", title, f" — {body}" if body else "")


class AppriseSink(Sink):
    """Any Apprise URL: ``json://``, ``ntfy://``, ``mailto://``, ``slack://``, ``tgram://`` …"""

    def send(self, title: str, body: str) -> None:
        apprise = _import_apprise()
        target = self.row.target or ""
        messages: list[str] = []

        def collect(entry: Any, plugin: Any = None) -> None:
            if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL"):
                messages.append(str(entry.message))

        client = apprise.Apprise()
        if not client.add(target):
            raise SinkError(f"Apprise does not accept the URL {self.describe()}")
        # Apprise wants a body; a reminder may have only a title
        ok = client.notify(body=body or title, title=title, log_callback=collect)
        if not ok:
            detail = "; ".join(messages)[-300:] or "no detail"
            raise SinkError(f"Apprise could not deliver to {self.describe()}: {detail}")

    def describe(self) -> str:
        return privacy_url(self.row.target or "")


class DesktopSink(Sink):
    """A desktop notification (D-Bus on Linux, macOS and Windows) through desktop-notifier.

    Untested here: it needs a session bus and a notification daemon.
    """

    def send(self, title: str, body: str) -> None:
        try:
            from desktop_notifier import DesktopNotifierSync
        except ImportError as exc:
            raise SinkError(
                "desktop notifications need desktop-notifier: pip install 'stayfresh[desktop]'"
            ) from exc
        try:
            DesktopNotifierSync(app_name="stayfresh").send(title=title, message=body)
        except Exception as exc:  # D-Bus, Cocoa and WinRT each raise their own errors
            raise SinkError(f"desktop notification failed: {type(exc).__name__}: {exc}") from exc


_apprise_ready = threading.Lock()
_apprise: Any = None


def _import_apprise() -> Any:
    """Import Apprise and load its plugins once.

    Apprise loads its plugins on first use, and one of them imports the
    deprecated ``imghdr``: that happens here, once, with the warning silenced
    (a library's deprecation is not our user's concern; our test suite turns
    warnings into errors).
    """
    global _apprise
    with _apprise_ready:
        if _apprise is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    apprise = importlib.import_module("apprise")
                    importlib.import_module("apprise.apprise").N_MGR.load_modules()
            except ImportError as exc:
                raise SinkError(
                    "Apprise URLs need apprise: pip install 'stayfresh[notify]'"
                ) from exc
            _apprise = apprise
        return _apprise


def privacy_url(url: str) -> str:
    """The URL with its secrets masked (Apprise's privacy form), or just its scheme."""
    try:
        apprise = _import_apprise()
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return str(plugin.url(privacy=True))
    except SinkError:
        pass
    return url.split("://", 1)[0] + "://…" if "://" in url else "(url)"


def check_target(kind: str, target: str | None) -> None:
    """Validate a sink before it is stored (so a typo fails at ``sink add``, not at 9:00)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown sink kind {kind!r}: use an Apprise URL, 'desktop' or 'log'")
    if kind == "apprise":
        if not target or "://" not in target:
            raise ConfigError(
                "an Apprise sink needs a URL such as json://host/path or ntfy://topic"
            )
        try:
            apprise = _import_apprise()
        except SinkError as exc:
            raise ConfigError(str(exc)) from exc
        if not apprise.Apprise.instantiate(target, suppress_exceptions=True):
            raise ConfigError(f"Apprise does not accept the URL {privacy_url(target)}")


def sink_for(row: SinkRow) -> Sink:
    """The sink object for a stored row."""
    kinds: dict[str, type[Sink]] = {"log": LogSink, "apprise": AppriseSink, "desktop": DesktopSink}
    return kinds[row.kind](row)


def default_sink() -> Sink:
    """The implicit log sink used while no sink is configured (so nothing vanishes silently)."""
    return LogSink(
        SinkRow(id=DEFAULT_SINK_ID, kind="log", target=None, at_least_once=False, created_at=0.0)
    )


def sinks_of(rows: list[SinkRow]) -> dict[int, Sink]:
    """Sink objects by id; the implicit log sink when none is configured."""
    if not rows:
        sink = default_sink()
        return {sink.id: sink}
    return {row.id: sink_for(row) for row in rows}
