"""Downloads against the fake Audible: license, Range resume, size check, atomic move."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import add_oauth2, invoke_cli
from fake_audible import FakeAudible
from hostile_server import HostileServer, drip, endless, redirect, repr_digest, respond, serve_file
from library_helpers import REFRESH, add_audible_account
from stayfresh.errors import ResponseTooLarge, TransientError, UnsafeRedirect
from stayfresh.jobs import (
    Downloader,
    DownloadProgress,
    LibraryError,
    LibrarySync,
    enqueue_download,
)
from stayfresh.store import Store
from stayfresh.tokens import Keeper, TokenSet, add_account
from stayfresh.work import Runner, WorkManager, WorkState, run_work_inline

ASIN = "B000000007"
SIZE = 1_500_000


@pytest.fixture
def shop() -> Iterator[FakeAudible]:
    fake = FakeAudible(items=20, file_size=SIZE).start()
    yield fake
    fake.stop()


@pytest.fixture
def me(store: Store, shop: FakeAudible, keeper: Keeper) -> str:
    add_audible_account(store, shop)
    sync = LibrarySync(keeper)
    try:
        sync.run("me")
    finally:
        sync.close()
    return "me"


@pytest.fixture
def downloader(keeper: Keeper) -> Iterator[Callable[..., Downloader]]:
    made: list[Downloader] = []

    def make(**options: Any) -> Downloader:
        sleeps: list[float] = []
        options.setdefault("sleep", sleeps.append)
        d = Downloader(keeper, **options)
        d.sleeps = sleeps  # type: ignore[attr-defined]
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def ranges(shop: FakeAudible) -> list[str | None]:
    return [e[2] for e in shop.log if e[0] == "content"]


def test_a_dropped_connection_resumes_with_range_and_lands_atomically(
    store: Store, shop: FakeAudible, me: str, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    shop.drop_downloads = 2
    progress: list[DownloadProgress] = []
    d = downloader(on_progress=progress.append)
    result = d.download(me, ASIN, tmp_path / "books")
    final = tmp_path / "books" / f"{ASIN}.aaxc"
    assert result.path == str(final) and result.size == SIZE
    assert final.read_bytes() == shop.content(ASIN, 0, SIZE)
    sent = ranges(shop)
    assert sent[0] is None and len(sent) == 3
    offsets = [int(r.removeprefix("bytes=").rstrip("-")) for r in sent[1:] if r]
    assert 0 < offsets[0] < offsets[1] < SIZE  # each retry continued where the cut left off
    assert d.sleeps == [1.0, 2.0]  # type: ignore[attr-defined]
    assert sorted(p.name for p in final.parent.iterdir()) == [
        f"{ASIN}.aaxc",
        f"{ASIN}.aaxc.voucher",
    ]
    voucher = final.parent / f"{ASIN}.aaxc.voucher"
    assert stat.S_IMODE(voucher.stat().st_mode) == 0o600
    assert json.loads(voucher.read_bytes())["content_license"]["asin"] == ASIN
    assert progress[-1] == DownloadProgress(done=SIZE, total=SIZE)
    item = store.get_library_item(me, ASIN)
    assert item is not None and item.download_path == str(final) and item.download_size == SIZE


def test_an_interrupted_download_leaves_no_file_in_place_and_resumes_next_time(
    shop: FakeAudible, me: str, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    shop.drop_downloads = 10
    with pytest.raises(TransientError):
        downloader(attempts=3).download(me, ASIN, tmp_path)
    part = tmp_path / f".{ASIN}.aaxc.part"
    assert not (tmp_path / f"{ASIN}.aaxc").exists()
    have = part.stat().st_size
    assert 0 < have < SIZE
    shop.drop_downloads = 0
    result = downloader().download(me, ASIN, tmp_path)
    assert result.resumed_from == have and result.size == SIZE
    assert ranges(shop)[-1] == f"bytes={have}-"
    assert (tmp_path / f"{ASIN}.aaxc").read_bytes() == shop.content(ASIN, 0, SIZE)
    assert not part.exists()
    # done already: a second run (at-least-once work) does not download again
    before = len(ranges(shop))
    assert downloader().download(me, ASIN, tmp_path).size == SIZE
    assert len(ranges(shop)) == before


def test_a_file_of_the_wrong_size_is_refused(
    shop: FakeAudible, me: str, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    shop.license_size = SIZE + 10
    with pytest.raises(LibraryError):
        downloader().download(me, ASIN, tmp_path)
    assert not (tmp_path / f"{ASIN}.aaxc").exists()


def test_a_401_on_the_license_forces_one_refresh(
    shop: FakeAudible, me: str, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    tokens = shop.count("token")
    shop.access.clear()  # the server forgets every token it issued
    assert downloader().download(me, ASIN, tmp_path).size == SIZE
    assert shop.count("token") == tokens + 1 and shop.count("license") == 2


def test_the_download_work_runs_inline_with_progress(
    store: Store, shop: FakeAudible, me: str, default_keeper_on: Keeper, tmp_path: Path
) -> None:
    manager = WorkManager(store)
    work_id = enqueue_download(manager, me, ASIN, tmp_path)
    # KEEP: asking again while it waits names the same work
    assert enqueue_download(manager, me, ASIN, tmp_path) == work_id
    seen: list[dict[str, Any]] = []
    info = run_work_inline(store, work_id, on_progress=lambda p: seen.append(dict(p)))
    assert info is not None and info.state == WorkState.SUCCEEDED, info
    assert info.output is not None and info.output["size"] == SIZE
    assert seen[-1] == {"bytes": SIZE, "total": SIZE, "percent": 100.0}
    assert [r.outcome for r in manager.history(work_id=work_id)] == ["success"]
    assert run_work_inline(store, work_id) is None  # finished: nothing to claim


def test_the_download_work_runs_in_the_runner(
    store: Store, shop: FakeAudible, me: str, default_keeper_on: Keeper, tmp_path: Path
) -> None:
    manager = WorkManager(store)
    work_id = enqueue_download(manager, me, "B000000003", tmp_path)
    assert Runner(store, listen=False).run_pending(now=time.time()) == 1
    info = manager.get(work_id)
    assert info is not None and info.state == WorkState.SUCCEEDED
    assert (tmp_path / "B000000003.aaxc").stat().st_size == SIZE
    missing = enqueue_download(manager, me, "B999999999", tmp_path)
    Runner(store, listen=False).run_pending(now=time.time())
    failed = manager.get(missing)
    assert failed is not None and failed.state == WorkState.FAILED
    assert "refused (404)" in str(failed.output)


def test_download_cli_runs_now_or_in_the_background(
    db_path: Path, shop: FakeAudible, tmp_path: Path
) -> None:
    done = invoke_cli(
        "account", "add", "me", "--provider", "amazon", "--token-url", shop.token_url,
        "--api-url", shop.url, "--refresh-token-env", "RT", db=db_path, env={"RT": REFRESH},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = invoke_cli("download", "me", ASIN, "--dest", str(tmp_path), "--json", db=db_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "SUCCEEDED" and out["output"]["size"] == SIZE
    assert (tmp_path / f"{ASIN}.aaxc").read_bytes() == shop.content(ASIN, 0, SIZE)
    done = invoke_cli("download", "me", "B000000002", "--dest", str(tmp_path), "--background",
                   db=db_path)  # fmt: skip
    assert "enqueued download of B000000002" in done.stdout
    assert not (tmp_path / "B000000002.aaxc").exists()
    listed = invoke_cli("work", "list", "--json", db=db_path)
    names = {w["name"]: w["state"] for w in json.loads(listed.stdout)}
    assert names["download:me:B000000002"] == "ENQUEUED"
    failed = invoke_cli("download", "me", "B999999999", "--dest", str(tmp_path), db=db_path)
    assert failed.returncode == 1 and "refused (404)" in failed.stderr


# -- hostile file servers -------------------------------------------------------------------

DATA = bytes(range(256)) * 400  # 102,400 bytes, every offset distinguishable


def json_account(store: Store, api: HostileServer, files: HostileServer) -> str:
    """A json-source account; the token goes with downloads only when ``files`` is ``api``."""
    add_oauth2(store, "j", api.url("/token"), expires_in=3600)
    row = store.get_account("j")
    assert row is not None
    library = {"url": api.url("/lib"), "download_url": files.url("/files/{item_id}.bin")}
    store.update_config("j", {**row.config, "library_source": "json", "library": library})
    return "j"


def test_a_resume_answered_from_the_wrong_offset_starts_again_from_zero(
    store: Store, evil: HostileServer, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    name = json_account(store, evil, evil)
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / ".b1.bin.part").write_bytes(DATA[:50_000])
    # the 206 starts 1000 bytes further than asked; appending it would corrupt the file
    evil.route("/files/b1.bin", serve_file(DATA, range_shift=1000))
    result = downloader().download(name, "b1", folder)
    assert Path(result.path).read_bytes() == DATA
    assert [r.headers.get("range") for r in evil.seen("/files/b1.bin")] == ["bytes=50000-", None]


def test_a_file_that_fails_the_servers_digest_is_never_saved(
    store: Store, evil: HostileServer, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    name = json_account(store, evil, evil)
    evil.route("/files/b1.bin", serve_file(DATA, digest=repr_digest(DATA[:-1] + b"?")))
    with pytest.raises(LibraryError, match="sha-256"):
        downloader().download(name, "b1", tmp_path / "books")
    assert list((tmp_path / "books").iterdir()) in ([], [tmp_path / "books" / ".b1.bin.part"])
    assert not (tmp_path / "books" / "b1.bin").exists()

    evil.route("/files/b1.bin", serve_file(DATA, digest=repr_digest(DATA)))
    result = downloader().download(name, "b1", tmp_path / "books")
    assert Path(result.path).read_bytes() == DATA


def test_a_download_never_writes_past_the_licensed_size(
    store: Store, evil: HostileServer, other: HostileServer, keeper: Keeper, tmp_path: Path
) -> None:
    add_account(
        store, "amz", "amazon", {"token_url": evil.url("/token"), "api_url": evil.origin},
        TokenSet(access_token="amz-access", refresh_token=REFRESH, expires_at=None),
    )  # fmt: skip
    granted = {"content_license": {
        "status_code": "Granted", "drm_type": "Mpeg",
        "content_metadata": {
            "content_url": {"offline_url": other.url("/cdn/b1.mp3?sig=signed")},
            "content_reference": {"content_size_in_bytes": 1000},
        },
    }}  # fmt: skip
    evil.route("/1.0/content/B1/licenserequest", respond(200, granted))
    other.route("/cdn/b1.mp3", endless(limit=20_000_000, content_type="audio/mpeg"))
    seen: list[int] = []
    d = Downloader(keeper, sleep=lambda s: None, on_progress=lambda p: seen.append(p.done))
    try:
        with pytest.raises(ResponseTooLarge):
            d.download("amz", "B1", tmp_path / "books")
    finally:
        d.close()
    assert max(seen, default=0) <= 1000
    assert not (tmp_path / "books" / "B1.mp3").exists()
    assert "x-amz-access-token" not in other.seen("/cdn/b1.mp3")[0].headers


def test_an_authenticated_download_redirected_to_another_origin_is_refused(
    store: Store,
    evil: HostileServer,
    other: HostileServer,
    downloader: Callable[..., Downloader],
    tmp_path: Path,
) -> None:
    name = json_account(store, evil, evil)
    evil.route("/files/b1.bin", redirect(other.url("/files/b1.bin")))
    other.route("/files/b1.bin", serve_file(b"foreign"))
    with pytest.raises(UnsafeRedirect):
        downloader().download(name, "b1", tmp_path / "books")
    assert other.requests == []
    assert not (tmp_path / "books" / "b1.bin").exists()


def test_a_dripping_file_server_ends_at_the_deadline(
    store: Store, evil: HostileServer, downloader: Callable[..., Downloader], tmp_path: Path
) -> None:
    """Large files get time in proportion to their bytes; a drip earns almost none."""
    name = json_account(store, evil, evil)
    evil.route("/files/b1.bin", drip(DATA[:400], 0.1))
    with pytest.raises(TransientError, match="timed out"):
        downloader(timeout=1.5, attempts=1).download(name, "b1", tmp_path / "books")
    assert not (tmp_path / "books" / "b1.bin").exists()
