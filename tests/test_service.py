"""OS service files: rendered, validated by their own tools where they exist, installed.

The systemd unit is checked by ``systemd-analyze verify`` (required in CI).
The launchd plist and the Task Scheduler XML are parsed back; macOS and
Windows themselves are not available here. Install/uninstall run against a
temporary HOME, with no ``systemctl`` at all and with a stand-in ``systemctl``
script that records how it was called.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import stayfresh.work._service as service_module
from conftest import invoke_cli
from stayfresh.cli import cli
from stayfresh.errors import ConfigError
from stayfresh.work._service import (
    LAUNCHD_LABEL,
    daemon_argv,
    install_service,
    render_launchd_plist,
    render_service,
    render_systemd_unit,
    render_task_xml,
    service_status,
    systemd_quote,
    uninstall_service,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd is Linux")
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and XDG dirs; PATH without systemctl."""
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("STAYFRESH_DB", raising=False)
    return home


# -- the command line of the daemon ------------------------------------------------


def test_daemon_argv_uses_this_interpreter_and_db_only_when_not_default(home: Path) -> None:
    assert daemon_argv(None) == [sys.executable, "-m", "stayfresh", "daemon"]
    default = home / "data" / "stayfresh" / "stayfresh.db"
    assert daemon_argv(str(default)) == [sys.executable, "-m", "stayfresh", "daemon"]
    other = daemon_argv("rel/x.db")
    assert other[3:] == ["--db", str(Path.cwd() / "rel" / "x.db"), "daemon"]
    url = "postgresql://stayfresh@db.example/stayfresh"
    assert daemon_argv(url)[3:5] == ["--db", url]
    with pytest.raises(ConfigError, match="password"):
        daemon_argv("postgresql://stayfresh:hunter2@db.example/stayfresh")


def test_python_dash_m_stayfresh_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stayfresh", "--help"], capture_output=True, text=True, check=True
    )
    assert "service" in out.stdout and "constraints" in out.stdout


# -- systemd ------------------------------------------------------------------------


def test_systemd_quoting() -> None:
    assert systemd_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert systemd_quote("/a b/c") == '"/a b/c"'
    assert systemd_quote("100%") == "100%%"
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('say "hi"\\') == '"say \\"hi\\"\\\\"'


def test_systemd_unit_content() -> None:
    unit = render_systemd_unit(["/opt/py/bin/python", "-m", "stayfresh", "daemon"])
    lines = unit.splitlines()
    assert "Type=simple" in lines
    assert "ExecStart=/opt/py/bin/python -m stayfresh daemon" in lines
    assert "Restart=on-failure" in lines
    assert "WantedBy=default.target" in lines
    assert any(line.startswith("RestartSec=") for line in lines)


@linux_only
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing in CI: apt-get install systemd")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    odd_db = tmp_path / "my data" / "50% $HOME.db"
    unit = render_systemd_unit(daemon_argv(str(odd_db)))
    path = tmp_path / "stayfresh.service"
    path.write_text(unit)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # warnings too, e.g. a bad Restart=
    # and it would catch a broken unit: a relative ExecStart is fatal
    path.write_text(unit.replace(f"ExecStart={sys.executable}", "ExecStart=python", 1))
    broken = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert broken.returncode != 0


@linux_only
def test_install_without_systemctl_writes_the_unit_and_says_what_to_run(home: Path) -> None:
    result = install_service(None)
    path = home / "cfg" / "systemd" / "user" / "stayfresh.service"
    assert result.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert f"ExecStart={sys.executable} -m stayfresh daemon" in path.read_text()
    assert not result.ran
    assert "systemctl --user daemon-reload" in result.message
    assert "systemctl --user enable --now stayfresh.service" in result.message
    assert "loginctl enable-linger" in result.message
    status = service_status(None)
    assert (status["installed"], status["up_to_date"], status["active"]) == (True, True, None)
    assert not service_status("/elsewhere/other.db")["up_to_date"]
    install_service(None, env={"FOO": "1"})  # an environment chosen at install time ...
    assert "Environment=FOO=1" in path.read_text()
    assert service_status(None)["up_to_date"]  # ... is not a difference to reinstall for

    removed = uninstall_service()
    assert not path.exists()
    assert "removed" in removed.message
    assert "nothing to remove" in uninstall_service().message


@linux_only
def test_dry_run_writes_nothing(home: Path) -> None:
    result = install_service(None, dry_run=True)
    assert not result.path.exists()
    assert result.message.startswith("would write")


def _fake_systemctl(bin_dir: Path, log: Path, *, fail: str | None = None) -> None:
    """A systemctl that appends its arguments to ``log`` (and can fail one verb)."""
    script = bin_dir / "systemctl"
    fail_line = (
        f'[ "$2" = "{fail}" ] && {{ echo "Failed to {fail}" >&2; exit 1; }}\n' if fail else ""
    )
    script.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\n{fail_line}'
        '[ "$2" = "is-active" ] && { echo active; exit 0; }\nexit 0\n'
    )
    script.chmod(0o755)


@linux_only
def test_install_with_a_user_manager_enables_and_starts(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "systemctl.log"
    _fake_systemctl(tmp_path / "bin", log)
    result = install_service(None)
    assert result.ran
    calls = log.read_text().splitlines()
    assert calls == [
        "--user show-environment",
        "--user daemon-reload",
        "--user enable --now stayfresh.service",
    ]
    status = service_status(None)
    assert (status["enabled"], status["active"], status["detail"]) == (True, True, "active")
    log.write_text("")
    uninstall_service()
    assert "--user disable --now stayfresh.service" in log.read_text().splitlines()
    assert not result.path.exists()


@linux_only
def test_install_reports_a_failing_systemctl(home: Path, tmp_path: Path) -> None:
    _fake_systemctl(tmp_path / "bin", tmp_path / "log", fail="enable")
    runner = CliRunner()
    out = runner.invoke(cli, ["service", "install"])
    assert out.exit_code == 1
    assert "systemctl --user enable --now stayfresh.service failed" in out.output
    assert "Failed to enable" in out.output


# -- launchd and Task Scheduler (rendered and parsed only) -----------------------------


def test_launchd_plist_parses_back() -> None:
    argv = ["/Users/me/venv/bin/python", "-m", "stayfresh", "--db", "/Users/me/a&b.db", "daemon"]
    log_path = Path("/Users/me/Library/Logs/stayfresh/daemon.log")
    plist = plistlib.loads(render_launchd_plist(argv, log_path).encode())
    assert plist["Label"] == LAUNCHD_LABEL
    assert plist["ProgramArguments"] == argv
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"] == str(log_path)


def test_task_scheduler_xml_parses_back() -> None:
    argv = [
        r"C:\Program Files\Py\pythonw.exe",
        "-m",
        "stayfresh",
        "--db",
        r"C:\a b\<x>.db",
        "daemon",
    ]
    xml = render_task_xml(argv, r"CORP\alice")
    root = ET.fromstring(xml.encode("utf-16"))  # as written to disk for schtasks
    assert root.tag == f"{{{TASK_NS['t']}}}Task"
    assert root.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=TASK_NS) == r"CORP\alice"
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=TASK_NS) == argv[0]
    args = root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK_NS)
    assert args == r'-m stayfresh --db "C:\a b\<x>.db" daemon'
    restart = root.find("t:Settings/t:RestartOnFailure", namespaces=TASK_NS)
    assert restart is not None
    assert restart.findtext("t:Interval", namespaces=TASK_NS) == "PT1M"
    assert root.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=TASK_NS) == "PT0S"
    assert root.findtext("t:Settings/t:DisallowStartIfOnBatteries", namespaces=TASK_NS) == "false"


# -- the CLI ------------------------------------------------------------------------------


@linux_only
def test_cli_service_print_dry_run_and_status(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "x.db"
    printed = runner.invoke(cli, ["--db", str(db), "service", "install", "--print"])
    assert printed.exit_code == 0, printed.output
    assert f"--db {db} daemon" in printed.output
    dry = runner.invoke(cli, ["service", "install", "--dry-run"])
    assert dry.exit_code == 0 and "would write" in dry.output
    assert not (home / "cfg" / "systemd" / "user" / "stayfresh.service").exists()
    status = runner.invoke(cli, ["service", "status", "--json"])
    assert status.exit_code == 0
    assert '"installed": false' in status.output
    assert not db.exists()  # service commands never open the database


def test_cli_constraints_set_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "c.db")
    bad = runner.invoke(cli, ["--db", db, "constraints", "set", "network", "metred"])
    assert bad.exit_code == 2
    assert "network must be one of auto, none, metered, unmetered" in bad.output
    unknown = runner.invoke(cli, ["--db", db, "constraints", "set", "wifi", "on"])
    assert unknown.exit_code == 2 and "unknown constraint setting" in unknown.output
    ok = runner.invoke(cli, ["--db", db, "constraints", "set", "network", "Metered"])
    assert ok.exit_code == 0 and "constraints.network = metered" in ok.output
    shown = runner.invoke(cli, ["--db", db, "constraints", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"network": "metered"' in shown.output  # in overrides
    assert '"source": "override"' in shown.output
    text = runner.invoke(cli, ["--db", db, "constraints", "show"])
    assert "overrides: network=metered" in text.output
    cleared = runner.invoke(cli, ["--db", db, "constraints", "set", "network", "auto"])
    assert "cleared" in cleared.output
    again = runner.invoke(cli, ["--db", db, "constraints", "show"])
    assert "overrides: none" in again.output


@linux_only
def test_the_unit_carries_settings_pythonpath_and_env(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAYFRESH_MAX_CONCURRENT", "4")
    monkeypatch.setenv("STAYFRESH_DB", "/elsewhere.db")  # the unit gets --db instead
    monkeypatch.setenv("PYTHONPATH", "/opt/my workers")
    unit = render_service(None, {"FOO": "a b", "BAR": "50%"}).content
    assert unit is not None
    lines = unit.splitlines()
    assert "Environment=STAYFRESH_MAX_CONCURRENT=4" in lines
    assert 'Environment="PYTHONPATH=/opt/my workers"' in lines
    assert 'Environment="FOO=a b"' in lines and "Environment=BAR=50%%" in lines
    assert "Environment=PYTHONUNBUFFERED=1" in lines
    assert not any("STAYFRESH_DB" in line for line in lines)
    analyze = shutil.which("systemd-analyze", path=os.defpath + ":/usr/bin:/bin")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing in CI: apt-get install systemd")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    path = tmp_path / "stayfresh.service"
    path.write_text(unit)
    verified = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr


@linux_only
def test_install_says_when_the_service_stops_at_logout(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_systemctl(tmp_path / "bin", tmp_path / "systemctl.log")
    monkeypatch.setattr(service_module, "_lingers", lambda: False)
    assert "loginctl enable-linger" in install_service(None).message
    monkeypatch.setattr(service_module, "_lingers", lambda: True)
    assert "enable-linger" not in install_service(None).message


@linux_only
def test_cli_service_install_takes_env(home: Path) -> None:
    done = invoke_cli("service", "install", "--print", "--env", "FOO=1", db=home / "s.db")
    assert done.returncode == 0, done.stderr
    assert "Environment=FOO=1" in done.stdout.splitlines()
    bad = invoke_cli("service", "install", "--print", "--env", "no-equals", db=home / "s.db")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
