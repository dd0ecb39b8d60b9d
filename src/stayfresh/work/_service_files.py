"""What the service files say and where they go: the pure half of :mod:`._service`.

The daemon's command line, and for each platform the file that starts it
(systemd unit, launchd plist, Task Scheduler XML) with its path. Nothing here
runs a command or writes a file, so all of it is tested directly (and the
unit checked with ``systemd-analyze verify``); :mod:`._service` does the I/O
and re-exports these names.
"""

from __future__ import annotations

import os
import plistlib
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from ..errors import ConfigError

SYSTEMD_UNIT = "stayfresh.service"
LAUNCHD_LABEL = "dev.stayfresh.daemon"
WINDOWS_TASK = "stayfresh"
#: seconds a stopping daemon may take to let running work finish
STOP_TIMEOUT = 90
RESTART_DELAY = 10


# -- the command ----------------------------------------------------------------


def daemon_argv(db: str | None, *, executable: str | None = None) -> list[str]:
    """``python -m stayfresh [--db PATH] daemon`` with absolute paths.

    A database URL carrying a password is refused: the command line ends up in
    a world-readable file and in ``ps``.
    """
    python = executable or sys.executable
    if not python or not os.path.isabs(python):
        raise ConfigError("cannot find the absolute path of the Python interpreter")
    if sys.platform == "win32" and executable is None:
        windowless = Path(python).with_name("pythonw.exe")
        python = str(windowless) if windowless.exists() else python
    argv = [python, "-m", "stayfresh"]
    if db:
        if "://" in db:
            if re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", db):
                raise ConfigError(
                    "the database URL contains a password; put it in ~/.pgpass instead"
                )
            argv += ["--db", db]
        else:
            path = Path(db).expanduser().absolute()
            if path != _platform_default_db():
                argv += ["--db", str(path)]
    argv.append("daemon")
    return argv


def _platform_default_db() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("stayfresh")) / "stayfresh.db"


# -- systemd ------------------------------------------------------------------------

_SYSTEMD_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def systemd_quote(arg: str) -> str:
    """One ExecStart word: ``%`` and ``$`` doubled, quoted when it has spaces or quotes."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_environment(
    environ: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the daemon's service carries from the installing shell, then ``extra``.

    Every ``STAYFRESH_*`` setting but ``STAYFRESH_DB`` (the service gets ``--db``),
    and ``PYTHONPATH`` (workers named by import path must import in the service
    too); ``PYTHONUNBUFFERED=1`` so log lines reach the journal at once.
    """
    carried = {
        key: value
        for key, value in sorted(environ.items())
        if (key.startswith("STAYFRESH_") and key != "STAYFRESH_DB") or key == "PYTHONPATH"
    }
    return {"PYTHONUNBUFFERED": "1", **carried, **(extra or {})}


def render_systemd_unit(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The user unit. Restart only on failure: a clean exit (SIGTERM) stays stopped."""
    exec_start = " ".join(systemd_quote(a) for a in argv)
    environment = "\n".join(
        f"Environment={systemd_quote(f'{k}={v}')}"
        for k, v in (env or {"PYTHONUNBUFFERED": "1"}).items()
    )
    return f"""\
# Written by `stayfresh service install`; `stayfresh service uninstall` removes it.
[Unit]
Description=stayfresh background refresh daemon
StartLimitIntervalSec=600
StartLimitBurst=10

[Service]
Type=simple
ExecStart={exec_start}
Restart=on-failure
RestartSec={RESTART_DELAY}
TimeoutStopSec={STOP_TIMEOUT}
{environment}

[Install]
WantedBy=default.target
"""


def systemd_unit_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / SYSTEMD_UNIT


# -- launchd (macOS, untested here) -------------------------------------------------


def render_launchd_plist(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> str:
    """The agent: start at login, restart after a crash but not after a clean stop."""
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(argv),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY,
        "ExitTimeOut": STOP_TIMEOUT,
        "ProcessType": "Background",
        "EnvironmentVariables": dict(env or {"PYTHONUNBUFFERED": "1"}),
        "StandardOutPath": str(log_path),
        "StandardErrorPath": str(log_path),
    }
    return plistlib.dumps(plist, sort_keys=False).decode("utf-8")


def launchd_plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


# -- Task Scheduler (Windows, untested here) ------------------------------------------


def render_task_xml(argv: Sequence[str], user: str) -> str:
    """A logon-triggered task restarted on failure, without a time limit."""
    arguments = subprocess.list2cmdline(list(argv[1:]))
    return f"""\
<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>stayfresh background refresh daemon</Description>
    <URI>\\{WINDOWS_TASK}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>{escape(user)}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{escape(user)}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(argv[0])}</Command>
      <Arguments>{escape(arguments)}</Arguments>
    </Exec>
  </Actions>
</Task>
"""


def task_xml_path() -> Path:
    base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    return Path(base) / "stayfresh" / "stayfresh-task.xml"


def _windows_user() -> str:
    user = os.environ.get("USERNAME") or os.environ.get("USER") or "user"
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user
