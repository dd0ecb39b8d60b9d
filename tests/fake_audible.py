"""A fake Audible: library API, license requests, content files and Amazon's token endpoint.

Real HTTP on 127.0.0.1 (``ThreadingHTTPServer``), written for the library
and download tests and the sync benchmark. It serves a deterministic library
of ``items`` books (``B000000000`` …), honours ``num_results`` / ``page``,
sends ``total-count``, and accepts only access tokens it issued that have not
expired (``ttl`` seconds on its ``clock``, which tests share with the keeper).
``/auth/token`` speaks Amazon's form (``source_token`` …), so an ``amazon``
account with ``--token-url`` pointing here refreshes against it.

Faults on demand: ``fail_page(n, "500" | "drop" | "401" …)`` queues faults for
page n; ``hold_page`` blocks a page until released (to kill a client while it
waits); ``drop_downloads`` cuts content responses mid-file. Content supports
``Range``. Run ``python tests/fake_audible.py --items N`` to serve from another
process (prints the base URL and a refresh token).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class FakeAudible:
    def __init__(
        self,
        *,
        items: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        file_size: int = 256 * 1024,
        refresh_token: str = "Atnr|fake-refresh",
    ) -> None:
        self.items = items
        self.ttl = ttl
        self.clock = clock
        self.file_size = file_size
        self.refresh_tokens = {refresh_token}
        self.removed: set[int] = set()
        self.versions: dict[int, int] = {}
        self.access: dict[str, float] = {}
        self.faults: dict[int, list[str]] = {}
        self.hold_page: int | None = None
        self.held = threading.Event()  # set when the held page was requested
        self.release = threading.Event()
        self.drop_downloads = 0  # content responses still to cut mid-file
        self.license_size: int | None = None  # a wrong size to announce in licenses
        #: what was asked: ("token",), ("library", page, status), ("license", asin), ("content", asin, range)
        self.log: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- life ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + "/auth/token"

    def start(self) -> FakeAudible:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    # -- the library -------------------------------------------------------------------

    @staticmethod
    def asin(index: int) -> str:
        return f"B{index:09d}"

    def item(self, index: int) -> dict[str, Any]:
        version = self.versions.get(index, 0)
        day = dt.date(2015, 1, 1) + dt.timedelta(days=index % 3000)
        return {
            "asin": self.asin(index),
            "title": f"Book {index}" + (f" (edition {version})" if version else ""),
            "subtitle": f"A story in {index % 7 + 1} parts",
            "authors": [{"asin": f"A{index % 997:09d}", "name": f"Author {index % 997}"}],
            "narrators": [{"name": f"Narrator {index % 211}"}],
            "publisher_name": f"Publisher {index % 53}",
            "runtime_length_min": 60 + index % 900,
            "language": "english",
            "format_type": "unabridged",
            "content_type": "Product",
            "purchase_date": f"{day.isoformat()}T12:00:00.000Z",
            "release_date": day.isoformat(),
            "merchandising_summary": f"<p>Book {index}: a deterministic summary.</p>",
        }

    def remove(self, *indexes: int) -> None:
        with self._lock:
            self.removed.update(indexes)

    def change(self, *indexes: int) -> None:
        with self._lock:
            for i in indexes:
                self.versions[i] = self.versions.get(i, 0) + 1

    def present(self) -> list[int]:
        return [i for i in range(self.items) if i not in self.removed]

    def fail_page(self, page: int, *faults: str) -> None:
        with self._lock:
            self.faults.setdefault(page, []).extend(faults)

    def issue_token(self) -> str:
        token = f"Atna|{next(self._counter)}-{secrets.token_hex(6)}"
        with self._lock:
            self.access[token] = self.clock() + self.ttl
        return token

    def pages_served(self) -> list[int]:
        return [e[1] for e in self.log if e[0] == "library" and e[2] == 200]

    def count(self, kind: str) -> int:
        return sum(1 for e in self.log if e[0] == kind)

    def content(self, asin: str, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` (exclusive) of the item's file: a repeated digest."""
        pattern = hashlib.sha256(asin.encode()).digest()
        offset = start % len(pattern)
        count = end - start
        repeated = pattern * ((offset + count) // len(pattern) + 1)
        return repeated[offset : offset + count]

    # -- HTTP ----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response_only(status)
                self.send_header("Date", email.utils.formatdate(fake.clock(), usegmt=True))
                self.send_header("Content-Type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def drop(self) -> None:
                self.close_connection = True
                self.connection.close()

            def authorized(self) -> bool:
                token = self.headers.get("x-amz-access-token") or ""
                with fake._lock:
                    expiry = fake.access.get(token)
                if expiry is None or fake.clock() >= expiry:
                    self.reply(401, {"message": "Access token is missing, expired or invalid"})
                    return False
                return True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                if path == "/auth/token":
                    self.token(dict(urllib.parse.parse_qsl(raw.decode())))
                    return
                found = re.fullmatch(r"/1\.0/content/([^/]+)/licenserequest", path)
                if found is None:
                    self.reply(404, {"message": "not found"})
                    return
                fake.log.append(("license", found[1]))
                if self.authorized():
                    self.license(found[1])

            def token(self, form: dict[str, str]) -> None:
                fake.log.append(("token",))
                if form.get("requested_token_type") != "access_token" or not form.get("app_name"):
                    self.reply(400, {"error": "invalid_request"})
                elif form.get("source_token") not in fake.refresh_tokens:
                    self.reply(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "The request has an invalid parameter : source_token",
                        },
                    )
                else:
                    token = fake.issue_token()
                    self.reply(
                        200, {"access_token": token, "token_type": "bearer", "expires_in": fake.ttl}
                    )

            def license(self, asin: str) -> None:
                index = int(asin[1:]) if asin[1:].isdigit() else -1
                if not 0 <= index < fake.items or index in fake.removed:
                    self.reply(404, {"message": f"no such product {asin}"})
                    return
                self.reply(
                    200,
                    {
                        "content_license": {
                            "asin": asin,
                            "status_code": "Granted",
                            "license_response": "fake-voucher-" + asin,
                            "content_metadata": {
                                "content_url": {
                                    "offline_url": f"{fake.url}/content/{asin}.aaxc?sig=fake"
                                },
                                "content_reference": {
                                    "content_format": "AAX_44_128",
                                    "content_size_in_bytes": fake.license_size or fake.file_size,
                                },
                            },
                        }
                    },
                )

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                if parts.path == "/1.0/library":
                    self.library(query)
                elif parts.path.startswith("/content/"):
                    self.file(parts.path[len("/content/") :].removesuffix(".aaxc"))
                else:
                    self.reply(404, {"message": "not found"})

            def library(self, query: dict[str, str]) -> None:
                page = int(query.get("page", "1"))
                size = int(query.get("num_results", "50"))
                with fake._lock:
                    fault = fake.faults.get(page, [None]).pop(0) if fake.faults.get(page) else None
                if page == fake.hold_page:  # the client is to be killed while it waits
                    fake.held.set()
                    fake.release.wait(60)
                    fake.log.append(("library", page, "held"))
                    self.drop()
                    return
                if fault == "drop":
                    fake.log.append(("library", page, "drop"))
                    self.drop()
                    return
                if fault is not None:
                    fake.log.append(("library", page, int(fault)))
                    self.reply(int(fault), {"message": f"injected {fault}"})
                    return
                if not 1 <= size <= 1000:
                    fake.log.append(("library", page, 400))
                    self.reply(400, {"message": "num_results must be 1..1000"})
                    return
                if not self.authorized():
                    fake.log.append(("library", page, 401))
                    return
                with fake._lock:
                    removed = bool(fake.removed)
                present: Any = fake.present() if removed else range(fake.items)
                chosen = present[(page - 1) * size : page * size]
                body = {
                    "items": [fake.item(i) for i in chosen],
                    "response_groups": query.get("response_groups", "").split(","),
                }
                fake.log.append(("library", page, 200))
                self.reply(200, body, {"total-count": str(len(present))})

            def file(self, asin: str) -> None:
                size = fake.file_size
                start, end = 0, size
                wanted = self.headers.get("range")
                fake.log.append(("content", asin, wanted))
                if wanted:
                    found = _RANGE.match(wanted)
                    if found is None or int(found[1]) >= size:
                        self.reply(416, b"", {"Content-Range": f"bytes */{size}"})
                        return
                    start = int(found[1])
                    end = min(size, int(found[2]) + 1) if found[2] else size
                data = fake.content(asin, start, end)
                self.send_response_only(206 if wanted else 200)
                self.send_header("Content-Type", "audio/vnd.audible.aax")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data)))
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.end_headers()
                with fake._lock:
                    cut = fake.drop_downloads > 0
                    fake.drop_downloads -= int(cut)
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.drop()
                    return
                self.wfile.write(data)

        return Handler


def main() -> None:
    """Serve from a separate process (the benchmark): print URL and refresh token, wait."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ttl", type=float, default=3600.0)
    args = parser.parse_args()
    fake = FakeAudible(items=args.items, ttl=args.ttl).start()
    print(
        json.dumps({"url": fake.url, "refresh_token": next(iter(fake.refresh_tokens))}), flush=True
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
