"""The headless front: runs a ``copy`` or ``cleanup`` request on the engine the TUI uses."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
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

from .engine.config import ConflictPolicy
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
from .engine.filters import source_root
from .engine.journal import Journal
from .engine.manifest import Manifest
from .engine.plan import FileJob, can_stream, plan_copy, stream_plan
from .engine.preview import CopyPlan, PlannedFile, preview_copy
from .engine.queue import TransferQueue
from .engine.s3 import S3Client, check_bucket, open_client
from .engine.selection import root_of, select_planned
from .engine.server_profile import ServerProfile
from .engine.sftp import Logins, SftpPool
from .engine.source_actions import SourceOutcome
from .engine.uploads import abort_stale, list_stale
from .engine.watch import PollReport, WatchSource, WatchState, watch
from .engine.workflow import CopyRun, RunReport
from .metrics import exporting
from .paths import journal_dir, state_dir
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
            name = self._names.pop(event.transfer_id, result.key)
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
        elif isinstance(event, TransferFinished):
            self.keys.pop(event.transfer_id, None)  # held only while a file is under way
        elif isinstance(event, TransferNotice):
            where = self.keys.get(event.transfer_id, f"transfer {event.transfer_id}")
            text = f"sftp-s3-tui: {where}: {event.message}"
            if self.display.enabled:
                self.display.progress.console.print(text, highlight=False)
            else:
                print(text, file=sys.stderr, flush=True)


def result_record(result: TransferResult, server: ServerProfile | None = None) -> dict[str, object]:
    """A file's ``--json`` record: ``bytes`` is what this run moved (0 for a skipped file),
    ``size`` the file's size, ``server`` the SFTP server's profile (read size, extensions)."""
    record = result.as_json()
    record["size"] = result.bytes
    if result.status is not TransferState.DONE:
        record["bytes"] = 0
    if server is not None:
        record["server"] = server.to_json()
    return record


def summary_record(results: list[TransferResult], seconds: float) -> dict[str, object]:
    """The final ``--json`` record: counts, bytes moved, time, and the exit code."""
    tally = RunTally()
    for result in results:
        tally.add(result)
    return tally.summary(seconds)


#: Done/skipped transfers the queue keeps while a CLI copy runs (results are printed as they
#: arrive and counted, so the queue need not keep them): memory stays flat in file count.
KEEP_FINISHED = 100
#: Files listed ahead of the copy at most (None: the queue's default, 256 or 4 × --files).
LOOKAHEAD: int | None = None
#: Failures named one per line at the end; beyond that they are counted ("and N more").
FAILED_LINES = 100


class RunTally:
    """A run's summary from running counts: nothing per file is kept but the first
    :data:`FAILED_LINES` failures (every one is a ``--json`` row as it happens)."""

    def __init__(self) -> None:
        self.files = self.copied = self.skipped = self.failed = self.bytes = 0
        self.excluded = 0
        self.failures: list[TransferResult] = []
        #: The most transfer records the queue held at once (a check that they stay bounded).
        self.most_held = 0

    def add(self, result: TransferResult) -> None:
        self.files += 1
        if result.status is TransferState.DONE:
            self.copied += 1
            self.bytes += result.bytes
        elif result.status is TransferState.SKIPPED:
            self.skipped += 1
        else:
            self.failed += 1
            if len(self.failures) < FAILED_LINES:
                self.failures.append(result)

    def summary(self, seconds: float) -> dict[str, object]:
        return {
            "summary": True,
            "files": self.files,
            "copied": self.copied,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(seconds, 3),
            "exit_code": EXIT_FAILED if self.failed else EXIT_OK,
        }


#: The last CLI copy's tally in this process (tests read it: how many records were held).
last_tally: RunTally | None = None


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


def _say(text: str) -> None:
    print(f"sftp-s3-tui: {text}", file=sys.stderr, flush=True)


def _open_queue(request: CopyRequest, bus: EventBus, sftp: SftpPool | None = None) -> TransferQueue:
    for source in request.sources:
        register_secret(source.endpoint.password)
    register_secret(request.s3.secret_access_key)
    journal = Journal(journal_dir()) if request.resume and not request.run.dry_run else None
    return TransferQueue(
        request.s3,
        request.options,
        bus=bus,
        journal=journal,
        keep_finished=KEEP_FINISHED,
        sftp=sftp,
    )


async def _open_manifest(request: CopyRequest, queue: TransferQueue) -> Manifest | None:
    target = request.run.manifest
    if not target:
        return None
    return await Manifest.open(target, s3=queue.s3, spool_dir=state_dir() / "manifests")


def _plan_row_printer(as_json: bool) -> Callable[[PlannedFile], None]:
    """Prints each file of a ``--dry-run`` plan as soon as it is decided."""

    def show(planned: PlannedFile) -> None:
        if as_json:
            print(json.dumps(planned.as_json(), ensure_ascii=False), flush=True)
        else:
            print(CopyPlan(files=[planned]).table()[0], flush=True)

    return show


def _print_plan_totals(plan: CopyPlan, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"plan": True, **plan.totals()}), flush=True)
    else:
        print(plan.summary(), file=sys.stderr)


def _outcome_printer(request: CopyRequest) -> Callable[[SourceOutcome], None]:
    def show(outcome: SourceOutcome) -> None:
        if request.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False), flush=True)
        elif not outcome.ok:
            _say(f"{outcome.path}: kept: {outcome.reason}")
        elif not request.quiet:
            where = f" → {outcome.target}" if outcome.target else ""
            _say(f"{outcome.path}: {outcome.action}{where}")

    return show


def _waiting_record(job: FileJob, reason: str) -> dict[str, object]:
    return {
        "source": job.source,
        "bucket": job.bucket,
        "key": job.key,
        "bytes": 0,
        "size": job.size,
        "status": "waiting",
        "message": reason,
    }


async def run_copy(
    request: CopyRequest, *, sftp: SftpPool | None = None, logins: Logins | None = None
) -> int:
    """Copy every source under the destination; the exit code says how it went.

    Files are planned and queued as the sources are listed (a bounded look-ahead), and
    each result is printed and counted as it arrives: memory does not grow with the number
    of files. Two cases still list everything first: a readiness gate (it judges a folder
    as a whole: done files, stability) and several sources whose keys could collide (the
    plan is refused before anything moves). Without a listing up front, ``skip-existing``,
    ``if-newer`` and ``if-different`` decide each streamed file by a HEAD.

    With filters, a readiness gate, a manifest or a source action it is the nightly run:
    the plan is filtered and gated, each file's manifest row is written as it finishes, and
    only then is its source moved or deleted. ``--dry-run`` prints the plan (each file as it
    is decided) and writes nothing.

    ``sftp`` and ``logins``: a pool whose logins started before this module was imported
    (:meth:`SftpPool.start_logins`); they are waited for once the bucket is checked.
    """
    global last_tally
    _settle_heap()  # what the imports built; again once connected
    run = request.run
    bus = EventBus()
    show = not (request.quiet or request.json or run.dry_run) and sys.stderr.isatty()
    display = ConsoleProgress(bus, enabled=show)
    if not request.quiet:
        bus.subscribe(NoticePrinter(display))
    tally = last_tally = RunTally()
    try:
        return await _copy(request, bus, display, tally, sftp, logins)
    finally:
        if logins is not None:
            logins.discard()


async def _copy(
    request: CopyRequest,
    bus: EventBus,
    display: ConsoleProgress,
    tally: RunTally,
    sftp: SftpPool | None,
    logins: Logins | None,
) -> int:
    run = request.run
    async with (
        _open_queue(request, bus, sftp) as queue,
        exporting(
            bus,
            queue.pool,
            push_gateway_url=None if run.dry_run else request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=_warn,
        ),
    ):
        await _check_destination(queue.s3, request)
        if logins is not None:
            await logins.wait()
            queue.sftp.announce_links()  # measured before the metrics listened
        _settle_heap()
        streaming = (
            not run.dry_run and not run.gate.active and can_stream(request.sources, request.dest)
        )
        selection = None
        if not streaming:
            jobs = await plan_copy(
                queue.sftp, request.sources, request.dest, exact_key_hint=_EXACT_KEY_HINT
            )
            selection = await select_planned(
                queue.sftp, jobs, request.sources, file_filter=run.file_filter, gate=run.gate
            )
            del jobs
            if run.dry_run:
                plan = await preview_copy(
                    selection,
                    queue.destination,
                    request.options,
                    on_planned=_plan_row_printer(request.json),
                )
                _print_plan_totals(plan, request.json)
                return EXIT_OK
            if request.options.conflict is not ConflictPolicy.OVERWRITE:
                keys = [j.key for j in selection.jobs]
                await queue.destination.preload(request.dest.bucket, keys)
        manifest = await _open_manifest(request, queue)

        def on_file(job: FileJob, result: TransferResult) -> None:
            tally.add(result)
            tally.most_held = max(tally.most_held, len(queue.transfers))
            if request.json:
                server = queue.sftp.server_profile(job.endpoint)
                print(json.dumps(result_record(result, server), ensure_ascii=False), flush=True)

        copy = CopyRun(
            queue,
            manifest=manifest,
            source_action=run.source_action,
            on_outcome=_outcome_printer(request),
            on_file=on_file,
        )
        started = time.monotonic()
        try:
            with display:
                if selection is None:
                    roots = [(s.endpoint.display, source_root(s.path)) for s in request.sources]
                    listed = stream_plan(
                        queue.sftp, request.sources, request.dest, exact_key_hint=_EXACT_KEY_HINT
                    )
                    report = await copy.run_stream(
                        _filtered(listed, request, roots, tally),
                        root_of=lambda job: root_of(job, roots),
                        lookahead=LOOKAHEAD,
                    )
                else:
                    report = await copy.run(selection)
                    tally.excluded = len(report.excluded)
                    report.results = []  # counted in the tally already
        finally:
            if manifest is not None:
                await manifest.close()
                if manifest.upload_error:
                    _warn(f"the manifest was kept in {manifest.path}: {manifest.upload_error}")
        seconds = time.monotonic() - started
    return _report(request, tally, report, seconds)


_EXACT_KEY_HINT = "end DEST with / to copy into a prefix"


def _settle_heap() -> None:
    """Take what start-up built (botocore's service models, asyncssh, rich: ~100k objects
    that live as long as the process) out of the garbage collector's reach.

    Otherwise every full collection walks them all, and one took 90-120 ms of the event
    loop's CPU during a copy of many small files (measured: bench/many_files.py). Frozen
    objects are never collected; what a copy allocates afterwards still is."""
    gc.freeze()


async def _filtered(
    jobs: AsyncIterator[FileJob],
    request: CopyRequest,
    roots: list[tuple[str, str]],
    tally: RunTally,
) -> AsyncIterator[FileJob]:
    """The streamed jobs the filters let through (each relative to its source folder, as
    ``select_planned`` does); the others are counted as excluded."""
    file_filter = request.run.file_filter
    if not file_filter.rules:
        async for job in jobs:
            yield job
        return
    async for job in jobs:
        if file_filter.why_excluded(job, root_of(job, roots)) is None:
            yield job
        else:
            tally.excluded += 1


def _report(request: CopyRequest, tally: RunTally, report: RunReport, seconds: float) -> int:
    if request.json:
        for job, reason in report.waiting:
            print(json.dumps(_waiting_record(job, reason), ensure_ascii=False), flush=True)
        summary = tally.summary(seconds)
        if report.waiting or tally.excluded:
            summary.update(waiting=len(report.waiting), excluded=tally.excluded)
        print(json.dumps(summary), flush=True)
    for result in tally.failures:
        print(f"sftp-s3-tui: {result.source}: {result.message}", file=sys.stderr)
    if tally.failed > len(tally.failures):
        more = tally.failed - len(tally.failures)
        print(
            f"sftp-s3-tui: and {more} more failed"
            + (" (each is a --json row)" if request.json else " (--json lists every file)"),
            file=sys.stderr,
        )
    if not request.json and not request.quiet:
        for job, reason in report.waiting:
            _say(f"{job.source}: waiting: {reason}")
        rate = tally.bytes / seconds / 1e6 if seconds > 0 else 0.0
        extra = f", {len(report.waiting)} waiting" if report.waiting else ""
        extra += f", {tally.excluded} excluded" if tally.excluded else ""
        print(
            f"{tally.copied} copied, {tally.skipped} skipped, {tally.failed} failed{extra}; "
            f"{tally.bytes / (1 << 20):.1f} MiB in {seconds:.1f}s ({rate:.1f} MB/s)",
            file=sys.stderr,
        )
    return EXIT_FAILED if tally.failed else EXIT_OK


async def run_watch(request: CopyRequest, stop: asyncio.Event) -> int:
    """Poll the sources every ``request.watch_every_seconds`` until ``stop``; push metrics
    while it runs. Exit 0 when stopped (a file's failure is retried at the next poll)."""
    run = request.run
    bus = EventBus()
    if not request.quiet:
        bus.subscribe(NoticePrinter(ConsoleProgress(bus, enabled=False)))
    sources = [WatchSource(s.endpoint, s.path) for s in request.sources]
    state = WatchState.for_watch(
        state_dir() / "watch", [f"{s.endpoint.display}{s.path}" for s in sources], request.dest
    )
    every = request.watch_every_seconds or 60.0

    def on_file(job: FileJob, result: TransferResult) -> None:  # as each file lands
        if request.json:
            print(json.dumps(result_record(result), ensure_ascii=False), flush=True)
        elif not request.quiet or result.status is TransferState.FAILED:
            extra = f" ({result.message})" if result.message else ""
            _say(f"{result.source} {result.status.value}{extra}")

    def on_poll(poll: PollReport) -> None:
        for error in poll.errors:
            _warn(error)
        if request.json:  # a heartbeat per poll, so a supervisor sees the watch alive
            record = {
                "poll": poll.number,
                "listed": poll.listed,
                "copied": sum(r.status is TransferState.DONE for r in poll.run.results),
                "failed": len(poll.run.failed),
                "waiting": len(poll.run.waiting),
            }
            print(json.dumps(record), flush=True)

    async with (
        _open_queue(request, bus) as queue,
        exporting(
            bus,
            queue.pool,
            push_gateway_url=request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=_warn,
        ),
    ):
        await check_bucket(queue.s3, request.dest.bucket)
        manifest = await _open_manifest(request, queue)
        if not request.quiet:
            _say(f"watching {len(sources)} source(s) every {every:g} s; state in {state.path}")
        try:
            polls = await watch(
                queue,
                sources,
                request.dest,
                every_seconds=every,
                state=state,
                stop=stop,
                file_filter=run.file_filter,
                gate=run.gate,
                manifest=manifest,
                source_action=run.source_action,
                on_poll=on_poll,
                on_file=on_file,
            )
        finally:
            if manifest is not None:
                await manifest.close()
    if not request.quiet:
        _say(f"stopped after {polls} poll(s); {len(state)} file version(s) shipped in total")
    return EXIT_OK


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
