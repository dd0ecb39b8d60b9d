"""Downloads against the fake Audible: license, Range resume, size check, atomic move."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from fake_audible import FakeAudible
from library_helpers import REFRESH, add_audible_account
from stayfresh.errors import TransientError
from stayfresh.jobs import (
    Downloader,
    DownloadProgress,
    LibraryError,
    LibrarySync,
    enqueue_download,
    run_work_inline,
)
from stayfresh.store import Store
from stayfresh.tokens import Keeper
from stayfresh.work import Runner, WorkManager, WorkState

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
    done = run_cli(
        "account", "add", "me", "--provider", "amazon", "--token-url", shop.token_url,
        "--api-url", shop.url, "--refresh-token-env", "RT", db=db_path, env={"RT": REFRESH},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_cli("download", "me", ASIN, "--dest", str(tmp_path), "--json", db=db_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "SUCCEEDED" and out["output"]["size"] == SIZE
    assert (tmp_path / f"{ASIN}.aaxc").read_bytes() == shop.content(ASIN, 0, SIZE)
    done = run_cli("download", "me", "B000000002", "--dest", str(tmp_path), "--background",
                   db=db_path)  # fmt: skip
    assert "enqueued download of B000000002" in done.stdout
    assert not (tmp_path / "B000000002.aaxc").exists()
    listed = run_cli("work", "list", "--json", db=db_path)
    names = {w["name"]: w["state"] for w in json.loads(listed.stdout)}
    assert names["download:me:B000000002"] == "ENQUEUED"
    failed = run_cli("download", "me", "B999999999", "--dest", str(tmp_path), db=db_path)
    assert failed.returncode == 1 and "refused (404)" in failed.stderr
