"""CLI start-up: ``stayfresh token NAME`` beside ``python3 -c pass`` and the GitHub CLI.

    .venv/bin/python benchmarks/bench_cli.py [--calls N] [--write]

``stayfresh token NAME`` is what scripts run once per request
(``curl -H "Authorization: Bearer $(stayfresh token work)"``); the anchor people
know is ``gh auth token`` (Debian's ``gh`` package): once with the token in
``GH_TOKEN`` and once read from a ``hosts.yml``. Every command runs as its own
process, interleaved call by call so that a busy moment hits all of them; wall
time from ``fork`` to exit. Other stayfresh commands are measured on the same
small database (start-up plus a small read). ``--write`` replaces the
``## CLI start-up`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average, machine_lines, median, percentile, table, write_section

from stayfresh.store import open_store
from stayfresh.tokens import TokenSet, add_account

SECTION = "CLI start-up"


def stayfresh_script() -> str:
    """The console script next to this interpreter (what users run), else ``-m``-style."""
    script = Path(sys.executable).with_name("stayfresh")
    return str(script) if script.exists() else ""


def commands(db: Path, gh_dir: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STAYFRESH_", "GH_"))}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    script = stayfresh_script()
    sf = [script] if script else [sys.executable, "-c", "from stayfresh.cli import main; main()"]
    plain = dict(base)
    found: dict[str, tuple[list[str], dict[str, str]]] = {
        "python3 -c pass": ([sys.executable, "-c", "pass"], plain),
        "stayfresh token work": ([*sf, "--db", str(db), "token", "work"], plain),
        "stayfresh token work --json": ([*sf, "--db", str(db), "token", "work", "--json"], plain),
        "stayfresh account list": ([*sf, "--db", str(db), "account", "list"], plain),
        "stayfresh work list": ([*sf, "--db", str(db), "work", "list"], plain),
        "stayfresh status": ([*sf, "--db", str(db), "status"], plain),
        "stayfresh notify list": ([*sf, "--db", str(db), "notify", "list"], plain),
        "stayfresh settings show": ([*sf, "--db", str(db), "settings", "show"], plain),
        "stayfresh --version": ([*sf, "--version"], plain),
    }
    gh = shutil.which("gh")
    if gh:
        found["GH_TOKEN=x gh auth token"] = ([gh, "auth", "token"], {**base, "GH_TOKEN": "x"})
        found["gh auth token (hosts.yml)"] = (
            [gh, "auth", "token"],
            {**base, "GH_CONFIG_DIR": str(gh_dir)},
        )
    return found


def prepare(tmp: Path) -> tuple[Path, Path]:
    db = tmp / "stayfresh.db"
    store = open_store(db)
    now = dt.datetime.now(dt.UTC)
    add_account(
        store,
        "work",
        "oauth2",
        {"token_url": "https://idp.example/token", "client_id": "bench"},
        TokenSet(
            access_token="bench-access",
            refresh_token="bench-refresh",
            expires_at=now + dt.timedelta(hours=12),
            obtained_at=now,
        ),
    )
    store.close()
    gh_dir = tmp / "gh"
    gh_dir.mkdir()
    (gh_dir / "hosts.yml").write_text(
        "github.com:\n    oauth_token: gho_bench\n    user: bench\n    git_protocol: https\n"
    )
    return db, gh_dir


def measure(
    cmds: dict[str, tuple[list[str], dict[str, str]]], calls: int
) -> dict[str, list[float]]:
    for argv, env in cmds.values():  # warm-up: bytecode caches, page cache
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(calls):
        for name, (argv, env) in cmds.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def gh_version() -> str:
    gh = shutil.which("gh")
    if not gh:
        return "not installed (apt-get install gh)"
    out = subprocess.run([gh, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def report(times: dict[str, list[float]], calls: int, took: float, load0: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    baseline = median(times["python3 -c pass"])
    rows = [
        [name, f"{median(t):.1f}", f"{percentile(t, 90):.1f}", f"{median(t) / baseline:.1f}x"]
        for name, t in times.items()
    ]
    lines = [
        f"## {SECTION}",
        "",
        f"`.venv/bin/python benchmarks/bench_cli.py --write` — {calls} calls each, "
        f"interleaved, {took:.0f} s, {when}.",
        "",
        *machine_lines(["stayfresh", "click"], [("GitHub CLI", gh_version())]),
        f"- 1-min load average at start / end: {load0} / {load_average()}",
        "",
        "Wall time of each command as a new process (bytecode cached, as installed). The",
        "valid path of `stayfresh token` (token good for more than the 30 min threshold,",
        "notification window fresh) reads the database with `sqlite3` alone; `--json` and",
        "every other case run the full command.",
        "",
        table(["command", "median ms", "p90 ms", "x python3 -c pass"], rows),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="calls of each command (30)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    load0 = load_average()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        db, gh_dir = prepare(Path(tmp))
        times = measure(commands(db, gh_dir), args.calls)
    body = report(times, args.calls, time.time() - started, load0)
    print(body)
    if args.write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
