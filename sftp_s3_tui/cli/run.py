"""Runs the headless commands on the engine the TUI uses: ``copy`` (SFTP → S3), ``watch``
and ``cleanup``; :mod:`.console` shows them, :mod:`.delivery` runs S3 → SFTP."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ..engine.config import ConflictPolicy
from ..engine.errors import S3Error
from ..engine.events import (
    Direction,
    EngineEvent,
    EventBus,
    RunSelected,
    TransferResult,
    TransferState,
)
from ..engine.nightly.manifest import Manifest
from ..engine.nightly.run import CopyRun, PlanRules, opened_manifest, run_nightly
from ..engine.nightly.watch import PollReport, Watcher, WatchHooks, WatchSource, WatchState
from ..engine.plan.filters import source_root
from ..engine.plan.selection import root_of
from ..engine.plan.sources import FileJob, can_stream, stream_plan
from ..engine.resume.journal import Journal
from ..engine.resume.stale_uploads import abort_stale, list_stale
from ..engine.s3.operations import S3Client, check_bucket, open_client
from ..engine.sftp.pool import Logins, SftpPool
from ..engine.transfer.queue import TransferQueue
from ..metrics import SnapshotMetrics, exporting
from ..observe.session import ObservedRun, Observers
from ..paths import journal_dir, state_dir
from ..redaction import register_secret
from ..requests import EXIT_FAILED, EXIT_OK, CleanupRequest, CopyRequest
from .console import (
    ConsoleProgress,
    JsonLines,
    NoticePrinter,
    RunTally,
    log_as_json,
    outcome_printer,
    plan_row_printer,
    print_plan_totals,
    print_report,
    result_record,
    say,
    say_kept_rows,
    status_text,
    warn,
)
from .drops import WatchDrops
from .heap import settle_heap

#: Done/skipped transfers the queue keeps while a CLI copy runs (results are printed as they
#: arrive and counted, so the queue need not keep them): memory stays flat in file count.
KEEP_FINISHED = 100
#: Files listed ahead of the copy at most (None: the queue's default, 256 or 4 × --files).
LOOKAHEAD: int | None = None

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


def _observers(request: CopyRequest, command: str) -> Observers:
    """The command's lineage, hooks, JSON log and drop trackers (no-ops when unset)."""
    gate = request.run.gate
    dry_run = request.run.dry_run  # a plan moves nothing: no lineage, no pings
    observers = Observers(
        replace(request.observe, hook_url=None) if dry_run else request.observe,
        lineage=not dry_run,
        job_name=f"{command}:{request.dest}",
        job_type="COPY" if command == "copy" else "WATCH_POLL",
        gate=gate.describe if gate.active else None,
        on_warning=warn,
    )
    log_as_json(observers)
    return observers


def _run_summary(request: CopyRequest, command: str) -> dict[str, object]:
    """What a hook's ``/start`` carries: the command and where (no user, no secret)."""
    return {
        "command": command,
        "sources": [f"{s.endpoint.display}{s.path}" for s in request.sources],
        "dest": str(request.dest),
    }


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


async def run_copy(
    request: CopyRequest, *, sftp: SftpPool | None = None, logins: Logins | None = None
) -> int:
    """Copy every source under the destination; the exit code says how it went.

    Files are planned and queued as the sources are listed (a bounded look-ahead), and
    each result is printed and counted as it arrives: memory does not grow with the number
    of files. Two cases still list everything first: a readiness gate (it judges a folder
    as a whole: done files, stability) and several sources whose keys could collide (the
    plan is refused before anything moves). Without a listing of the sources up front,
    ``skip-existing``, ``if-newer`` and ``if-different`` decide each streamed file from one
    listing of the destination prefix (a HEAD only beyond its page budget).

    With filters, a readiness gate, a manifest or a source action it is the nightly run:
    the plan is filtered and gated, each file's manifest row is written as it finishes, and
    only then is its source moved or deleted. ``--dry-run`` prints the plan (each file as it
    is decided) and writes nothing.

    ``sftp`` and ``logins``: a pool whose logins started before this module was imported
    (:meth:`SftpPool.start_logins`); they are waited for once the bucket is checked.
    """
    global last_tally
    settle_heap()  # what the imports built; again once connected
    run = request.run
    bus = EventBus()
    observers = _observers(request, "copy")
    json_logs = observers.json_log is not None
    show = not (request.quiet or request.json or run.dry_run or json_logs) and sys.stderr.isatty()
    display = ConsoleProgress(bus, enabled=show)
    if observers.json_log is not None:
        bus.subscribe(observers.json_log.on_event)
    elif not request.quiet:
        bus.subscribe(NoticePrinter(display))
    tally = last_tally = RunTally()
    for note in run.file_filter.notes:  # an --exclude that can never apply, say
        warn(note)
    started = time.monotonic()
    observed = observers.begin(_run_summary(request, "copy"))
    metrics = SnapshotMetrics(directions=(Direction.SFTP_TO_S3,))
    metrics.drops.run(observed.run_id, "copy")
    code = EXIT_FAILED
    error: str | None = None
    try:
        code = await _copy(request, bus, display, tally, sftp, logins, observers, metrics)
        return code
    except BaseException as exc:
        error = str(exc) if isinstance(exc, Exception) else "interrupted"
        raise
    finally:
        if logins is not None:
            logins.discard()
        summary = {
            **_run_summary(request, "copy"),
            **tally.summary(time.monotonic() - started),
        }
        if error is not None:
            summary["exit_code"] = EXIT_FAILED
        observers.end(observed, summary, ok=error is None and code == EXIT_OK, error=error)
        await observers.close()


async def _copy(
    request: CopyRequest,
    bus: EventBus,
    display: ConsoleProgress,
    tally: RunTally,
    sftp: SftpPool | None,
    logins: Logins | None,
    observers: Observers,
    metrics: SnapshotMetrics,
) -> int:
    run = request.run
    bus.subscribe(say_kept_rows)
    async with (
        _open_queue(request, bus, sftp) as queue,
        exporting(
            bus,
            queue.buffers,
            push_gateway_url=None if run.dry_run else request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=warn,
            metrics=metrics,
        ),
    ):
        await _check_destination(queue.s3, request)
        if logins is not None:
            await logins.wait()
            queue.sftp.announce_links()  # measured before the metrics listened
        settle_heap()
        streaming = (
            not run.dry_run and not run.gate.active and can_stream(request.sources, request.dest)
        )
        if not streaming:
            return await _copy_selected(request, queue, display, tally, observers)
        if request.options.conflict is not ConflictPolicy.OVERWRITE:
            # The keys come as the listing streams: one listing of the destination decides
            # a rerun's files (rclone's way), a HEAD each only beyond its page budget.
            await queue.destination.preload_prefix(request.dest.bucket, _listing_prefix(request))
        async with opened_manifest(run, queue, _spool_dir()) as manifest:
            json_lines = JsonLines()
            copy = CopyRun(
                queue,
                manifest=manifest,
                source_action=run.source_action,
                on_outcome=outcome_printer(request),
                on_file=_file_printer(request, queue, tally, json_lines),
                observer=_row_observer(observers, request),
            )
            try:
                with display:  # the one clock of the progress and of the summary
                    roots = [(s.endpoint.display, source_root(s.path)) for s in request.sources]
                    listed = stream_plan(
                        queue.sftp, request.sources, request.dest, exact_key_hint=_EXACT_KEY_HINT
                    )
                    report = await copy.run_stream(
                        _filtered(listed, request, roots, tally),
                        root_of=lambda job: root_of(job, roots),
                        lookahead=LOOKAHEAD,
                    )
            finally:
                json_lines.flush()
            seconds = display.elapsed
    code = print_report(request, tally, report, seconds)
    if manifest is not None and manifest.upload_error:
        return EXIT_FAILED  # a manifest that lacks rows is a failed run
    return code


async def _copy_selected(
    request: CopyRequest,
    queue: TransferQueue,
    display: ConsoleProgress,
    tally: RunTally,
    observers: Observers,
) -> int:
    """The copy that lists everything first (a readiness gate, sources whose keys could
    collide, ``--dry-run``): the engine's nightly run, shown as it goes."""
    if request.run.dry_run:
        queue.bus.subscribe(plan_row_printer(request.json))

    def copy_starts(event: EngineEvent) -> None:
        if isinstance(event, RunSelected):
            display.start()  # the clock of the progress and of the summary

    queue.bus.subscribe(copy_starts)
    json_lines = JsonLines()
    try:
        report = await run_nightly(
            queue,
            request.sources,
            request.dest,
            request.run,
            rules=PlanRules(exact_key_hint=_EXACT_KEY_HINT),
            spool_dir=_spool_dir(),
            on_file=_file_printer(request, queue, tally, json_lines),
            on_outcome=outcome_printer(request),
            observer=_row_observer(observers, request),
        )
    finally:
        json_lines.flush()
        display.stop()
    if report.plan is not None:
        print_plan_totals(report.plan, request.json)
        return EXIT_OK
    tally.excluded = len(report.excluded)
    report.results = []  # counted in the tally already
    code = print_report(request, tally, report, display.elapsed)
    if report.manifest_upload_error:
        return EXIT_FAILED  # a manifest that lacks rows is a failed run
    return code


def _file_printer(
    request: CopyRequest, queue: TransferQueue, tally: RunTally, json_lines: JsonLines
) -> Callable[[FileJob, TransferResult], None]:
    """Counts each file's result as it arrives, and with ``--json`` prints its record
    (flushed by ``json_lines`` in batches; the caller flushes it before the summary)."""

    def on_file(job: FileJob, result: TransferResult) -> None:
        tally.add(result)
        tally.most_held = max(tally.most_held, len(queue.transfers))
        if request.json:
            server = queue.sftp.server_profile(job.endpoint)
            json_lines.write(json.dumps(result_record(result, server), ensure_ascii=False))

    return on_file


def _spool_dir() -> Path:
    """Where an ``s3://`` manifest's rows wait for their upload."""
    return state_dir() / "manifests"


_EXACT_KEY_HINT = "end DEST with / to copy into a prefix"


def _row_observer(observers: Observers, request: CopyRequest) -> ObservedRun | None:
    """The current run, told each file's row, when a manifest (its rows carry the run id)
    or lineage needs the rows; otherwise none (a row costs a HEAD)."""
    if observers.current is None or (not request.run.manifest and observers.lineage is None):
        return None
    return observers.current


def _listing_prefix(request: CopyRequest) -> str:
    """The destination prefix every key of the copy starts with: DEST's prefix, or for an
    exact key, the key itself (a listing of it finds the one object or nothing)."""
    return request.dest.key


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


async def run_watch(
    request: CopyRequest,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] | None = None,
    max_polls: int | None = None,
    after_poll: Callable[[PollReport], None] | None = None,
) -> int:
    """Poll the sources every ``request.watch_every_seconds`` until ``stop``; push metrics
    while it runs. Exit 0 when stopped (a file's failure is retried at the next poll).

    Each poll is a run (its own run id, lineage events and hooks); drop expectations are
    checked after each poll against ``clock`` (tests pass theirs), and a deadline that
    passed unmet fires the ``late`` hook once. ``after_poll`` is told each poll's report
    once all of that is done."""
    run = request.run
    bus = EventBus()
    observers = _observers(request, "watch")
    if clock is not None:
        observers.clock = clock
    if observers.json_log is not None:
        bus.subscribe(observers.json_log.on_event)
    elif not request.quiet:
        bus.subscribe(NoticePrinter(ConsoleProgress(bus, enabled=False)))
    bus.subscribe(say_kept_rows)
    metrics = SnapshotMetrics(directions=(Direction.SFTP_TO_S3,))
    drops = WatchDrops(
        observers, metrics.drops, Direction.SFTP_TO_S3, json_records=request.json, warn=warn
    )
    poll_started = [time.monotonic()]

    def observe_poll(number: int) -> ObservedRun:
        poll_started[0] = time.monotonic()
        observed = observers.begin({**_run_summary(request, "watch"), "poll": number})
        metrics.drops.run(observed.run_id, "watch")
        return observed

    sources = [WatchSource(s.endpoint, s.path) for s in request.sources]
    state = WatchState.for_watch(
        state_dir() / "watch", [f"{s.endpoint.display}{s.path}" for s in sources], request.dest
    )
    every = request.watch_every_seconds or 60.0
    for note in run.file_filter.notes:
        warn(note)

    def on_file(job: FileJob, result: TransferResult) -> None:  # as each file lands
        if result.status is TransferState.DONE:
            observers.file_landed(job.path)
        if observers.json_log is not None:
            pass  # the JSON log has the file's object already
        elif request.json:
            print(json.dumps(result_record(result), ensure_ascii=False), flush=True)
        elif not request.quiet or result.status is TransferState.FAILED:
            say(f"{result.source} {status_text(result)}")

    manifest: Manifest | None = None

    def on_poll(poll: PollReport) -> None:
        for error in poll.errors:
            warn(error)
        if manifest is not None and manifest.failure and not stop.is_set():
            # Rows cannot be written: every later file would land without one. Stop.
            say(f"the watch stops: {manifest.failure}")
            stop.set()
        if observers.current is not None:
            failed = len(poll.run.failed)
            summary = {
                **_run_summary(request, "watch"),
                "poll": poll.number,
                "listed": poll.listed,
                "copied": sum(r.status is TransferState.DONE for r in poll.run.results),
                "failed": failed,
                "waiting": len(poll.run.waiting),
                "seconds": round(time.monotonic() - poll_started[0], 3),
                "errors": poll.errors,
            }
            observers.end(observers.current, summary, ok=not failed and not poll.errors)
        drops.after_poll()
        if after_poll is not None:
            after_poll(poll)
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
            queue.buffers,
            push_gateway_url=request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=warn,
            metrics=metrics,
        ),
    ):
        where = f"state in {state.path}"
        try:
            await check_bucket(queue.s3, request.dest.bucket)
            settle_heap()  # the imports and the S3 client live as long as the watch
            async with opened_manifest(run, queue, _spool_dir()) as manifest:
                if not request.quiet:
                    say(f"watching {len(sources)} source(s) every {every:g} s; {where}")
                watcher = Watcher(
                    queue,
                    sources,
                    request.dest,
                    run,
                    state=state,
                    every_seconds=every,
                    manifest=manifest,
                    hooks=WatchHooks(
                        on_file=on_file,
                        on_outcome=outcome_printer(request),  # as copy reports them
                        on_poll=on_poll,
                        observe_poll=observe_poll,
                    ),
                )
                try:
                    polls = await watcher.run(stop, max_polls=max_polls)
                finally:
                    state.close()  # the next watch of these sources may start
        finally:
            state.close()  # (a no-op unless the bucket or the manifest failed first)
            await observers.close()
    if not request.quiet:
        say(f"stopped after {polls} poll(s); {len(state)} file version(s) shipped in total")
    if manifest is not None and (manifest.failure or manifest.upload_error):
        return EXIT_FAILED  # a manifest that lacks rows is a failed run
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
