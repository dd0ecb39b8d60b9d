"""Noticing that a folder or an entry in it was removed: Linux inotify.

The control folder (:mod:`._control`) must survive someone deleting it while
a runner sleeps; polling for that would break "idle costs nothing". inotify
makes the deletion itself wake the runner. Python 3.11 has no inotify
binding, so this calls libc through ctypes, as :mod:`._timer` does for
timerfd. Elsewhere :meth:`FolderWatch.create` returns None and the caller
falls back to a periodic check.

Only removals are watched (an entry deleted or moved away, the folder itself
deleted or moved); the events are not parsed: any of them means "look
whether what you need is still there", which is one ``stat``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_IN_MOVED_FROM = 0x00000040
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_MASK = _IN_MOVED_FROM | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR


class FolderWatch:
    """An inotify descriptor, readable after a removal in (or of) the watched folder."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._fd: int = fd

    @classmethod
    def create(cls) -> FolderWatch | None:
        """A watch on Linux; None elsewhere or when inotify is unavailable (limits reached)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            return cls(libc)
        except (OSError, AttributeError) as exc:
            log.info("no inotify (%s): the control socket is checked periodically", exc)
            return None

    def fileno(self) -> int:
        return self._fd

    def watch(self, folder: Path) -> None:
        """Watch ``folder`` (again: a recreated folder is a new inode and needs a new watch)."""
        if self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK) < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(folder))

    def changed(self) -> bool:
        """Consume pending events without blocking; True if there were any."""
        seen = False
        while True:
            try:
                if not os.read(self._fd, 4096):
                    return seen
            except BlockingIOError:
                return seen
            seen = True

    def close(self) -> None:
        os.close(self._fd)
