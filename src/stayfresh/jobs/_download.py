"""Downloads (the seed's download_book / get_content_license).

A download is a one-time work per item (``download:ACCOUNT:ITEM``). It makes
sure the token is valid for the next 30 minutes (the user-facing threshold),
asks for the content license, and fetches the file the license points to
into ``.NAME.part`` next to the destination. An interrupted transfer — a
dropped connection here, a killed process, a retried work — continues from
the bytes already on disk with an HTTP ``Range`` request. The size is checked
against what the license and the server announced, and only a complete file
is moved into place (``os.replace``), so the destination never holds a
partial file. Files are saved as delivered: no DRM is removed. A license
that carries a voucher (Audible's, needed to play an ``.aaxc``:
:mod:`stayfresh.audible`) has it saved beside the file, owner-only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from .._http import stream
from ..errors import (
    AccountNotFound,
    ConfigError,
    ProviderError,
    ReauthRequired,
    ResponseTooLarge,
    TransientError,
)
from ..tokens import DEFAULT_THRESHOLD, Keeper
from ..work import Constraints, Result, WorkerContext, WorkManager, WorkRequest
from ._api import ATTEMPTS, ApiJob
from ._library import SyncInterrupted, context_keeper
from ._license import (
    ContentLicense,
    announced_sha256,
    announced_total,
    content_range,
    json_license,
)
from ._lifecycle import DOWNLOAD_WORKER, account_tag, download_work_name
from ._sources import LibraryError, source_factory

log = logging.getLogger(__name__)

#: how often progress is published while bytes flow (seconds)
PROGRESS_EVERY = 0.25


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DownloadProgress:
    done: int
    total: int | None

    def to_json(self) -> dict[str, Any]:
        percent = None if not self.total else round(100 * self.done / self.total, 1)
        return {"bytes": self.done, "total": self.total, "percent": percent}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DownloadResult:
    account: str
    item_id: str
    path: str
    size: int
    resumed_from: int  # bytes already on disk when this call started
    attempts: int
    duration: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def download_request(account: str, item_id: str, dest: str | os.PathLike[str]) -> WorkRequest:
    """The one-time work that downloads ``item_id`` into the folder ``dest``."""
    return WorkRequest(
        worker=DOWNLOAD_WORKER,
        input={"account": account, "item_id": item_id, "dest": str(Path(dest).absolute())},
        constraints=Constraints(network="connected"),
        tags=(account_tag(account), "download"),
        timeout=6 * 3600.0,
    )


def enqueue_download(
    manager: WorkManager, account: str, item_id: str, dest: str | os.PathLike[str]
) -> str:
    """Enqueue the download (KEEP: an unfinished one for that item stays); return its id."""
    info = manager.enqueue(
        download_request(account, item_id, dest),
        name=download_work_name(account, item_id),
        policy="keep",
    )
    return info.id


class Downloader(ApiJob[DownloadProgress]):
    """Licenses and downloads items of ``keeper.store``'s accounts.

    ``sleep`` waits between attempts and may return True for "stop" (a worker
    passes ``ctx.wait_cancelled``).
    """

    def __init__(
        self,
        keeper: Keeper,
        *,
        client: httpx2.Client | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
        attempts: int = ATTEMPTS,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        threshold: dt.timedelta | float = DEFAULT_THRESHOLD,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(
            keeper, client=client, timeout=timeout, sleep=sleep, clock=clock,
            attempts=attempts, backoff=backoff, backoff_cap=backoff_cap, threshold=threshold,
            on_progress=on_progress, cancelled=cancelled,
        )  # fmt: skip

    # -- the license -----------------------------------------------------------------

    def get_content_license(self, name: str, item_id: str) -> ContentLicense:
        """Ask the account's API where ``item_id``'s file is (token ensured first).

        The account's library source says how (:meth:`LibrarySource.content_license`);
        a source without that method uses the account's ``download_url``.
        """
        self.keeper.ensure_valid_token(name, self.threshold)
        account = self._account(name)
        ask = getattr(source_factory(account), "content_license", None)
        if ask is None:
            return json_license(account, item_id)
        found: ContentLicense = ask(self, account, item_id)
        return found

    def pause(self, attempt: int, problem: str, wait: float | None = None) -> None:
        """Wait before attempt ``attempt + 1`` (at least ``wait``, the server's
        Retry-After); raise TransientError after the last one."""
        if attempt >= self.attempts:
            raise TransientError(f"{problem} ({attempt} attempts)", retry_after=wait)
        delay = self._delay(attempt, wait)
        log.warning("%s; retrying in %.1f s", problem, delay)
        if self._stopped_after(delay):
            raise SyncInterrupted("download stopped; the partial file is kept for the next run")

    # -- the file ----------------------------------------------------------------------

    def download(self, name: str, item_id: str, dest: str | os.PathLike[str]) -> DownloadResult:
        """Download ``item_id`` into the folder ``dest``; resume a partial file if present."""
        lock = self.store.lock("download", download_work_name(name, item_id))
        if not lock.acquire(timeout=0):
            raise TransientError(f"{item_id} of {name!r} is already being downloaded")
        try:
            return self._download(name, item_id, Path(dest))
        finally:
            lock.release()

    def _download(self, name: str, item_id: str, folder: Path) -> DownloadResult:
        started = time.monotonic()
        lic = self.get_content_license(name, item_id)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / lic.filename
        part = folder / f".{lic.filename}.part"
        if lic.size is not None and final.exists() and final.stat().st_size == lic.size:
            log.info("%s already downloaded", final)
            return self._done(name, item_id, final, lic.size, lic.size, 0, started)
        resumed_from = part.stat().st_size if part.exists() else 0
        account = self._account(name)
        expected, failures, relicensed, forced = lic.size, 0, False, False
        digest: bytes | None = None  # the whole file's sha-256, when the server gives it
        while True:
            if self.cancelled():
                raise SyncInterrupted("download stopped; the partial file is kept")
            have = _size(part)
            if expected is not None and have > expected:
                have = _truncate(part)
            if expected is not None and have == expected:
                break
            # ranges count bytes of the file as stored: no transfer encoding
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            auth = self.auth_headers(account) if lic.authenticated else {}
            problem: str | None = None
            try:
                status, total, sent_digest, problem = self._transfer(
                    lic.url, headers, auth, part, have, expected
                )
                digest = sent_digest or digest
            except TransientError as exc:  # network trouble or the deadline
                status, total = 0, None
                problem = f"{item_id}: transfer cut at {_size(part)} bytes ({exc})"
            if status == 416:
                if expected is None or total != expected:
                    _truncate(part)  # what we have is not a prefix of this file
                expected = total if total is not None else expected
                continue
            if status == 401 and lic.authenticated and not forced:
                self.rejected(account)
                forced = True
                continue
            if status in (401, 403, 410) and not relicensed:
                lic, relicensed = self.get_content_license(name, item_id), True  # URL expired
                continue
            if status == 429 or status >= 500:
                problem = f"{item_id}: file server answered {status}"
            elif status >= 300:
                raise LibraryError(f"{item_id}: file server answered {status}")
            elif problem is None:
                expected = total if total is not None else expected
                if expected is None:
                    expected = _size(part)  # no size announced anywhere: trust a clean end
                elif _size(part) < expected:
                    problem = f"{item_id}: transfer ended early at {_size(part)} bytes"
            if problem is not None:
                failures += 1
                self.pause(failures, problem)
        size = _size(part)
        if lic.size is not None and size != lic.size:
            _truncate(part)
            raise LibraryError(f"{item_id}: got {size} bytes, the license says {lic.size}")
        if digest is not None and _sha256(part) != digest:
            _truncate(part)
            raise LibraryError(
                f"{item_id}: the file does not match the server's sha-256 digest; "
                "the partial file was deleted"
            )
        if lic.voucher is not None:
            _write_private(folder / (final.name + ".voucher"), lic.voucher)
        _fsync(part)
        os.replace(part, final)
        _fsync_dir(folder)
        return self._done(name, item_id, final, size, resumed_from, failures + 1, started)

    def _transfer(
        self,
        url: str,
        headers: dict[str, str],
        auth: dict[str, str],
        part: Path,
        have: int,
        expected: int | None,
    ) -> tuple[int, int | None, bytes | None, str | None]:
        """One GET appending to ``part``: (status, total size the server announced,
        its sha-256 of the whole file, a problem worth another attempt).

        Bytes are never written past the size the license or the server
        announced; a 206 whose Content-Range does not start at ``have`` or
        announces another total empties ``part`` (the next attempt starts at 0).
        """
        with stream(
            self._http(), "GET", url, headers=headers, credentials=auth, timeout=self.timeout
        ) as body:
            status = body.status_code
            total = announced_total(body.headers, status)
            digest = announced_sha256(body.headers)
            if status == 416 or status >= 300:
                return status, total, digest, None
            if status == 206:
                first, _ = content_range(body.headers)
                if first != have or total is None or (expected is not None and total != expected):
                    _truncate(part)
                    problem = (
                        f"{part.name}: Content-Range {body.headers.get('content-range')!r} "
                        f"does not continue at byte {have} of {expected}; starting again at 0"
                    )
                    return status, total, digest, problem
            mode = "ab"
            if status == 200 and have:
                log.info("server ignored the Range request; starting %s again", part.name)
                mode = "wb"
                have = 0
            size = expected if expected is not None else total
            if status == 200 and None not in (expected, total) and expected != total:
                raise LibraryError(f"{part.name}: the server sends {total} bytes, expected {size}")
            done = have
            last = 0.0
            try:
                with open(part, mode) as out:
                    for chunk in body.chunks(None if size is None else size - have):
                        out.write(chunk)
                        done += len(chunk)
                        now = time.monotonic()
                        if self.on_progress is not None and now - last >= PROGRESS_EVERY:
                            last = now
                            out.flush()
                            self.on_progress(DownloadProgress(done=done, total=size))
                        if self.cancelled():
                            raise SyncInterrupted("download stopped; the partial file is kept")
            except ResponseTooLarge:
                _truncate(part)  # a server that sends more than it announced is not trusted
                raise
            if self.on_progress is not None:
                self.on_progress(DownloadProgress(done=done, total=size))
            return status, total, digest, None

    def _done(
        self, name: str, item_id: str, path: Path, size: int, resumed: int, attempts: int,
        started: float,
    ) -> DownloadResult:  # fmt: skip
        self.store.set_library_download(name, item_id, path=str(path), size=size, now=self.clock())
        return DownloadResult(
            account=name, item_id=item_id, path=str(path), size=size, resumed_from=resumed,
            attempts=attempts, duration=time.monotonic() - started,
        )  # fmt: skip


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.digest()


def _truncate(path: Path) -> int:
    with open(path, "wb"):
        pass
    return 0


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        _fsync(folder)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` owner-only, atomically (temp file then rename)."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def download_book(
    account: str, item_id: str, dest: str | os.PathLike[str], *, keeper: Keeper, **options: Any
) -> DownloadResult:
    """Download one item now, in this thread (the library API; no work involved)."""
    downloader = Downloader(keeper, **options)
    try:
        return downloader.download(account, item_id, dest)
    finally:
        downloader.close()


def download_worker(ctx: WorkerContext) -> Result:
    """Input ``{"account", "item_id", "dest"}``; output the saved path and size."""
    account, item_id, dest = (str(ctx.input.get(k) or "") for k in ("account", "item_id", "dest"))
    if not (account and item_id and dest):
        return Result.failure({"error": "input needs account, item_id and dest"})
    downloader = Downloader(
        context_keeper(ctx),
        sleep=ctx.wait_cancelled,
        on_progress=lambda p: ctx.set_progress(p.to_json()),
        cancelled=lambda: ctx.cancelled,
    )
    try:
        return Result.success(downloader.download(account, item_id, dest).to_json())
    except (TransientError, SyncInterrupted) as exc:
        log.warning("%s: download of %s will be retried: %s", account, item_id, exc)
        return Result.retry()
    except ReauthRequired as exc:
        return Result.failure({"error": str(exc), "action": f"stayfresh login {account}"})
    except (LibraryError, ProviderError, ConfigError, AccountNotFound, OSError) as exc:
        return Result.failure({"error": str(exc)})
    finally:
        downloader.close()
