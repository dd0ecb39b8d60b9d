"""A wall-clock alarm the runner can sleep on: Linux ``timerfd`` on CLOCK_REALTIME.

Why not just ``select(timeout)``: that timeout runs on CLOCK_MONOTONIC, which
stops while the machine is suspended. A runner that went to sleep for an hour
and was suspended overnight would wake an hour *after resume*, late by the
whole night. An absolute CLOCK_REALTIME timerfd fires as soon as the wall
clock passes the due time — including right after resume — and with
``TFD_TIMER_CANCEL_ON_SET`` it also fires when the clock is stepped (NTP,
``date -s``). So an idle runner needs no periodic wake-up at all to notice
suspend/resume or clock jumps.

Python 3.11 has no ``os.timerfd_create`` (3.13 does), so this calls libc
through ctypes. Elsewhere :func:`wall_timer` returns None and the runner caps
each sleep instead (see ``_runner.FALLBACK_MAX_SLEEP``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import math
import os
import sys

log = logging.getLogger(__name__)

_CLOCK_REALTIME = 0
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class WallTimer:
    """One-shot alarm at an absolute POSIX time; readable when it fires or the clock jumps."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        fd = libc.timerfd_create(_CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._fd: int = fd
        self.armed_at: float | None = None

    def fileno(self) -> int:
        return self._fd

    def arm(self, at: float | None) -> None:
        """Fire at POSIX time ``at`` (None disarms). Re-arming replaces the previous alarm."""
        if at == self.armed_at:
            return
        spec = _Itimerspec()
        flags = 0
        if at is not None:
            at = max(at, 1e-9)
            frac, whole = math.modf(at)
            spec.it_value.tv_sec = int(whole)
            spec.it_value.tv_nsec = max(1, int(frac * 1e9))
            flags = _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET
        if self._libc.timerfd_settime(self._fd, flags, ctypes.byref(spec), None) != 0:
            err = ctypes.get_errno()
            if err != errno.ECANCELED:
                raise OSError(err, os.strerror(err))
        self.armed_at = at

    def drain(self) -> bool:
        """Consume an expiry; True when the wall clock was stepped (or resumed)."""
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno == errno.ECANCELED:
                self.armed_at = None  # the kernel disarmed it; the caller re-arms
                return True
            raise
        self.armed_at = None
        return False

    def close(self) -> None:
        os.close(self._fd)


def wall_timer() -> WallTimer | None:
    """A :class:`WallTimer` on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p
        ]  # fmt: skip
        return WallTimer(libc)
    except (OSError, AttributeError) as exc:
        log.info("no timerfd (%s): the runner will cap its sleeps instead", exc)
        return None
