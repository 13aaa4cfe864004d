"""The headless front: runs a ``copy`` or ``cleanup`` request on the engine the TUI uses."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .engine.errors import S3Error
from .engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferNotice,
    TransferQueued,
    TransferResult,
    TransferState,
)
from .engine.journal import Journal
from .engine.plan import plan_copy
from .engine.queue import TransferQueue
from .engine.s3 import S3Client, check_bucket, open_client
from .engine.uploads import abort_stale, list_stale
from .metrics import exporting
from .paths import journal_dir
from .redaction import register_secret
from .requests import EXIT_FAILED, EXIT_OK, CleanupRequest, CopyRequest

_MARKS = {"done": "✓", "skipped": "→", "failed": "✗", "cancelled": "✗"}


class ConsoleProgress:
    """One live line on stderr driven by engine events (files n/m, bytes, rate, elapsed,
    ETA, errors, retries), with a line per finished file above it."""

    def __init__(self, bus: EventBus, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("files {task.fields[done]}/{task.fields[files]}"),
            BarColumn(bar_width=24),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("errors {task.fields[errors]} · retries {task.fields[retries]}"),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self._total: TaskID | None = None
        self._names: dict[int, str] = {}
        self.files = self.done = self.errors = self.retries = 0
        if enabled:
            bus.subscribe(self._on_event)

    def __enter__(self) -> ConsoleProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def _update(self, advance: int = 0, total: int = 0) -> None:
        if self._total is None:
            self._total = self.progress.add_task("copy", total=0, **self._fields())
        task = self.progress.tasks[0]
        self.progress.update(
            self._total, total=(task.total or 0) + total, advance=advance, **self._fields()
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "done": self.done,
            "errors": self.errors,
            "retries": self.retries,
        }

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self._names[event.transfer_id] = event.key.rsplit("/", 1)[-1]
            self.files += 1
            self._update(total=event.size)
        elif isinstance(event, PartChanged):
            if event.state is PartState.DONE:
                self._update(advance=event.size)
            elif event.state is PartState.RETRIED:
                self.retries += 1
                self._update()
        elif isinstance(event, TransferFinished):
            result = event.result
            self.done += 1
            failed = result.status not in (TransferState.DONE, TransferState.SKIPPED)
            self.errors += failed
            # Skipped and failed files count as finished, so the total stays honest.
            uploaded = result.bytes if result.status is not TransferState.DONE else 0
            self._update(advance=uploaded)
            name = self._names.get(event.transfer_id, result.key)
            extra = f" ({result.message})" if result.message else ""
            self.progress.console.print(
                f"{_MARKS[result.status]} {name} {result.status.value}{extra}", highlight=False
            )


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


def result_record(result: TransferResult) -> dict[str, object]:
    """A file's ``--json`` record: ``bytes`` is what this run moved (0 for a skipped file),
    ``size`` the file's size."""
    record = result.as_json()
    record["size"] = result.bytes
    if result.status is not TransferState.DONE:
        record["bytes"] = 0
    return record


def summary_record(results: list[TransferResult], seconds: float) -> dict[str, object]:
    """The final ``--json`` record: counts, bytes moved, time, and the exit code."""
    failed = sum(r.status not in (TransferState.DONE, TransferState.SKIPPED) for r in results)
    moved = sum(r.bytes for r in results if r.status is TransferState.DONE)
    return {
        "summary": True,
        "files": len(results),
        "copied": sum(r.status is TransferState.DONE for r in results),
        "skipped": sum(r.status is TransferState.SKIPPED for r in results),
        "failed": failed,
        "bytes": moved,
        "seconds": round(seconds, 3),
        "exit_code": EXIT_FAILED if failed else EXIT_OK,
    }


async def _check_destination(client: S3Client, request: CopyRequest) -> None:
    """The bucket checked once, up front (not one failure per file), naming the endpoint."""
    try:
        await check_bucket(client, request.dest.bucket)
    except S3Error as exc:
        where = request.s3.display
        if where not in exc.message:
            exc.message = f"{exc.message} ({where})"
        raise


def _warn(text: str) -> None:
    print(f"sftp-s3-tui: warning: {text}", file=sys.stderr)


async def run_copy(request: CopyRequest) -> int:
    """Copy every source under the destination; the exit code says how it went."""
    for source in request.sources:
        register_secret(source.endpoint.password)
    register_secret(request.s3.secret_access_key)
    bus = EventBus()
    journal = Journal(journal_dir()) if request.resume else None
    show = not (request.quiet or request.json) and sys.stderr.isatty()
    display = ConsoleProgress(bus, enabled=show)
    if not request.quiet:
        bus.subscribe(NoticePrinter(display))
    async with (
        TransferQueue(request.s3, request.options, bus=bus, journal=journal) as queue,
        exporting(
            bus,
            queue.pool,
            push_gateway_url=request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=_warn,
        ),
    ):
        await _check_destination(queue.s3, request)
        jobs = await plan_copy(
            queue.sftp,
            request.sources,
            request.dest,
            exact_key_hint="end DEST with / to copy into a prefix",
        )
        started = time.monotonic()
        with display:
            results = await queue.run(jobs)
        seconds = time.monotonic() - started
    failed = [r for r in results if r.status not in (TransferState.DONE, TransferState.SKIPPED)]
    if request.json:
        for result in results:
            print(json.dumps(result_record(result), ensure_ascii=False), flush=True)
        print(json.dumps(summary_record(results, seconds)), flush=True)
    for result in failed:
        print(f"sftp-s3-tui: {result.source}: {result.message}", file=sys.stderr)
    if not request.json and not request.quiet:
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


async def run_cleanup(request: CleanupRequest) -> int:
    """List multipart uploads older than the request's age; abort them if asked."""
    location = request.location
    cutoff = datetime.now(UTC) - request.older_than
    journal = Journal(journal_dir())
    register_secret(request.s3.secret_access_key)
    async with open_client(request.s3) as client:
        stale = await list_stale(client, location.bucket, location.key, cutoff, journal)
        for upload in stale:
            mark = "ours" if upload.journaled else "    "
            print(f"{upload.initiated:%Y-%m-%d %H:%M} {mark} s3://{location.bucket}/{upload.key}")
        if request.abort:
            await abort_stale(client, location.bucket, stale, journal)
            print(f"aborted {len(stale)} upload(s)", file=sys.stderr)
        else:
            print(f"{len(stale)} stale upload(s); --abort to abort them", file=sys.stderr)
    return EXIT_OK
