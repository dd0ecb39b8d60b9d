"""Store behaviour the notification part relies on, beyond what the layer tests show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stayfresh.store import SQLiteStore


def _other_process(db: Path, code: str) -> str:
    script = f"from stayfresh.store import SQLiteStore\ns = SQLiteStore({str(db)!r})\n{code}\ns.close()\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def test_a_second_store_on_the_same_file_keeps_the_first_ones_commits(db_path: Path) -> None:
    """Workers open their own store in the daemon's process; nothing may be lost by it.

    Opening and closing a descriptor of the database file would drop this
    process's POSIX locks; another process then believes it is alone,
    checkpoints and deletes the WAL the first store still writes to.
    """
    first = SQLiteStore(db_path)
    first.set_setting("k", "1")
    second = SQLiteStore(db_path)  # what a worker does in the daemon
    assert _other_process(db_path, "print(s.get_setting('k'))") == "1"
    first.set_setting("k", "2")
    assert _other_process(db_path, "print(s.get_setting('k'))") == "2"
    second.close()
    first.close()
    assert _other_process(db_path, "print(s.get_setting('k'))") == "2"
