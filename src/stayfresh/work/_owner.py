"""Who holds a lease, and whether that holder is provably dead.

A lease normally ends by running out: another runner takes the work over
once ``lease_until`` has passed. That is the only safe rule across hosts,
but on the machine where the holder ran we can do better: a process that
was SIGKILLed (or a daemon that crashed and was restarted) is provably gone,
and waiting a whole lease for it wastes the user's time — ``stayfresh
download`` run again after a kill would sit there for a minute doing
nothing.

So every lease owner id says where it lives::

    host:pid:starttime.ident:token

``starttime`` is field 22 of ``/proc/PID/stat`` (clock ticks since boot), so
a pid reused by another process is told apart; ``ident`` hashes the boot id
and the pid namespace, so an owner from before a reboot, or from another
container that happens to share the host name, is never mistaken for a local
process. An owner is dead only when all of that matches this process's
machine and the pid is gone, a zombie, or started at another time. Anything
else (another host, an id in another format, no ``/proc``) is *not provably
dead*: its lease must run out. On systems without ``/proc`` (macOS,
Windows) only "same host and the pid no longer exists" counts; that path is
untested here.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

_PROC = Path("/proc")


def _start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/PID/stat``; None if the process is gone or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return "?"  # unreadable (another user's process): it exists
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # a zombie has finished; only its exit status remains
    return fields[19]


@functools.cache
def _machine() -> tuple[str, str]:
    """(host name, ident): the same in every process of this boot and pid namespace."""
    host = socket.gethostname().replace(":", "_")
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return host, ""
    return host, hashlib.sha256(f"{boot}|{pidns}".encode()).hexdigest()[:8]


def local_owner_id(token: str) -> str:
    """A lease owner id for this process: ``host:pid:starttime.ident:token``."""
    host, ident = _machine()
    pid = os.getpid()
    start = _start_time(pid) if ident else None
    return f"{host}:{pid}:{start or 0}.{ident}:{token}"


def owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` is a process of this machine that has provably ended."""
    parts = owner.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, pid_text, where, _token = parts
    start, _, ident = where.partition(".")
    my_host, my_ident = _machine()
    if host != my_host or ident != my_ident:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process: a runner of ours that is alive by definition
    if ident:
        now_start = _start_time(pid)
        return now_start is None or (now_start != "?" and now_start != start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def dead_owners(owners: Iterable[str | None], *, me: str) -> set[str]:
    """The owners among ``owners`` (other than ``me``) whose process is provably gone."""
    found = {o for o in owners if o and o != me and owner_is_dead(o)}
    if found:
        log.info("lease owner(s) gone: %s", ", ".join(sorted(found)))
    return found


def owner_is_here(owner: str) -> bool:
    """Is ``owner`` (a lease owner or runner id) a process of this machine?"""
    parts = owner.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, _pid, where, _token = parts
    return (host, where.partition(".")[2]) == _machine()
