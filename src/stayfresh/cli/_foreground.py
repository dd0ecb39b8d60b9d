"""The notification foreground layer of the CLI, kept apart from the ``notify`` commands.

Every command runs it (``stayfresh token NAME`` included, once per request in
scripts), so this module imports only what the layer needs:
:func:`stayfresh.notify.window_decision` (the layer's test, import-free), and
:func:`stayfresh.notify.on_app_start` only when the window must be rebuilt —
not the commands, the sinks or the jobs.
"""

from __future__ import annotations

import logging
import os
import time

from ..errors import StayfreshError
from ..notify import window_decision
from ..store import Store

log = logging.getLogger(__name__)


def foreground_layer(store: Store) -> None:
    """The foreground layer for this command: reschedule if 4 hours have passed.

    Called by the CLI's context (``cli._app.Context.store``), so it runs once
    per command, on the database the command uses, when the command first
    opens it. Off with ``STAYFRESH_NOTIFY_FOREGROUND=0``. Errors
    are logged, never raised.
    """
    if os.environ.get("STAYFRESH_NOTIFY_FOREGROUND", "1") == "0":
        return
    try:
        # the layer's own test, first, on one read: when the window is fresh (the common
        # case) the rule expansion machinery (RRULE, time zones) is not even imported
        fresh = store.notify_freshness()
        needed, why = window_decision(fresh, time.time())
        if not needed:
            log.debug("foreground layer: not needed: %s", why)
            return
        from ..notify import on_app_start  # decides again: another process may have done it

        outcome = on_app_start(store)
        if outcome.status == "failed":  # the layer logged why (a warning when it gave up)
            log.debug("notification refresh failed: %s", outcome.error)
    except StayfreshError as exc:  # typed (database busy, disk full…): one line
        log.warning("notification foreground layer skipped: %s", exc)
    except Exception:  # the user's command matters more than the window; a bug shows its trace
        log.warning("notification foreground layer failed", exc_info=True)
