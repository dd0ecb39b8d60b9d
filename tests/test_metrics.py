"""Prometheus metrics: ``stayfresh metrics`` and ``daemon --metrics`` (``/metrics``, ``/healthz``).

Parsed with prometheus_client's own parser, so a malformed exposition fails here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import add_oauth2, invoke_cli
from fake_token_server import FakeTokenServer
from stayfresh.jobs import on_account_ready
from stayfresh.store import SQLiteStore
from stayfresh.testing import wait_for
from stayfresh.tokens import Keeper
from stayfresh.work import Runner


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _populated(db: Path, server: FakeTokenServer) -> None:
    store = SQLiteStore(db)
    add_oauth2(store, "work", server.token_url, expires_in=60)  # due: the keeper refreshes it
    Keeper(store).ensure_valid_token("work")
    on_account_ready(store, "work")
    assert Runner(store, listen=False).run_pending() == 1  # the safety net's first period
    store.close()


def test_metrics_prints_accounts_works_layers_and_daemons(
    db_path: Path, token_server: FakeTokenServer
) -> None:
    _populated(db_path, token_server)
    assert invoke_cli("notify", "add", "Tick", "--rrule", "FREQ=HOURLY", db=db_path).returncode == 0
    done = invoke_cli("metrics", db=db_path)
    assert done.returncode == 0, done.stderr
    families = {f.name: f.type for f in text_string_to_metric_families(done.stdout)}
    assert families["stayfresh_refresh_successes"] == "counter"
    assert families["stayfresh_refresh_latency_seconds"] == "histogram"
    assert families["stayfresh_account_token_expiry_seconds"] == "gauge"
    got = _samples(done.stdout)
    token = (("key", "work"), ("kind", "token"), ("layer", "use"))
    assert got[("stayfresh_refresh_successes_total", token)] == 1
    assert got[("stayfresh_refresh_latency_seconds_count", token)] == 1
    assert got[("stayfresh_refresh_latency_seconds_bucket", (*token, ("le", "+Inf")))] == 1
    assert got[("stayfresh_refresh_failures_total", (*token, ("reason", "transient")))] == 0
    assert got[("stayfresh_account_needs_login", (("account", "work"),))] == 0
    assert 3000 < got[("stayfresh_account_token_expiry_seconds", (("account", "work"),))] <= 3600
    state = ("stayfresh_work_state", (("state", "ENQUEUED"), ("work", "token-refresh:work")))
    assert got[state] == 1
    runs = ("stayfresh_work_runs_total", (("outcome", "success"), ("work", "token-refresh:work")))
    assert got[runs] == 1
    window = (("key", "window"), ("kind", "notify"), ("layer", "use"))
    assert got[("stayfresh_refresh_executions_total", window)] >= 1
    assert ("stayfresh_refresh_seconds_since_success", window) in got
    assert got[("stayfresh_daemons", ())] == 0
    assert "old-access" not in done.stdout and "old-refresh" not in done.stdout


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_daemon_serves_metrics_and_its_health(
    db_path: Path, token_server: FakeTokenServer
) -> None:
    _populated(db_path, token_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAYFRESH_")}
    daemon = subprocess.Popen(
        [sys.executable, "-c", "from stayfresh.cli import main; main()", "--db", str(db_path),
         "daemon", "--metrics", "127.0.0.1:0"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert daemon.stderr is not None
        url = ""
        while not url:
            line = daemon.stderr.readline()
            assert line, "the daemon ended before serving metrics"
            found = re.search(r"metrics at (http://\S+)/metrics", line)
            url = found.group(1) if found else ""
        wait_for(lambda: _samples(_get(url + "/metrics")[1])[("stayfresh_daemons", ())] >= 1, 30)
        assert _get(url + "/healthz") == (200, "ok\n")
        store = SQLiteStore(db_path)
        store.set_status("work", "needs_login", "refresh token rejected")
        store.close()
        code, body = _get(url + "/healthz")
        assert code == 503 and body.startswith("needs_login: account work needs a new sign-in")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        if daemon.stderr is not None:
            daemon.stderr.close()


def test_a_bad_metrics_address_is_a_usage_error(db_path: Path) -> None:
    done = invoke_cli("daemon", "--metrics", "nowhere", db=db_path)
    assert done.returncode == 2 and "HOST:PORT" in done.stderr
