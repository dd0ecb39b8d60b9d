"""``stayfresh completion SHELL`` prints click's completion script, and completing works in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli


def test_each_shell_gets_its_script(tmp_path: Path) -> None:
    marks = {
        "bash": "_STAYFRESH_COMPLETE=bash_complete",
        "zsh": "#compdef stayfresh",
        "fish": "complete --no-files --command stayfresh",
    }
    for shell, mark in marks.items():
        done = run_cli("completion", shell, db=tmp_path / "s.db")
        assert done.returncode == 0, done.stderr
        assert mark in done.stdout
    assert not (tmp_path / "s.db").exists()  # printing a script opens no database


def test_an_unknown_shell_is_a_one_line_usage_error(tmp_path: Path) -> None:
    done = run_cli("completion", "tcsh", db=tmp_path / "s.db")
    assert done.returncode == 2
    assert done.stderr.startswith("error: Invalid value") and len(done.stderr.splitlines()) == 1


def _complete_in_bash(words: str, tmp_path: Path) -> list[str]:
    """What bash offers after ``words`` (the last word is completed) with the script loaded."""
    script = run_cli("completion", "bash", db=tmp_path / "s.db").stdout
    (tmp_path / "completion.bash").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    count = len(words.split()) - 1
    done = subprocess.run(
        ["bash", "-c", f'source {tmp_path / "completion.bash"}; COMP_WORDS=({words}); '
         f'COMP_CWORD={count}; _stayfresh_completion stayfresh; printf "%s\\n" "${{COMPREPLY[@]}}"'],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_subcommands_and_options(tmp_path: Path) -> None:
    if shutil.which("bash") is None or not (Path(sys.executable).parent / "stayfresh").exists():
        missing = "bash and the installed stayfresh script (pip install -e .)"
        if os.environ.get("CI"):  # CI has both: never skipped there
            pytest.fail(f"CI must provide {missing}", pytrace=False)
        pytest.skip(f"needs {missing}")
    assert _complete_in_bash("stayfresh acc", tmp_path) == ["account"]
    assert "add" in _complete_in_bash("stayfresh notify a", tmp_path)
    assert "--json" in _complete_in_bash("stayfresh token work --j", tmp_path)
