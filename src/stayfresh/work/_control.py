"""Waking sleeping runners from other processes: the control socket.

A runner sleeps in one blocking wait until its next due time. When another
process changes work (``stayfresh work add``, a library ``enqueue``), the
runner must look again at once — without polling the database. For SQLite
that is a local datagram socket per runner, in an owner-only folder next to
the database (``<db>.sock/``, mode 0700; each socket 0600). A notifier sends
one byte to every socket in it; the runner's wait returns, it drains the
bytes and recomputes its schedule. A folder rather than one socket because
several runner processes may share a database and each needs waking.

The interface (:class:`Waker` for notifiers, :class:`WakeListener` for the
runner, whose ``fileno`` joins the runner's selector) is implemented for
PostgreSQL with LISTEN/NOTIFY in :mod:`._pg_wake`, which reaches other hosts.
"""

from __future__ import annotations

import abc
import errno
import hashlib
import logging
import os
import select
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ._watchdir import FolderWatch

log = logging.getLogger(__name__)

#: sun_path holds 108 bytes including the terminating NUL
_MAX_SOCKET_PATH = 107
#: seconds between checks that the control socket still exists, where inotify is missing
CONTROL_CHECK = 60.0


class Waker(abc.ABC):
    """Tells every runner of a database that work changed."""

    @abc.abstractmethod
    def notify(self) -> int:
        """Wake the runners; return how many were reached. Never raises for a dead runner."""


class WakeListener(abc.ABC):
    """A runner's end: readable when some process called :meth:`Waker.notify`."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """The descriptor to wait on (select/poll/asyncio reader)."""

    @abc.abstractmethod
    def drain(self) -> int:
        """Consume pending wake-ups without blocking; return how many there were."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening and remove what was created."""

    #: seconds between calls of :meth:`check` the runner should make; None: never needed
    check_every: float | None = None

    def check(self) -> bool:
        """Repair the wake channel if it was broken from outside; True when it was.

        A True answer means wake-ups may have been missed: the caller should
        look at its work again. :meth:`fileno` may differ afterwards.
        """
        return False


class NullWaker(Waker):
    """For stores without a wake channel: runners in other processes are not told."""

    def notify(self) -> int:
        return 0


def control_dir(db_path: str | os.PathLike[str]) -> Path:
    """The folder of runner sockets for the database at ``db_path``.

    ``<db>.sock`` next to the database; if socket paths there would exceed
    the kernel's limit, a per-database folder under ``$XDG_RUNTIME_DIR`` (or
    the temp dir) named by a hash of the database path — the same answer in
    every process, which is all notifiers and runners need.
    """
    db = Path(db_path).expanduser().absolute()
    beside = Path(str(db) + ".sock")
    if len(os.fsencode(beside)) + 1 + 12 <= _MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(db)).hexdigest()[:16]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"stayfresh-{os.getuid() if hasattr(os, 'getuid') else 0}" / digest


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid != os.getuid():
        raise PermissionError(f"{path} is not owned by this user")
    os.chmod(path, 0o700)


class SocketWaker(Waker):
    """Sends one byte to each runner socket of a database."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.folder = control_dir(db_path)

    def notify(self) -> int:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        reached = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for entry in entries:
                if not entry.name.endswith(".sock"):
                    continue
                try:
                    sock.sendto(b"!", entry.path)
                    reached += 1
                except BlockingIOError:
                    reached += 1  # its queue is full: it has wake-ups pending anyway
                except OSError as exc:
                    if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                        # a runner that died without cleaning up: remove its socket
                        _unlink_quietly(entry.path)
                    else:
                        log.debug("could not wake %s: %s", entry.path, exc)
        log.debug("woke %d runner(s) through %s", reached, self.folder)
        return reached


class SocketListener(WakeListener):
    """A runner's datagram socket in the control folder (owner-only), kept in place.

    Someone may delete the folder while the runner sleeps (``rm -rf`` of a
    data folder, a tmp cleaner under ``$XDG_RUNTIME_DIR``). The bound socket
    then lives on but no notifier can reach it by path, and the runner would
    sleep through every ``work add`` until its next due time. So on Linux the
    listener also watches the folder with inotify and, when the folder or its
    socket goes, recreates both at once (with a warning) and reports a
    wake-up — a change made while the path was missing went unheard, so the
    runner looks at the database again. Both descriptors sit in one epoll
    set whose descriptor is :meth:`fileno`, so the runner's selector never
    has to change. Without inotify, :attr:`check_every` asks the runner to
    call :meth:`check` on that period instead (``STAYFRESH_CONTROL_CHECK``
    seconds, default 60).
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        runner_id: str,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = control_dir(db_path)
        self.path = self.folder / f"{runner_id[:12]}.sock"
        self._sock: socket.socket | None = None
        self._ino = 0
        env = os.environ if environ is None else environ
        self._fallback_every = float(env.get("STAYFRESH_CONTROL_CHECK") or CONTROL_CHECK)
        self._watch = FolderWatch.create()
        self._poller = select.epoll() if self._watch is not None else None
        if self._watch is not None and self._poller is not None:
            self._poller.register(self._watch.fileno(), select.EPOLLIN)
        self._bind()

    def _bind(self) -> None:
        """(Re)create the folder and this runner's socket, and watch the folder."""
        _private_dir(self.folder)
        _unlink_quietly(str(self.path))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.setblocking(False)
        self._ino = os.stat(self.path).st_ino
        previous, self._sock = self._sock, sock
        if self._poller is not None:
            if previous is not None:
                self._poller.unregister(previous.fileno())
            self._poller.register(sock.fileno(), select.EPOLLIN)
        if previous is not None:
            previous.close()
        self.check_every = self._fallback_every
        if self._watch is not None:
            try:
                self._watch.watch(self.folder)
                self.check_every = None
            except OSError as exc:  # e.g. the inotify watch limit: check on a period instead
                log.warning("cannot watch %s (%s); checking it every %gs", self.folder, exc,
                            self._fallback_every)  # fmt: skip

    def fileno(self) -> int:
        if self._poller is not None:
            return self._poller.fileno()
        assert self._sock is not None
        return self._sock.fileno()

    def check(self) -> bool:
        """Recreate the socket if its path is gone; True when it did (look at the database)."""
        try:
            if os.stat(self.path).st_ino == self._ino:
                return False
        except FileNotFoundError:
            pass
        log.warning(
            "control socket %s was removed; recreating it (wake-ups sent meanwhile were"
            " missed, so the runner looks at its work again)",
            self.path,
        )
        problem: OSError | None = None
        for _ in range(3):  # a concurrent `rm -rf` may still be emptying the folder
            try:
                self._bind()
                return True
            except OSError as exc:
                problem = exc
                if not isinstance(exc, FileNotFoundError):
                    break
        # the runner keeps running on its timers; it tries again on a period
        log.error("cannot recreate the control socket %s: %s; trying again every %gs",
                  self.path, problem, self._fallback_every)  # fmt: skip
        self.check_every = self._fallback_every
        return True

    def drain(self) -> int:
        count = 0
        assert self._sock is not None
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            count += 1
        if self._watch is not None and self._watch.changed() and self.check():
            count += 1
        return count

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        _unlink_quietly(str(self.path))
        if self._watch is not None:
            self._watch.close()
        if self._poller is not None:
            self._poller.close()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)


def waker_for(store: object) -> Waker:
    """The waker of a store: NOTIFY for PostgreSQL, control sockets for SQLite, else nothing."""
    if getattr(store, "wake_channel", None):
        from ._pg_wake import PgWaker  # psycopg is an optional extra

        return PgWaker(store)
    path = getattr(store, "path", None)
    return SocketWaker(path) if isinstance(path, Path) else NullWaker()


def listener_for(store: object, runner_id: str) -> WakeListener | None:
    """The runner end for a store, or None when the store has no wake channel."""
    channel = getattr(store, "wake_channel", None)
    if channel:
        from ._pg_wake import PgListener

        return PgListener(str(getattr(store, "url")), str(channel), runner_id)  # noqa: B009
    path = getattr(store, "path", None)
    return SocketListener(path, runner_id) if isinstance(path, Path) else None
