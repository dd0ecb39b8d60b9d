"""Install ``stayfresh daemon`` as an OS service, so the background layer survives reboots.

Layer 2 of DESIGN.md only helps if something runs it after a reboot without
anyone typing a command. Each platform has one native way to do that for a
user (no root needed):

Linux
    A systemd **user** unit, ``~/.config/systemd/user/stayfresh.service``
    (``$XDG_CONFIG_HOME`` honoured): ``Type=simple``, ``Restart=on-failure``,
    ``WantedBy=default.target``. Install runs ``systemctl --user daemon-reload``
    and ``enable --now`` when a user manager is reachable; otherwise it writes
    the file and says what to run. A user unit runs while the user is logged
    in, or always after ``loginctl enable-linger``.
macOS (untested here)
    A launchd agent, ``~/Library/LaunchAgents/dev.stayfresh.daemon.plist``,
    ``RunAtLoad`` and ``KeepAlive`` on unsuccessful exit, loaded with
    ``launchctl bootstrap gui/<uid>``.
Windows (untested here)
    A Task Scheduler task ``\\stayfresh`` started at logon and restarted on
    failure, created from an XML definition with ``schtasks /Create /XML``.

The files are rendered by pure functions (tested, and on Linux checked with
``systemd-analyze verify``); the thin functions around them do the I/O.
The command is the running interpreter's absolute path with ``-m stayfresh``,
so the service uses the same virtual environment as the install command, and
``--db PATH`` is added when the database is not the platform default (the
service does not see the installing shell's ``STAYFRESH_DB``).

The pure rendering lives in :mod:`._service_files` (re-exported here); this
module registers, removes and inspects the service.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import StayfreshError
from ._service_files import (
    LAUNCHD_LABEL,
    RESTART_DELAY,
    STOP_TIMEOUT,
    SYSTEMD_UNIT,
    WINDOWS_TASK,
    _windows_user,
    daemon_argv,
    launchd_plist_path,
    render_launchd_plist,
    render_systemd_unit,
    render_task_xml,
    service_environment,
    systemd_quote,
    systemd_unit_path,
    task_xml_path,
)

__all__ = [
    "LAUNCHD_LABEL",
    "RESTART_DELAY",
    "STOP_TIMEOUT",
    "SYSTEMD_UNIT",
    "WINDOWS_TASK",
    "Runner",
    "ServiceError",
    "ServiceResult",
    "daemon_argv",
    "install_service",
    "launchd_plist_path",
    "render_launchd_plist",
    "render_service",
    "render_systemd_unit",
    "render_task_xml",
    "service_status",
    "systemd_quote",
    "systemd_unit_path",
    "task_xml_path",
    "uninstall_service",
]

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    log.info("running %s", " ".join(argv))
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


class ServiceError(StayfreshError):
    """The service manager refused an install, uninstall or status request."""


@dataclasses.dataclass(kw_only=True)
class ServiceResult:
    """What install/uninstall did, or (dry run, no service manager) what to do by hand."""

    manager: str  # systemd | launchd | schtasks
    path: Path
    content: str | None = None
    commands: list[list[str]] = dataclasses.field(default_factory=list)
    ran: bool = False
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        return data


# -- I/O ----------------------------------------------------------------------------


def _systemd_user_available(run: Runner) -> bool:
    """True when ``systemctl --user`` can reach a user manager (not in containers, CI...)."""
    if shutil.which("systemctl") is None:
        return False
    try:
        return run(["systemctl", "--user", "show-environment"]).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def _manager() -> str:
    if sys.platform == "darwin":
        return "launchd"
    if sys.platform == "win32":
        return "schtasks"
    return "systemd"


def _write(path: Path, data: bytes) -> None:
    """Write atomically, mode 0644: service managers read it, and it holds no secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ServiceError(f"{what} failed (exit {result.returncode}): {detail}")


def render_service(db: str | None, env: Mapping[str, str] | None = None) -> ServiceResult:
    """The file install would write for this platform, without writing it.

    ``env``: extra variables for the daemon (``--env``), beside the
    ``STAYFRESH_*`` settings and ``PYTHONPATH`` of this process
    (:func:`service_environment`; not on Windows, whose task has no environment).
    """
    argv = daemon_argv(db)
    manager = _manager()
    environment = service_environment(os.environ, env)
    if manager == "launchd":
        log_path = Path.home() / "Library" / "Logs" / "stayfresh" / "daemon.log"
        return ServiceResult(
            manager=manager,
            path=launchd_plist_path(),
            content=render_launchd_plist(argv, log_path, environment),
        )
    if manager == "schtasks":
        return ServiceResult(
            manager=manager, path=task_xml_path(), content=render_task_xml(argv, _windows_user())
        )
    return ServiceResult(
        manager=manager, path=systemd_unit_path(), content=render_systemd_unit(argv, environment)
    )


def install_service(
    db: str | None,
    *,
    dry_run: bool = False,
    run: Runner = _run,
    env: Mapping[str, str] | None = None,
) -> ServiceResult:
    """Write the service file and register it with the service manager.

    With ``dry_run`` nothing is written or run; the result says what would be.
    Without a reachable manager (systemd user session absent) the file is
    written and ``message`` lists the commands to run later.
    """
    result = render_service(db, env)
    assert result.content is not None
    if result.manager == "launchd":
        domain = _launchd_domain()
        result.commands = [
            ["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"],
            ["launchctl", "bootstrap", domain, str(result.path)],
        ]
        available = shutil.which("launchctl") is not None
    elif result.manager == "schtasks":
        result.commands = [
            ["schtasks", "/Create", "/TN", WINDOWS_TASK, "/XML", str(result.path), "/F"],
            ["schtasks", "/Run", "/TN", WINDOWS_TASK],
        ]
        available = shutil.which("schtasks") is not None
    else:
        result.commands = [
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT],
        ]
        available = not dry_run and _systemd_user_available(run)
    if dry_run:
        result.message = f"would write {result.path} and run:\n" + _format(result.commands)
        return result
    data = (
        result.content.encode("utf-16")
        if result.manager == "schtasks"
        else result.content.encode("utf-8")
    )
    _write(result.path, data)
    log.info("wrote %s", result.path)
    if not available:
        result.message = (
            f"wrote {result.path}; no {result.manager} session is reachable from here, "
            f"so run these to start it:\n" + _format(result.commands)
        )
        if result.manager == "systemd":
            result.message += (
                "\nto keep it running while you are logged out: loginctl enable-linger $USER"
            )
        return result
    for i, argv in enumerate(result.commands):
        outcome = run(argv)
        if result.manager == "launchd" and i == 0:
            continue  # bootout fails when the agent was not loaded; that is fine
        _check(outcome, " ".join(argv))
    result.ran = True
    result.message = f"installed and started {result.manager} service ({result.path})"
    if result.manager == "systemd" and not _lingers():
        result.message += (
            "\nit stops when you log out; to keep it running: loginctl enable-linger $USER"
        )
    return result


def uninstall_service(*, run: Runner = _run) -> ServiceResult:
    """Stop and unregister the service and remove its file (idempotent)."""
    manager = _manager()
    if manager == "launchd":
        path = launchd_plist_path()
        commands = [["launchctl", "bootout", f"{_launchd_domain()}/{LAUNCHD_LABEL}"]]
        available = shutil.which("launchctl") is not None
    elif manager == "schtasks":
        path = task_xml_path()
        commands = [
            ["schtasks", "/End", "/TN", WINDOWS_TASK],
            ["schtasks", "/Delete", "/TN", WINDOWS_TASK, "/F"],
        ]
        available = shutil.which("schtasks") is not None
    else:
        path = systemd_unit_path()
        commands = [
            ["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT],
            ["systemctl", "--user", "daemon-reload"],
        ]
        available = _systemd_user_available(run)
    result = ServiceResult(manager=manager, path=path, commands=commands)
    existed = path.exists()
    if available:
        for argv in commands:
            outcome = run(argv)  # "not loaded"/"not found" errors mean already gone
            if outcome.returncode != 0:
                log.info("%s: %s", " ".join(argv), (outcome.stderr or outcome.stdout).strip())
        result.ran = True
    path.unlink(missing_ok=True)
    if not existed:
        result.message = f"no service file at {path}; nothing to remove"
    elif available:
        result.message = f"stopped and removed the {manager} service ({path})"
    else:
        result.message = f"removed {path}; if the service still runs, run:\n" + _format(commands)
    return result


def _lingers() -> bool:
    """Whether systemd keeps this user's manager running after logout (``enable-linger``)."""
    import getpass

    try:
        return Path("/var/lib/systemd/linger", getpass.getuser()).exists()
    except (KeyError, OSError):  # no user name for this uid
        return False


def service_status(db: str | None, *, run: Runner = _run) -> dict[str, Any]:
    """Whether the service file exists, matches what install would write, and runs."""
    expected = render_service(db)
    path = expected.path
    installed = path.exists()
    current: str | None = None
    if installed:
        raw = path.read_bytes()
        current = raw.decode("utf-16") if expected.manager == "schtasks" else raw.decode("utf-8")
    status: dict[str, Any] = {
        "manager": expected.manager,
        "path": str(path),
        "installed": installed,
        # the environment was the user's choice at install time (--env, STAYFRESH_*):
        # "up to date" is about the command, interpreter and database
        "up_to_date": installed
        and _without_environment(current or "", expected.manager)
        == _without_environment(expected.content or "", expected.manager),
        "enabled": None,
        "active": None,
        "detail": None,
    }
    if expected.manager == "systemd" and _systemd_user_available(run):
        enabled = run(["systemctl", "--user", "is-enabled", SYSTEMD_UNIT])
        active = run(["systemctl", "--user", "is-active", SYSTEMD_UNIT])
        status["enabled"] = enabled.returncode == 0
        status["active"] = active.returncode == 0
        status["detail"] = active.stdout.strip() or None
    elif expected.manager == "launchd" and shutil.which("launchctl"):
        printed = run(["launchctl", "print", f"{_launchd_domain()}/{LAUNCHD_LABEL}"])
        status["enabled"] = printed.returncode == 0
        match = re.search(r"^\s*state = (\S+)", printed.stdout, re.MULTILINE)
        status["active"] = bool(match and match.group(1) == "running")
        status["detail"] = match.group(1) if match else None
    elif expected.manager == "schtasks" and shutil.which("schtasks"):
        queried = run(["schtasks", "/Query", "/TN", WINDOWS_TASK, "/FO", "LIST", "/V"])
        status["enabled"] = queried.returncode == 0
        match = re.search(r"^Status:\s*(.+)$", queried.stdout, re.MULTILINE)
        status["active"] = bool(match and match.group(1).strip() == "Running")
        status["detail"] = match.group(1).strip() if match else None
    return status


def _without_environment(text: str, manager: str) -> str:
    """A service file minus its environment (systemd ``Environment=`` lines, launchd's dict)."""
    if manager == "systemd":
        return "\n".join(x for x in text.splitlines() if not x.startswith("Environment="))
    if manager == "launchd":
        return re.sub(
            r"<key>EnvironmentVariables</key>\s*<dict>.*?</dict>", "", text, flags=re.DOTALL
        )
    return text


def _format(commands: list[list[str]]) -> str:
    import shlex

    return "\n".join("  " + shlex.join(c) for c in commands)
