"""The one composition point: how the parts are wired together in a process.

Importing a stayfresh module changes no global state: no hook is added, no
worker registered. What used to happen at import time happens here, once,
when a program calls :func:`install` — the ``stayfresh`` command does for every
command but ``token`` (the daemon included); an application that embeds the notification
layers calls :func:`stayfresh.jobs.install` (the same function) once at start.

What is wired, and why it is wired here rather than declared:

- notify's reschedule hook → the delivery scheduler of :mod:`stayfresh.jobs`,
  so a foreground or manual reschedule also schedules the delivery work.
  ``notify`` never imports the work engine (DESIGN.md), so someone above both
  has to connect them: this module.

What needs no wiring: the built-in workers (``stayfresh.token-refresh``, …)
are declared as ``stayfresh.workers`` entry points in ``pyproject.toml`` and
resolved by name on first use, in any runner, without importing the jobs;
the CLI's notification foreground layer is a plain call of the CLI.

This module imports nothing heavy, and the hook loads :mod:`stayfresh.jobs`
only when a reschedule runs. ``stayfresh token NAME`` (run once per request
in scripts) does not install it at all: it must not load the work engine,
the jobs or an HTTP client even when its foreground layer reschedules; the
delivery work then comes from the daemon's next background refresh (which
schedules it itself) or from the next other command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store


def schedule_delivery_after_reschedule(store: Store, now: float) -> object:
    """Notify's reschedule hook: schedule the delivery work (loads the jobs on first use)."""
    from .jobs.internal import schedule_delivery

    return schedule_delivery(store, now)


def install() -> None:
    """Wire stayfresh's parts together in this process; calling it again changes nothing."""
    from .notify import add_reschedule_hook

    add_reschedule_hook(schedule_delivery_after_reschedule)  # added once, however often called
