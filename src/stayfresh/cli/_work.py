"""``stayfresh work …`` and ``stayfresh daemon``: manage durable work, run it.

Commands that change work poke sleeping runners through the control socket
(the :class:`WorkManager` does it), so a daemon acts on ``work add`` at once.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import click

from ..errors import ConfigError
from ..work import (
    Constraints,
    RunInfo,
    Runner,
    WorkInfo,
    WorkManager,
    WorkRequest,
    format_duration,
)
from ._app import Context, cli, echo_json, handle_errors, json_option, pass_ctx
from ._human import local, relative
from ._params import DURATION as DURATION  # the notify commands import it from here
from ._params import JSON_OBJECT, POSITIVE_DURATION, TAG, WORK_NAME, WORKER, Duration

log = logging.getLogger(__name__)


def _manager(ctx: Context) -> WorkManager:
    return WorkManager(ctx.store)


def _find(manager: WorkManager, name_or_id: str) -> list[WorkInfo]:
    """Works of that unique name, else the work with that id (or id prefix)."""
    found = manager.by_name(name_or_id)
    if not found:
        info = manager.get(name_or_id)
        found = [info] if info else []
    if not found:
        raise ConfigError(f"no work named {name_or_id!r} (nor with that id)")
    return found


def _kind(info: WorkInfo) -> str:
    if not info.periodic or info.interval is None:
        return "once"
    flex = f" flex {format_duration(info.flex)}" if info.flex else ""
    return f"every {format_duration(info.interval)}{flex}"


@cli.group()
def work() -> None:
    """Durable background work: periodic or one-time, with constraints and retries."""


@work.command("add")
@click.argument("name", type=WORK_NAME)
@click.option(
    "--worker",
    required=True,
    type=WORKER,
    metavar="MODULE:FUNC",
    help="Import path or built-in name (must import here and now).",
)
@click.option("--every", type=POSITIVE_DURATION, help="Run periodically (minimum 15m).")
@click.option(
    "--flex",
    type=POSITIVE_DURATION,
    help="Run within this window at the end of each period (min 5m).",
)
@click.option("--delay", type=DURATION, help="Run once, after this initial delay.")
@click.option(
    "--input",
    "input_data",
    type=JSON_OBJECT,
    metavar="JSON",
    help="Input data: a JSON object (at most 64 KiB, 32 levels deep).",
)
@click.option("--network", type=click.Choice(["connected", "unmetered"]), help="Needs a network.")
@click.option("--battery-not-low", is_flag=True, help="Wait while the battery is low.")
@click.option("--charging", is_flag=True, help="Wait until plugged in.")
@click.option("--storage-not-low", is_flag=True, help="Wait while storage is low.")
@click.option(
    "--requires", multiple=True, metavar="MODULE:FUNC", help="Predicate that must be true."
)
@click.option(
    "--backoff",
    type=click.Choice(["exponential", "linear"]),
    default="exponential",
    show_default=True,
)
@click.option(
    "--backoff-delay",
    type=POSITIVE_DURATION,
    default="30s",
    show_default=True,
    help="First retry delay (kept within 10s..5h).",
)
@click.option(
    "--timeout",
    type=POSITIVE_DURATION,
    default="10m",
    show_default=True,
    help="Time limit per run.",
)
@click.option(
    "--policy",
    type=click.Choice(["keep", "replace", "update", "append"]),
    default="keep",
    show_default=True,
    help="When work of this name exists (periodic: replace = cancel and re-enqueue).",
)
@click.option(
    "--tag", "tags", type=TAG, multiple=True, help="Tag (repeatable), for `work cancel --tag`."
)
@json_option
@pass_ctx
@handle_errors
def work_add(
    ctx: Context,
    name: str,
    worker: str,
    every: float | None,
    flex: float | None,
    delay: float | None,
    input_data: dict[str, Any] | None,
    network: str | None,
    battery_not_low: bool,
    charging: bool,
    storage_not_low: bool,
    requires: Sequence[str],
    backoff: str,
    backoff_delay: float,
    timeout: float,
    policy: str,
    tags: Sequence[str],
    as_json: bool,
) -> None:
    """Enqueue work NAME (unique by name).

    NAME and tags use letters, digits and . _ @ + - : / (at most 200
    characters). The worker must be importable here and now: a typo is
    exit 2 at once, not a failure at 3 a.m. in the daemon.
    """
    if every is not None and delay is not None:
        raise ConfigError("--every and --delay exclude each other (a periodic work starts at once)")
    request = WorkRequest(
        worker=worker,
        input=input_data or {},
        every=every,
        flex=flex,
        delay=delay or 0.0,
        constraints=Constraints(
            network=network,  # type: ignore[arg-type]
            battery_not_low=battery_not_low,
            charging=charging,
            storage_not_low=storage_not_low,
            predicates=tuple(requires),
        ),
        backoff=backoff,  # type: ignore[arg-type]
        backoff_delay=backoff_delay,
        timeout=timeout,
        tags=tuple(tags),
    )
    info = _manager(ctx).enqueue(request, name=name, policy=policy)
    if as_json:
        echo_json(info.to_json())
        return
    click.echo(
        f"{name}: {info.state.value} ({_kind(info)}), id {info.id}, next run {relative(info.next_run_at, time.time())}"
    )


@work.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(
        ["ENQUEUED", "RUNNING", "SUCCEEDED", "FAILED", "BLOCKED", "CANCELLED"], case_sensitive=False
    ),
)
@click.option("--tag", help="Only work with this tag.")
@json_option
@pass_ctx
@handle_errors
def work_list(ctx: Context, states: Sequence[str], tag: str | None, as_json: bool) -> None:
    """List work, newest first."""
    manager = _manager(ctx)
    infos = manager.by_tag(tag) if tag else manager.list_work()
    if states:
        wanted = {s.upper() for s in states}
        infos = [i for i in infos if i.state.value in wanted]
    if as_json:
        echo_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo("no work")
        return
    now = time.time()
    rows = [("NAME", "ID", "STATE", "KIND", "NEXT RUN", "ATTEMPT", "LAST")]
    for i in infos:
        rows.append(
            (
                i.name or "-",
                i.id[:8],
                i.state.value,
                _kind(i),
                relative(i.next_run_at, now),
                str(i.run_attempt),
                i.last_outcome or "-",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@work.command("status")
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def work_status(ctx: Context, name: str, as_json: bool) -> None:
    """State, attempt, next run, last outcome and output, progress of NAME (or an id)."""
    infos = _find(_manager(ctx), name)
    if as_json:
        echo_json([i.to_json() for i in infos] if len(infos) > 1 else infos[0].to_json())
        return
    now = time.time()
    for i in infos:
        click.echo(f"{i.name or '-'} ({i.id})")
        lines = {
            "state": i.state.value,
            "kind": _kind(i),
            "worker": i.worker,
            "run attempt": str(i.run_attempt),
            "next run": f"{relative(i.next_run_at, now)} ({local(i.next_run_at)})"
            if i.next_run_at
            else "-",
            "last run": relative(i.last_run_at, now),
            "last outcome": i.last_outcome or "-",
            "output": json.dumps(dict(i.output)) if i.output is not None else "-",
            "progress": json.dumps(dict(i.progress)) if i.progress is not None else "-",
            "constraints": json.dumps(i.constraints.to_json())
            if not i.constraints.is_empty()
            else "-",
            "tags": ", ".join(i.tags) or "-",
        }
        if i.lease_owner:
            lines["runner"] = i.lease_owner
        if i.prerequisites:
            lines["after"] = ", ".join(p[:8] for p in i.prerequisites)
        if i.last_error:
            lines["last error"] = i.last_error.strip().splitlines()[-1]
        for key, value in lines.items():
            click.echo(f"  {key + ':':14} {value}")


@work.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=20, show_default=True)
@json_option
@pass_ctx
@handle_errors
def work_history(ctx: Context, name: str, limit: int, as_json: bool) -> None:
    """Past runs of NAME (or an id), newest first."""
    manager = _manager(ctx)
    infos = _find(manager, name)
    runs: list[RunInfo] = manager.history(
        name=name if infos[0].name == name else None,
        work_id=None if infos[0].name == name else infos[0].id,
        limit=limit,
    )
    if as_json:
        echo_json([r.to_json() for r in runs])
        return
    if not runs:
        click.echo("no runs yet")
        return
    for r in runs:
        took = f"{(r.ended_at - r.started_at).total_seconds():.2f}s" if r.ended_at else "running"
        detail = (
            json.dumps(dict(r.output))
            if r.output
            else (r.error.strip().splitlines()[-1] if r.error else "")
        )
        click.echo(
            f"{r.started_at.isoformat(timespec='seconds')}  #{r.attempt}  {r.outcome:9} {took:>8}  {r.runner}  {detail}".rstrip()
        )


@work.command("run")
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def work_run(ctx: Context, name: str, as_json: bool) -> None:
    """Run NAME now, ignoring its schedule and constraints once (the debug trigger)."""
    manager = _manager(ctx)
    infos = _find(manager, name)
    triggered = (
        manager.run_now(name=name)
        if infos[0].name == name
        else manager.run_now(work_id=infos[0].id)
    )
    if not triggered:
        raise ConfigError(
            f"{name}: nothing ENQUEUED to run ({', '.join(sorted({i.state.value for i in infos}))})"
        )
    if as_json:
        echo_json({"triggered": sorted(triggered)})
        return
    from ..work.internal import live_daemons

    if live_daemons(ctx.store):
        click.echo(
            f"{name}: triggered {len(triggered)} work(s); the running daemon picks them up now"
        )
    else:
        click.echo(
            f"{name}: triggered {len(triggered)} work(s); no daemon is running to pick them up:"
            " start `stayfresh daemon`"
        )


@work.command("cancel")
@click.argument("name", required=False)
@click.option("--id", "work_id", help="Cancel the work with this id (or id prefix).")
@click.option("--tag", help="Cancel every work with this tag.")
@click.option("--all", "everything", is_flag=True, help="Cancel all work.")
@json_option
@pass_ctx
@handle_errors
def work_cancel(
    ctx: Context,
    name: str | None,
    work_id: str | None,
    tag: str | None,
    everything: bool,
    as_json: bool,
) -> None:
    """Cancel work by NAME, --id, --tag or --all (chained work after it too)."""
    if not (name or work_id or tag or everything):
        raise ConfigError("say what to cancel: NAME, --id, --tag or --all")
    cancelled = _manager(ctx).cancel(work_id=work_id, name=name, tag=tag, everything=everything)
    if as_json:
        echo_json({"cancelled": cancelled})
        return
    click.echo(f"cancelled {len(cancelled)} work(s)")


@cli.command("daemon")
@click.option(
    "--max-concurrent",
    type=click.IntRange(min=1, max=1024),
    default=8,
    show_default=True,
    envvar="STAYFRESH_MAX_CONCURRENT",
    show_envvar=True,
)
@click.option(
    "--lease",
    type=Duration(minimum=1.0),
    default="60s",
    show_default=True,
    envvar="STAYFRESH_LEASE",
    show_envvar=True,
    help="Lease per run, renewed at half length.",
)
@click.option(
    "--grace",
    type=DURATION,
    default="30s",
    show_default=True,
    envvar="STAYFRESH_GRACE",
    show_envvar=True,
    help="On SIGTERM, how long running work may finish.",
)
@click.option(
    "--metrics",
    "metrics_at",
    metavar="HOST:PORT",
    envvar="STAYFRESH_METRICS",
    show_envvar=True,
    help="Serve Prometheus /metrics and /healthz here (needs stayfresh[metrics]).",
)
@pass_ctx
@handle_errors
def daemon(
    ctx: Context, max_concurrent: int, lease: float, grace: float, metrics_at: str | None
) -> None:
    """Run due work until SIGTERM/SIGINT (foreground; for systemd, launchd, a terminal)."""
    runner = Runner(ctx.store, max_concurrent=max_concurrent, lease_seconds=lease, grace=grace)
    server = _serve_metrics(ctx, metrics_at) if metrics_at else None
    signals = {"count": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals["count"] += 1
        log.info("received %s; stopping", signal.Signals(signum).name)
        # a second signal skips the grace period
        runner.stop(grace=None if signals["count"] == 1 else 0.0, wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"stayfresh daemon {runner.runner_id} on {ctx.store.location}", err=True)
    if server is not None:
        host, port = server.server_address[:2]
        click.echo(f"metrics at http://{host}:{port}/metrics (health: /healthz)", err=True)
    sys.stderr.flush()
    try:
        runner.run_forever()
    finally:
        if server is not None:
            server.shutdown()


def _serve_metrics(ctx: Context, where: str) -> Any:
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--metrics wants HOST:PORT (e.g. 127.0.0.1:9464), not {where[:60]!r}")
    try:
        from ..jobs.internal import serve_metrics
    except ImportError as exc:
        raise ConfigError(
            f"--metrics needs prometheus_client: pip install 'stayfresh[metrics]' ({exc.name})"
        ) from None
    try:
        return serve_metrics(ctx.store, host.strip("[]") or "127.0.0.1", int(port))
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics at {where}: {exc.strerror or exc}") from None
