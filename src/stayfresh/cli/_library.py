"""``stayfresh sync``, ``library list|configure`` and ``download``.

``sync`` runs a library sync in this process with a progress bar (the
daemon's periodic work does the same in the background; both skip when the
other is running). ``download`` enqueues the durable download work and, unless
``--background``, runs it here at once; if a daemon claimed it first, the
command follows its progress instead. Progress goes to stderr, results to
stdout (``--json`` for scripts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from ..errors import AccountNotFound, ConfigError
from ..jobs import LibraryError, LibrarySync, SyncProgress, enqueue_download
from ..jobs.internal import download_work_name
from ..jobs.sources import JsonSource, safe_filename
from ..store import Store
from ..tokens import Account, Keeper, set_default_keeper
from ..work import WorkInfo, WorkManager, WorkState, lease_holder, run_work_inline
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx, print_table
from ._params import ITEM_ID

_err = Console(stderr=True)


@cli.command("sync")
@click.argument("name")
@json_option
@handle_errors
@pass_ctx
def sync(ctx: Context, name: str, as_json: bool) -> None:
    """Sync account NAME's library now, with a progress bar; print the stats."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=_err,
        disable=not _err.is_terminal,
    ) as bar:
        task = bar.add_task(f"sync {name}", total=None, note="")

        def show(p: SyncProgress) -> None:
            bar.update(task, completed=p.items, total=p.total_items, note=p.message)

        with Keeper(ctx.store) as keeper:
            syncer = LibrarySync(keeper, on_progress=show)
            try:
                stats = syncer.run(name)
            finally:
                syncer.close()
    if as_json:
        echo_json(stats.to_json())
        return
    resumed = f", resumed at page {stats.resumed_from_page}" if stats.resumed_from_page else ""
    click.echo(
        f"synced {name}: {stats.items_seen} items in {stats.pages} pages "
        f"({stats.added} added, {stats.updated} updated, {stats.removed} removed) "
        f"in {stats.duration:.1f} s{resumed}"
    )


@cli.group()
def library() -> None:
    """Look at synced libraries and configure where they come from."""


@library.command("list")
@click.argument("name")
@click.option(
    "--search", metavar="TEXT", help="Only items whose title, authors or id contain TEXT."
)
@click.option("--removed", is_flag=True, help="Include items no longer in the source.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most N items (0: all).")
@json_option
@handle_errors
@pass_ctx
def library_list(
    ctx: Context, name: str, search: str | None, removed: bool, limit: int, as_json: bool
) -> None:
    """List account NAME's library (synced items, by title)."""
    rows = ctx.store.list_library(name, search=search, include_removed=removed, limit=limit or None)
    if not rows and ctx.store.get_account(name) is None and not ctx.store.count_library(name):
        raise AccountNotFound(f"no account named {name!r}")
    if as_json:
        echo_json(
            [
                {
                    "item_id": r.item_id, "title": r.title, "authors": r.authors,
                    "removed_at": _iso(r.removed_at), "first_seen_at": _iso(r.first_seen_at),
                    "updated_at": _iso(r.updated_at), "download_path": r.download_path,
                    "data": json.loads(r.data),
                }
                for r in rows
            ]
        )  # fmt: skip
        return
    if not rows:
        click.echo(
            "no items"
            + (f" matching {search!r}" if search else "")
            + f" (try `stayfresh sync {name}`)"
        )
        return
    table = []
    for r in rows:
        status = "removed" if r.removed_at else ("downloaded" if r.download_path else "")
        table.append([r.item_id, r.title or "", r.authors or "", status])
    print_table(["id", "title", "authors", "status"], table)
    click.echo(f"{len(rows)} item(s)")


@library.command("configure")
@click.argument("name")
@click.option("--url", required=True, help="Page URL; may contain {page}, {page_size}, {cursor}.")
@click.option("--items", "items_path", default="items", show_default=True,
              help="Dotted path of the item list in the answer ('' for a bare list).")  # fmt: skip
@click.option("--mode", type=click.Choice(["page", "cursor"]), default="page", show_default=True)
@click.option("--id-field", default="id", show_default=True)
@click.option("--title-field", default="title", show_default=True)
@click.option("--authors-field", default="authors", show_default=True)
@click.option("--page-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--page-param", default="page", show_default=True)
@click.option("--page-size-param", default=None, help="Query parameter for the page size.")
@click.option("--first-page", type=int, default=1, show_default=True)
@click.option("--cursor-param", default="cursor", show_default=True)
@click.option("--cursor-path", default="next_cursor", show_default=True,
              help="Dotted path of the next cursor in the answer.")  # fmt: skip
@click.option("--total-path", default=None, help="Dotted path of the total item count.")
@click.option("--total-header", default=None, help="Response header with the total count.")
@click.option("--download-url", default=None, help="File URL template with {item_id}.")
@json_option
@handle_errors
@pass_ctx
def library_configure(ctx: Context, /, name: str, as_json: bool, **opts: Any) -> None:
    """Sync account NAME's library from any JSON API (the generic source)."""
    row = ctx.store.get_account(name)
    if row is None:
        raise AccountNotFound(f"no account named {name!r}")
    keys = {"items_path": "items", "id_field": "id", "title_field": "title",
            "authors_field": "authors"}  # fmt: skip
    settings = {keys.get(k, k): v for k, v in opts.items() if v is not None}
    config = {**row.config, "library_source": "json", "library": settings}
    JsonSource(dataclasses.replace(Account.from_row(row), config=config))  # validates
    ctx.store.update_config(name, config)
    if as_json:
        echo_json(settings)
    else:
        click.echo(f"{name}: library from {settings['url']} ({settings['mode']} mode)")


@cli.command("download")
@click.argument("name")
@click.argument("item_id", type=ITEM_ID)
@click.option("--dest", type=click.Path(file_okay=False), default=".", show_default=True,
              envvar="STAYFRESH_DOWNLOAD_DIR", show_envvar=True, help="Folder to save into.")  # fmt: skip
@click.option("--background", is_flag=True, help="Only enqueue; the daemon downloads it.")
@json_option
@handle_errors
@pass_ctx
def download(
    ctx: Context, name: str, item_id: str, dest: str, background: bool, as_json: bool
) -> None:
    """Download ITEM_ID of account NAME as delivered (no DRM removal), resumably."""
    if ctx.store.get_account(name) is None:
        raise AccountNotFound(f"no account named {name!r}")
    folder = Path(dest).expanduser().absolute()
    manager = WorkManager(ctx.store)
    work_id = enqueue_download(manager, name, item_id, folder)
    if background:
        _report({"work": download_work_name(name, item_id), "id": work_id, "state": "ENQUEUED"},
                as_json, f"enqueued download of {item_id} into {folder}")  # fmt: skip
        return
    # the worker finds its keeper through the default one until the engine
    # hands workers the runner's store
    set_default_keeper(Keeper(ctx.store))
    with Progress(
        TextColumn(f"[bold]{item_id}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), console=_err, disable=not _err.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("download", total=None)

        def show(p: Any) -> None:
            bar.update(task, completed=p.get("bytes") or 0, total=p.get("total"))

        try:
            info = run_work_inline(ctx.store, work_id, on_progress=show)
            if info is None:  # another runner holds it: follow it, take over if it goes away
                info = _follow(ctx.store, work_id, show)
        except KeyboardInterrupt:
            _interrupted(ctx.store, work_id)
    _finish_download(info, as_json)


def _follow(store: Store, work_id: str, show: Any) -> WorkInfo:
    """Watch another runner's run of ``work_id`` until it ends, or run it here.

    The holder is named on stderr (never a silent wait); once its lease runs
    out, or its process on this machine is gone, this command takes the work
    over and runs it itself.
    """
    seen_running = False
    announced: str | None = None
    while True:
        row = store.get_work(work_id)
        if row is None:
            raise ConfigError(f"work {work_id} disappeared")
        info = WorkInfo.from_row(row)
        if info.progress:
            show(info.progress)
        if info.state == WorkState.RUNNING:
            seen_running = True
            holder = lease_holder(row, time.time())
            if holder is None:
                mine = run_work_inline(store, work_id, on_progress=show)
                if mine is not None:
                    return mine
            elif holder != announced:
                announced = holder
                until = dt.datetime.fromtimestamp(row.lease_until or 0.0).strftime("%H:%M:%S")
                click.echo(f"waiting for {holder} (lease until {until})…", err=True)
        elif info.state.is_finished or (seen_running and info.state == WorkState.ENQUEUED):
            return info
        time.sleep(0.25)


def _interrupted(store: Store, work_id: str) -> NoReturn:
    """Ctrl-C during ``download``: say what was kept, exit 130 as shells expect.

    A run here was recorded as released (the attempt does not count; see
    ``run_work_inline``), so the command run again resumes from the partial
    file with a Range request. A run of another runner that this command
    only followed goes on.
    """
    row = store.get_work(work_id)
    data = row.input if row is not None else {}
    folder, item_id = Path(str(data.get("dest") or ".")), str(data.get("item_id") or "")
    parts = sorted(
        folder.glob(f".{glob.escape(safe_filename(item_id))}.*.part"),
        key=lambda p: p.stat().st_mtime,
    )
    kept = "no partial file yet"
    if parts:
        kept = f"kept the partial file {parts[-1]} ({parts[-1].stat().st_size} bytes)"
    click.echo(f"interrupted: {kept}; run this command again to resume", err=True)
    sys.exit(130)


def _finish_download(info: WorkInfo, as_json: bool) -> None:
    data = {"state": info.state.value, "output": dict(info.output or {}), "id": info.id}
    if info.state == WorkState.SUCCEEDED:
        out = info.output or {}
        _report(data, as_json, f"saved {out.get('path')} ({out.get('size')} bytes)")
        return
    if info.state == WorkState.FAILED:
        _report(data, as_json, None)
        raise LibraryError(str((info.output or {}).get("error") or info.last_error or "failed"))
    when = info.next_run_at.astimezone().strftime("%H:%M:%S") if info.next_run_at else "later"
    _report(data, as_json, None)
    click.echo(
        f"download interrupted; the partial file is kept and the work retries at {when} "
        "(run `stayfresh daemon`, or this command again)",
        err=True,
    )
    sys.exit(4)


def _report(data: dict[str, Any], as_json: bool, text: str | None) -> None:
    if as_json:
        echo_json(data)
    elif text:
        click.echo(text)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
