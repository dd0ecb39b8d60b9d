"""``make demo``: just-in-time refresh on the embedded SQLite store, end to end.

Starts a local OAuth2 token endpoint (:class:`stayfresh.testing.LocalTokenServer`,
refresh tokens rotating), adds an account with the real CLI, then shows the
keeper's decisions: a valid token served without a request, a refresh when the
token enters its 30-minute threshold, and 100 concurrent callers on a stale
token causing exactly one refresh; then the daemon running the account's
periodic token-refresh work (the background safety net).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from .store import SQLiteStore
from .testing import FakeClock, LocalTokenServer
from .tokens import Keeper

console = Console(highlight=False)


def _cli(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    shown = " ".join(["stayfresh", "--db", str(db), *args])
    console.print(f"[bold cyan]$ {shown}[/]")
    result = subprocess.run(
        [sys.executable, "-m", "stayfresh", "--db", str(db), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        console.print(result.stderr)
        raise SystemExit(result.returncode)
    console.print(result.stdout.rstrip())
    return result.stdout


def _run_daemon_until_refresh_work_ran(db: Path, timeout: float = 30.0) -> None:
    """Start ``stayfresh daemon``, wait for the token-refresh work's first run, stop it."""
    console.print(f"[bold cyan]$ stayfresh --db {db} daemon[/]   (stopped with SIGTERM below)")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "stayfresh", "--db", str(db), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = subprocess.run(
                [sys.executable, "-m", "stayfresh", "--db", str(db), "work", "history",
                 "token-refresh:demo", "--json"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if history.returncode == 0 and json.loads(history.stdout or "[]"):
                break
            time.sleep(0.3)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def main() -> None:
    folder = Path(
        os.environ.get("STAYFRESH_DEMO_DIR") or tempfile.mkdtemp(prefix="stayfresh-demo-")
    )
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo.db"
    for leftover in folder.glob("demo.db*"):
        if leftover.is_file():
            leftover.unlink()
    with LocalTokenServer(access_ttl=3600, rotate=True) as server:
        console.rule("1. a local OAuth2 token endpoint and an account")
        console.print(f"token endpoint: {server.token_url} (refresh tokens rotate)")
        env = {"DEMO_SECRET": server.client_secret, "DEMO_REFRESH": server.issue_refresh_token()}
        _cli(
            db, "account", "add", "demo", "--provider", "oauth2",
            "--token-url", server.token_url, "--client-id", server.client_id,
            "--client-secret-env", "DEMO_SECRET", "--refresh-token-env", "DEMO_REFRESH",
            env=env,
        )  # fmt: skip
        console.rule("2. first use: no access token yet, so it is fetched just in time")
        _cli(db, "token", "demo", "--json")
        _cli(db, "token", "demo", "--json")
        console.print(f"provider requests so far: {server.refreshes}")

        console.rule("3. time passes (a fake clock): the token enters its 30-minute threshold")
        clock = FakeClock()
        store = SQLiteStore(db)
        with Keeper(store, clock=clock) as keeper:
            result = keeper.ensure_valid_token("demo")
            console.print(f"now:        was_refreshed={result.was_refreshed} (valid, no request)")
            clock.advance(25 * 60)
            result = keeper.ensure_valid_token("demo")
            console.print(f"+25 min:    was_refreshed={result.was_refreshed} (35 min left)")
            clock.advance(10 * 60)
            result = keeper.ensure_valid_token("demo")
            console.print(
                f"+35 min:    was_refreshed={result.was_refreshed} (25 min left → refreshed)"
            )
            console.print(f"provider requests so far: {server.refreshes}")

            console.rule("4. 50 threads and 50 asyncio tasks find the token stale at once")
            clock.advance(60 * 60)
            before = server.refreshes
            tokens: list[str | None] = []
            threads = [
                threading.Thread(
                    target=lambda: tokens.append(keeper.ensure_valid_token("demo").access_token)
                )
                for _ in range(50)
            ]
            for t in threads:
                t.start()

            async def tasks() -> None:
                done = await asyncio.gather(
                    *(keeper.aensure_valid_token("demo") for _ in range(50))
                )
                tokens.extend(r.access_token for r in done)

            asyncio.run(tasks())
            for t in threads:
                t.join()
            console.print(
                f"callers: {len(tokens)}, distinct tokens they got: {len(set(tokens))}, "
                f"provider requests: {server.refreshes - before}, rejected: {server.rejected}"
            )
        store.close()
        console.rule("5. the account, its expiry and its refresh metrics")
        console.print("(the fake clock ran 95 minutes ahead, so the stored expiry counts from it)")
        _cli(db, "account", "show", "demo")

        console.rule("6. the background layer: the daemon runs the account's safety-net work")
        _cli(db, "work", "list")
        _run_daemon_until_refresh_work_ran(db)
        _cli(db, "work", "history", "token-refresh:demo")
    console.print(f"\n[green]done[/] — the demo database is {db}")


if __name__ == "__main__":
    main()
