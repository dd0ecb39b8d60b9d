"""A network partition: the connection to PostgreSQL goes silent — no reset, no answer.

A client in its own network namespace reaches the server through a veth pair
and a forwarder. Taking the root side of the link down drops every packet
without a word, as a partition does. The client's call must end with a typed
error (``StoreUnavailable``, exit 4) within the bound its TCP settings give —
here set short in the URL (``tcp_user_timeout``, keepalives), which also shows
that the URL's settings win over stayfresh's defaults (60 s) — instead of
waiting on a dead connection for the kernel's retransmissions (~15 minutes).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

NET = "10.231.{}.{}"

CLIENT = r"""
import sys, time
from stayfresh.errors import StoreError
from stayfresh.store import PostgresStore
store = PostgresStore(sys.argv[1], retry_for=4)
store.set_setting("probe", "1")
print("ready", flush=True)
sys.stdin.readline()  # the link is cut now
started = time.monotonic()
try:
    store.set_setting("probe", "2")
    print("answered", round(time.monotonic() - started, 1), flush=True)
except StoreError as exc:
    print("failed", type(exc).__name__, getattr(exc, "exit_code", None),
          round(time.monotonic() - started, 1), flush=True)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _netns_available() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    name = f"sfprobe{os.getpid() % 100000}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str, str]]:
    """(namespace, root-side link, root address, namespace address), removed afterwards."""
    reason = _netns_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must allow network namespaces: {reason}")
        pytest.skip(reason)
    tag = os.getpid() % 100000
    ns, outer, inner = f"sfns{tag}", f"sfo{tag}", f"sfi{tag}"
    subnet = tag % 250 + 1
    here, there = NET.format(subnet, 1), NET.format(subnet, 2)
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{here}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{there}/30", "dev", inner)
        _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, outer, here, there
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def forward(listen: socket.socket, target: tuple[str, int], stop: threading.Event) -> None:
    """Accept on ``listen`` and relay each connection to ``target`` both ways."""

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while not stop.is_set():
                ready, _, _ = select.select([a], [], [], 0.2)
                if ready:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
        except OSError:
            pass

    opened: list[socket.socket] = []
    pumps: list[threading.Thread] = []
    listen.settimeout(0.2)
    try:
        while not stop.is_set():
            try:
                client, _ = listen.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(target)
            opened += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                pumps.append(threading.Thread(target=pump, args=(a, b), daemon=True))
                pumps[-1].start()
    finally:
        for t in pumps:
            t.join(2)
        for sock in opened:
            sock.close()


def test_a_silent_partition_ends_in_a_typed_error_within_the_tcp_bound(
    netns: tuple[str, str, str, str], pg_url: str
) -> None:
    ns, outer, here, _there = netns
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    pg_port = int(host_port.rsplit(":", 1)[1])
    listen = socket.create_server((here, 0))
    stop = threading.Event()
    relay = threading.Thread(target=forward, args=(listen, ("127.0.0.1", pg_port), stop))
    relay.start()
    try:
        database = pg_url.rsplit("/", 1)[1]
        url = (
            f"postgresql://postgres@{here}:{listen.getsockname()[1]}/{database}"
            "?connect_timeout=2&tcp_user_timeout=2000&keepalives_idle=1"
            "&keepalives_interval=1&keepalives_count=2"
        )
        client = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert client.stdout is not None and client.stdin is not None
        line = client.stdout.readline().strip()
        assert line == "ready", client.stderr.read() if client.stderr else line
        _ip("link", "set", outer, "down")  # every packet dropped, nothing sent back
        cut = time.monotonic()
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=120)
        took = time.monotonic() - cut
    finally:
        stop.set()
        relay.join(5)
        listen.close()
    words = out.split()
    assert words[:3] == ["failed", "StoreUnavailable", "4"], (out, err[-2000:])
    assert took < 60, took  # the URL's 2 s user timeout, then 4 s of retries: not ~15 min
    assert "Traceback" not in err
