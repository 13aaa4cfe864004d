"""The headless front: ``copy`` and ``cleanup`` on the same engine the TUI uses."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .cli import (
    EXIT_FAILED,
    EXIT_OK,
    json_line,
    options_for,
    s3_endpoint_for,
    sftp_endpoint_for,
    split_copy_paths,
)
from .engine.errors import UsageError
from .engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferNotice,
    TransferQueued,
    TransferState,
    TransferStateChanged,
)
from .engine.journal import Journal
from .engine.locations import parse_s3_url
from .engine.plan import ensure_unique_keys
from .engine.queue import TransferQueue
from .engine.s3 import open_client
from .engine.uploads import abort_stale, list_stale
from .metrics import exporting, push_gateway_from_env
from .paths import journal_dir
from .profiles import Profile, ProfileStore
from .redaction import register_secret


class ConsoleProgress:
    """A rich progress display on stderr driven by engine events: one bar per running file."""

    def __init__(self, bus: EventBus, *, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self._overall: TaskID | None = None
        self._rows: dict[int, TaskID] = {}
        self._names: dict[int, tuple[str, int]] = {}
        if enabled:
            bus.subscribe(self._on_event)

    def __enter__(self) -> ConsoleProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def _on_event(self, event: EngineEvent) -> None:
        progress = self.progress
        if isinstance(event, TransferQueued):
            self._names[event.transfer_id] = (event.key.rsplit("/", 1)[-1], event.size)
            if self._overall is None:
                self._overall = progress.add_task("total", total=0)
            progress.update(self._overall, total=(progress.tasks[0].total or 0) + event.size)
        elif isinstance(event, TransferStateChanged) and event.state is TransferState.RUNNING:
            if event.transfer_id not in self._rows:
                name, size = self._names.get(event.transfer_id, ("?", 0))
                self._rows[event.transfer_id] = progress.add_task(name[:40], total=size)
        elif isinstance(event, PartChanged) and event.state is PartState.DONE:
            row = self._rows.get(event.transfer_id)
            if row is not None:
                progress.advance(row, event.size)
            if self._overall is not None:
                progress.advance(self._overall, event.size)
        elif isinstance(event, TransferFinished):
            row = self._rows.pop(event.transfer_id, None)
            if row is not None:
                progress.remove_task(row)
            result = event.result
            if result.status is not TransferState.DONE and self._overall is not None:
                progress.advance(self._overall, result.bytes)  # keep the total honest
            mark = {"done": "✓", "skipped": "→", "failed": "✗", "cancelled": "✗"}[result.status]
            name = self._names.get(event.transfer_id, (result.key, 0))[0]
            extra = f" ({result.message})" if result.message else ""
            progress.console.print(f"{mark} {name} {result.status.value}{extra}", highlight=False)


def load_profile(name: str | None) -> Profile | None:
    """The named saved profile, or None when no name was given."""
    return ProfileStore().get(name) if name else None


async def run_copy(args: argparse.Namespace) -> int:
    profile = await asyncio.to_thread(load_profile, args.profile)
    sftp_base = (
        await asyncio.to_thread(profile.sftp_endpoint, password=os.environ.get("SFTP_PASSWORD"))
        if profile
        else None
    )
    sources, dest = split_copy_paths(
        args.paths,
        default_host=profile.sftp.host if profile else None,
        default_dest=profile.default_destination() if profile else None,
    )
    s3 = s3_endpoint_for(args, await asyncio.to_thread(profile.s3_endpoint) if profile else None)
    options = options_for(args, profile.transfer_options() if profile else None)
    for secret in (sftp_base.password if sftp_base else None, s3.secret_access_key):
        register_secret(secret)
    bus = EventBus()
    journal = None if args.no_resume else Journal(journal_dir())
    show = not (args.quiet or args.json) and sys.stderr.isatty()
    display = ConsoleProgress(bus, enabled=show)
    if not args.quiet:
        bus.subscribe(NoticePrinter(display))
    async with (
        TransferQueue(s3, options, bus=bus, journal=journal) as queue,
        exporting(
            bus,
            queue.pool,
            push_gateway_url=push_gateway_from_env(args.push_gateway),
            metrics_port=args.metrics_port,
            on_warning=lambda text: print(f"sftp-s3-tui: warning: {text}", file=sys.stderr),
        ),
    ):
        jobs = []
        for location in sources:
            endpoint = sftp_endpoint_for(location, args, sftp_base)
            jobs += await queue.expand(endpoint, location.path, dest)
        if len(sources) > 1 and not dest.is_prefix:
            raise UsageError(
                f"Several sources but {dest} names one key", "end DEST with / to use a prefix"
            )
        ensure_unique_keys(jobs)
        started = time.monotonic()
        with display:
            results = await queue.run(jobs)
        seconds = time.monotonic() - started
    failed = [r for r in results if r.status not in (TransferState.DONE, TransferState.SKIPPED)]
    for result in results:
        if args.json:
            print(json_line(result.as_json()), flush=True)
    for result in failed:
        print(f"sftp-s3-tui: {result.source}: {result.message}", file=sys.stderr)
    if not args.json and not args.quiet:
        moved = sum(r.bytes for r in results if r.status is TransferState.DONE)
        rate = moved / seconds / 1e6 if seconds > 0 else 0.0
        done = sum(r.status is TransferState.DONE for r in results)
        skipped = sum(r.status is TransferState.SKIPPED for r in results)
        print(
            f"{done} copied, {skipped} skipped, {len(failed)} failed; "
            f"{moved / (1 << 20):.1f} MiB in {seconds:.1f}s ({rate:.1f} MB/s)",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else EXIT_OK


class NoticePrinter:
    """Prints notices (a resume, a restart, a raised part size) on stderr: news to the user."""

    def __init__(self, display: ConsoleProgress) -> None:
        self.display = display
        self.keys: dict[int, str] = {}

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self.keys[event.transfer_id] = f"s3://{event.bucket}/{event.key}"
        elif isinstance(event, TransferNotice):
            where = self.keys.get(event.transfer_id, f"transfer {event.transfer_id}")
            text = f"sftp-s3-tui: {where}: {event.message}"
            if self.display.enabled:
                self.display.progress.console.print(text, highlight=False)
            else:
                print(text, file=sys.stderr, flush=True)


def parse_age(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError) as exc:
        raise UsageError(f"Not an age: {text!r}", "write it like 30m, 24h or 7d") from exc


async def run_cleanup(args: argparse.Namespace) -> int:
    location = parse_s3_url(
        args.bucket if args.bucket.startswith("s3://") else f"s3://{args.bucket}"
    )
    cutoff = datetime.now(UTC) - parse_age(args.older_than)
    journal = Journal(journal_dir())
    async with open_client(s3_endpoint_for(args)) as client:
        stale = await list_stale(client, location.bucket, location.key, cutoff, journal)
        for upload in stale:
            mark = "ours" if upload.journaled else "    "
            print(f"{upload.initiated:%Y-%m-%d %H:%M} {mark} s3://{location.bucket}/{upload.key}")
        if args.abort:
            await abort_stale(client, location.bucket, stale, journal)
            print(f"aborted {len(stale)} upload(s)", file=sys.stderr)
        else:
            print(f"{len(stale)} stale upload(s); --abort to abort them", file=sys.stderr)
    return EXIT_OK
