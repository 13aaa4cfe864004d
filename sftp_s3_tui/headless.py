"""The headless front: runs a ``copy`` or ``cleanup`` request on the engine the TUI uses."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .engine.config import ConflictPolicy
from .engine.errors import S3Error
from .engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    StoreChecked,
    TransferFinished,
    TransferNotice,
    TransferQueued,
    TransferResult,
    TransferStarted,
    TransferState,
)
from .engine.nightly.manifest import Manifest
from .engine.nightly.run import CopyRun, RunReport
from .engine.nightly.source_actions import SourceOutcome
from .engine.nightly.watch import PollReport, WatchSource, WatchState, watch
from .engine.plan.filters import source_root
from .engine.plan.preview import CopyPlan, PlannedFile, preview_copy
from .engine.plan.selection import root_of, select_planned
from .engine.plan.sources import FileJob, can_stream, plan_copy, stream_plan
from .engine.resume.journal import Journal
from .engine.resume.stale_uploads import abort_stale, list_stale
from .engine.s3.operations import S3Client, check_bucket, open_client
from .engine.sftp.pool import Logins, SftpPool
from .engine.sftp.server_profile import ServerProfile
from .engine.transfer.queue import TransferQueue
from .engine.units import format_duration, format_size, format_speed
from .metrics import SnapshotMetrics, exporting
from .observe.expectations import DropStatus
from .observe.session import ObservedRun, Observers
from .paths import journal_dir, state_dir
from .redaction import register_secret
from .requests import EXIT_FAILED, EXIT_OK, CleanupRequest, CopyRequest
from .tally import FileCounts

if TYPE_CHECKING:  # rich is imported only when a live block is shown (~0.1 s of start-up)
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live

_MARKS = {"done": "✓", "skipped": "→", "failed": "✗", "cancelled": "✗"}


def status_text(result: TransferResult) -> str:
    """``cancelled (unfinished upload aborted)``: the status, then the message without the
    status word it may start with (not "cancelled (cancelled; …)")."""
    status = result.status.value
    message = result.message or ""
    if message.startswith(status):
        rest = message[len(status) :]
        if not rest.strip(" ;:"):
            return status
        if not rest.startswith((";", ":")):
            return f"{status}{rest}"  # "cancelled before it started"
        message = rest.lstrip(" ;:")
    return f"{status} ({message})" if message else status


class JsonLines:
    """``--json`` records of a copy, one line per file, flushed at most every
    :attr:`FLUSH_SECONDS` (and before any other output: everything goes through stdout's
    one buffer, in order). A flush per file was a write(2) per file on the event loop, and
    a reader slow to drain the pipe held the whole copy at every line."""

    FLUSH_SECONDS = 0.1

    def __init__(self) -> None:
        self._pending: asyncio.TimerHandle | None = None

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        sys.stdout.flush()


class ConsoleProgress:
    """The live progress block on stderr, driven by engine events, and its one clock.

    Like rclone ``-P``: one unit family (MiB, MiB/s), every line cut to the terminal's width
    (80 columns fit), and the files in flight listed under the totals, each with its own
    share; beyond rclone, the files done / total, errors and retries on the totals line. A
    line per finished file is printed above it. The rate is the bytes sent over the time
    since :meth:`__enter__`, the same clock the summary reads (:attr:`elapsed`), so the last
    rate shown and the summary's agree.
    """

    #: Files in flight listed by name at most; the rest are counted ("and N more").
    SHOWN_IN_FLIGHT = 4
    BAR_WIDTH = 20

    def __init__(self, bus: EventBus, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console: Console | None = None
        self.live: Live | None = None
        if enabled:  # rich only for a live block: --json and pipes start without it
            from rich.console import Console
            from rich.live import Live

            self.console = console or Console(stderr=True)
            self.live = Live(
                _Rendered(self),
                console=self.console,
                auto_refresh=True,
                refresh_per_second=4,
                transient=True,  # the summary line says where it ended
            )  # stdout and stderr written meanwhile go above the block (rich redirects them)
        self.started: float | None = None
        self.stopped: float | None = None
        self._names: dict[int, str] = {}
        #: Files whose parts are moving: name, size and bytes sent so far, by transfer id.
        self.in_flight: dict[int, _FileProgress] = {}
        self.files = self.done = self.errors = self.retries = 0
        self.total_bytes = self.sent_bytes = 0
        if enabled:
            bus.subscribe(self._on_event)

    def __enter__(self) -> ConsoleProgress:
        self.started = time.monotonic()
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = time.monotonic()
        if self.live is not None:
            self.live.__exit__(None, None, None)

    @property
    def elapsed(self) -> float:
        """Seconds the display ran (so far): the clock of the rate and of the summary."""
        if self.started is None:
            return 0.0
        return (self.stopped or time.monotonic()) - self.started

    def print(self, text: str) -> None:
        """A line above the live block (or plain stderr when there is none)."""
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def lines(self) -> list[str]:
        """The block as text: the totals, then the files in flight."""
        elapsed = self.elapsed
        total = max(self.total_bytes, self.sent_bytes)
        share = self.sent_bytes / total if total else 0.0
        filled = round(share * self.BAR_WIDTH)
        bar = "█" * filled + "░" * (self.BAR_WIDTH - filled)
        # The average since the start (the summary's figure); within the first second it
        # would be noise. An ETA only once a few seconds have told the rate.
        rate = self.sent_bytes / elapsed if elapsed >= 1 else 0.0
        left = total - self.sent_bytes
        speed = format_speed(rate) if elapsed >= 1 else "-/s"
        eta = f"ETA {format_duration(left / rate)}" if rate > 0 and elapsed >= 3 else "ETA -"
        head = (
            f"{share:4.0%} {bar} {format_size(self.sent_bytes)} / {format_size(total)}"
            f"  {speed}  {eta}"
        )
        counts = (
            f"files {self.done}/{self.files} · errors {self.errors} · retries {self.retries}"
            f" · {format_duration(elapsed)}"
        )
        lines = [head, counts]
        moving = list(self.in_flight.values())
        for item in moving[: self.SHOWN_IN_FLIGHT]:
            part = item.sent / item.size if item.size else 0.0
            lines.append(f"  {part:4.0%} {format_size(item.size):>10}  {item.name}")
        if len(moving) > self.SHOWN_IN_FLIGHT:
            lines.append(f"  and {len(moving) - self.SHOWN_IN_FLIGHT} more in flight")
        return lines

    def _refresh(self) -> None:
        if self.live is not None and self.live.is_started:
            self.live.refresh()

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self._names[event.transfer_id] = event.key.rsplit("/", 1)[-1]
            self.files += 1
            self.total_bytes += event.size
        elif isinstance(event, PartChanged):
            item = self.in_flight.get(event.transfer_id)
            if item is None:
                name = self._names.get(event.transfer_id, str(event.transfer_id))
                item = self.in_flight[event.transfer_id] = _FileProgress(name)
            if event.state is PartState.DONE:
                item.sent += event.size
                self.sent_bytes += event.size
            elif event.state is PartState.RETRIED:
                self.retries += 1
        elif isinstance(event, TransferStarted):
            item = self.in_flight.setdefault(
                event.transfer_id,
                _FileProgress(self._names.get(event.transfer_id, str(event.transfer_id))),
            )
            item.size = event.size
        elif isinstance(event, TransferFinished):
            self._finished(event)
        else:
            return
        self._refresh()

    def _finished(self, event: TransferFinished) -> None:
        result = event.result
        self.done += 1
        item = self.in_flight.pop(event.transfer_id, None)
        sent = item.sent if item is not None else 0
        if result.status is TransferState.DONE:
            # Parts a resume found already uploaded count once the file is verified, so the
            # bar ends where the summary's bytes do.
            self.sent_bytes += max(0, result.bytes - sent)
        else:
            # A skipped or failed file leaves the total: the bar measures what is sent.
            self.total_bytes -= result.bytes
            self.errors += result.status is not TransferState.SKIPPED
        name = self._names.pop(event.transfer_id, result.key)
        self.print(f"{_MARKS[result.status]} {name} {status_text(result)}")


@dataclass
class _FileProgress:
    """One file in flight on the progress block."""

    name: str
    size: int = 0
    sent: int = 0


class _Rendered:
    """The progress block as a rich renderable, every line cut to the console's width (a
    wrapped line would scroll the live block and leave copies of itself behind)."""

    def __init__(self, display: ConsoleProgress) -> None:
        self.display = display

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        width = options.max_width
        for line in self.display.lines():
            text = Text(line, no_wrap=True, overflow="ellipsis")
            text.truncate(width, overflow="ellipsis")
            yield text


class NoticePrinter:
    """Prints notices (a resume, a restart, a raised part size) on stderr: news to the user.

    A store's checksum check (done once per store and bucket) is a line of its own, said
    once: it is about the store, not about the file that happened to come first.
    """

    def __init__(self, display: ConsoleProgress) -> None:
        self.display = display
        self.keys: dict[int, str] = {}

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self.keys[event.transfer_id] = f"s3://{event.bucket}/{event.key}"
        elif isinstance(event, TransferFinished):
            self.keys.pop(event.transfer_id, None)  # held only while a file is under way
        elif isinstance(event, StoreChecked):
            self.display.print(f"sftp-s3-tui: store: {event.capabilities.summary()}")
        elif isinstance(event, TransferNotice):
            where = self.keys.get(event.transfer_id, f"transfer {event.transfer_id}")
            self.display.print(f"sftp-s3-tui: {where}: {event.message}")


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


class RunTally(FileCounts):
    """A run's summary from running counts: nothing per file is kept but the first
    :data:`FAILED_LINES` failures (every one is a ``--json`` row as it happens)."""

    def __init__(self) -> None:
        super().__init__()
        self.excluded = 0
        self.failures: list[TransferResult] = []
        #: Why files were skipped (the conflict policy's reasons: a handful of texts).
        self.skip_reasons: Counter[str] = Counter()
        #: The most transfer records the queue held at once (a check that they stay bounded).
        self.most_held = 0

    def add(self, result: TransferResult) -> None:
        self.count(result.status, result.bytes)
        if result.status is TransferState.SKIPPED:
            self.skip_reasons[result.message or "skipped"] += 1
        elif result.status is not TransferState.DONE and len(self.failures) < FAILED_LINES:
            self.failures.append(result)


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


#: The running command's observers while ``--log-format json`` is on: warnings and notices
#: then go out as JSON objects.
_json_observers: Observers | None = None


def _warn(text: str) -> None:
    if _json_observers is not None and _json_observers.json_log is not None:
        _json_observers.json_log.log("warning", "warning", message=text)
        return
    print(f"sftp-s3-tui: warning: {text}", file=sys.stderr)


def _say(text: str) -> None:
    if _json_observers is not None and _json_observers.json_log is not None:
        _json_observers.json_log.log("notice", message=text)
        return
    print(f"sftp-s3-tui: {text}", file=sys.stderr, flush=True)


def _observers(request: CopyRequest, command: str) -> Observers:
    """The command's lineage, hooks, JSON log and drop trackers (no-ops when unset)."""
    global _json_observers
    gate = request.run.gate
    dry_run = request.run.dry_run  # a plan moves nothing: no lineage, no pings
    observers = Observers(
        replace(request.observe, hook_url=None) if dry_run else request.observe,
        lineage=not dry_run,
        job_name=f"{command}:{request.dest}",
        job_type="COPY" if command == "copy" else "WATCH_POLL",
        gate=_describe_gate(gate) if gate.active else None,
        on_warning=_warn,
    )
    _json_observers = observers if observers.json_log is not None else None
    return observers


def _describe_gate(gate: Any) -> str:
    parts = []
    if gate.min_age_seconds:
        parts.append(f"min-age {gate.min_age_seconds:g}s")
    if gate.stable_seconds:
        parts.append(f"stable {gate.stable_seconds:g}s")
    if gate.done_suffix:
        parts.append(f"done-file {gate.done_suffix}")
    return ", ".join(parts)


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


async def _open_manifest(request: CopyRequest, queue: TransferQueue) -> Manifest | None:
    target = request.run.manifest
    if not target:
        return None
    return await Manifest.open(target, s3=queue.s3, spool_dir=state_dir() / "manifests")


def _kept_rows(manifest: Manifest) -> str:
    return (
        f"the manifest's rows were kept in {manifest.path} (the next run with --manifest "
        f"{manifest.target} merges them): {manifest.upload_error}"
    )


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
            note = f" ({outcome.note})" if outcome.note else ""
            _say(f"{outcome.path}: {outcome.action}{where}{note}")

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
    _settle_heap()  # what the imports built; again once connected
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
        _warn(note)
    started = time.monotonic()
    observed = observers.begin(_run_summary(request, "copy"))
    metrics = SnapshotMetrics()
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
    async with (
        _open_queue(request, bus, sftp) as queue,
        exporting(
            bus,
            queue.pool,
            push_gateway_url=None if run.dry_run else request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=_warn,
            metrics=metrics,
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
        if streaming and request.options.conflict is not ConflictPolicy.OVERWRITE:
            # The keys come as the listing streams: one listing of the destination decides
            # a rerun's files (rclone's way), a HEAD each only beyond its page budget.
            await queue.destination.preload_prefix(request.dest.bucket, _listing_prefix(request))
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

        json_lines = JsonLines()

        def on_file(job: FileJob, result: TransferResult) -> None:
            tally.add(result)
            tally.most_held = max(tally.most_held, len(queue.transfers))
            if request.json:
                server = queue.sftp.server_profile(job.endpoint)
                json_lines.write(json.dumps(result_record(result, server), ensure_ascii=False))

        copy = CopyRun(
            queue,
            manifest=manifest,
            source_action=run.source_action,
            on_outcome=_outcome_printer(request),
            on_file=on_file,
            observer=_row_observer(observers, manifest),
        )
        try:
            with display:  # the one clock of the progress and of the summary
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
            seconds = display.elapsed
        finally:
            json_lines.flush()
            if manifest is not None:
                await manifest.close()
                if manifest.upload_error:
                    _say(_kept_rows(manifest))
    code = _report(request, tally, report, seconds)
    if manifest is not None and manifest.upload_error:
        return EXIT_FAILED  # a manifest that lacks rows is a failed run
    return code


_EXACT_KEY_HINT = "end DEST with / to copy into a prefix"


def _row_observer(observers: Observers, manifest: Manifest | None) -> ObservedRun | None:
    """The current run, told each file's row, when a manifest (its rows carry the run id)
    or lineage needs the rows; otherwise none (a row costs a HEAD)."""
    if observers.current is None or (manifest is None and observers.lineage is None):
        return None
    return observers.current


def _listing_prefix(request: CopyRequest) -> str:
    """The destination prefix every key of the copy starts with: DEST's prefix, or for an
    exact key, the key itself (a listing of it finds the one object or nothing)."""
    return request.dest.key


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
    if _json_observers is not None:  # each failure and the summary are JSON objects already
        for job, reason in report.waiting:
            _say(f"{job.source}: waiting: {reason}")
        return EXIT_FAILED if tally.failed else EXIT_OK
    for result in tally.failures:
        print(f"sftp-s3-tui: {result.source}: {result.message}", file=sys.stderr)
    for line in report.unrecorded:  # waiting files whose row could not be written
        _say(line)
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
        for line in summary_lines(tally, seconds, waiting=len(report.waiting)):
            print(line, file=sys.stderr)
    return EXIT_FAILED if tally.failed or report.unrecorded else EXIT_OK


def summary_lines(tally: RunTally, seconds: float, *, waiting: int = 0) -> list[str]:
    """The end of a CLI copy for people: what moved, at what rate, and what was skipped and
    why (a rerun that sent nothing says so, not "0.0 MiB in 0.2s")."""
    extra = f", {waiting} waiting" if waiting else ""
    extra += f", {tally.excluded} excluded" if tally.excluded else ""
    skipped = ""
    if tally.skip_reasons:
        reasons = "; ".join(
            f"{count} {reason}" if len(tally.skip_reasons) > 1 else reason
            for reason, count in tally.skip_reasons.most_common(3)
        )
        more = len(tally.skip_reasons) - 3
        skipped = f" (already there: {reasons}{f'; {more} other reasons' if more > 0 else ''})"
    if tally.copied == 0 and tally.failed == 0:
        if tally.skipped:
            return [f"nothing to send: {tally.skipped} skipped{skipped}{extra}"]
        return [f"nothing to send: no file{extra}"]
    rate = tally.bytes / seconds if seconds > 0 else 0.0
    return [
        f"{tally.copied} copied, {tally.skipped} skipped, {tally.failed} failed{extra}; "
        f"{format_size(tally.bytes)} in {format_duration(seconds)} ({format_speed(rate)})",
        *([f"{tally.skipped} skipped{skipped}"] if tally.skipped else []),
    ]


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
    metrics = SnapshotMetrics()
    observers.start_drops()
    metrics.drops.show(observers.check_drops())
    poll_started = [time.monotonic()]

    def observe_poll(number: int) -> ObservedRun:
        poll_started[0] = time.monotonic()
        observed = observers.begin({**_run_summary(request, "watch"), "poll": number})
        metrics.drops.run(observed.run_id, "watch")
        return observed

    def on_late(drop: DropStatus) -> None:
        if observers.json_log is None:
            _warn(f"drop {drop.line()}")

    sources = [WatchSource(s.endpoint, s.path) for s in request.sources]
    state = WatchState.for_watch(
        state_dir() / "watch", [f"{s.endpoint.display}{s.path}" for s in sources], request.dest
    )
    every = request.watch_every_seconds or 60.0
    for note in run.file_filter.notes:
        _warn(note)

    def on_file(job: FileJob, result: TransferResult) -> None:  # as each file lands
        if result.status is TransferState.DONE:
            observers.file_landed(job.path)
        if observers.json_log is not None:
            pass  # the JSON log has the file's object already
        elif request.json:
            print(json.dumps(result_record(result), ensure_ascii=False), flush=True)
        elif not request.quiet or result.status is TransferState.FAILED:
            _say(f"{result.source} {status_text(result)}")

    manifest: Manifest | None = None

    def on_poll(poll: PollReport) -> None:
        for error in poll.errors:
            _warn(error)
        if manifest is not None and manifest.failure and not stop.is_set():
            # Rows cannot be written: every later file would land without one. Stop.
            _say(f"the watch stops: {manifest.failure}")
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
        drops = observers.check_drops(on_late)
        metrics.drops.show(drops)
        if request.json and drops:
            print(json.dumps({"drops": [d.as_json() for d in drops]}), flush=True)
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
            queue.pool,
            push_gateway_url=request.push_gateway,
            metrics_port=request.metrics_port,
            on_warning=_warn,
            metrics=metrics,
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
                on_outcome=_outcome_printer(request),  # as copy reports them
                max_polls=max_polls,
                observe_poll=observe_poll,
            )
        finally:
            state.close()  # the next watch of these sources may start
            if manifest is not None:
                await manifest.close()
                if manifest.upload_error:
                    _say(_kept_rows(manifest))
            await observers.close()
    if not request.quiet:
        _say(f"stopped after {polls} poll(s); {len(state)} file version(s) shipped in total")
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
