"""One connection as the TUI sees it: the queue (one SSH connection, one S3 client), the sampler
and, when asked for, the Prometheus exporter. Nothing here imports Textual."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import HTTPClientError
from botocore.parsers import ResponseParserError

from ..engine.addresses import S3Location
from ..engine.aio import ROUND_BUDGET_SECONDS
from ..engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint, TransferOptions
from ..engine.errors import S3Error, TransferError, UsageError
from ..engine.events import (
    EngineEvent,
    EventBus,
    TransferFinished,
    TransferQueued,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from ..engine.nightly.options import RunOptions
from ..engine.nightly.run import RETRYABLE, CopyRun, select_files
from ..engine.plan.conflicts import Action, DestinationIndex
from ..engine.plan.preview import CopyPlan, preview_copy
from ..engine.plan.selection import Selection
from ..engine.plan.sources import FileJob, PlanSource, exact_key_error
from ..engine.resume.journal import Journal, JournalEntry
from ..engine.s3.operations import S3Entry, check_bucket, list_buckets, list_prefix
from ..engine.sftp.entries import RemoteEntry
from ..engine.sftp.host_keys import remember_host_key
from ..engine.sftp.pool import SftpPool
from ..engine.transfer.queue import Transfer, TransferQueue
from ..metrics import MetricsExporter, Sampler
from ..observe.expectations import Expectation
from ..observe.options import ObserveOptions
from ..observe.session import ObservedRun, Observers
from ..paths import state_dir
from ..profiles import DeliverySettings
from .deliveries import Deliveries
from .watches import RunningWatch, Watches, WatchSpec

log = logging.getLogger(__name__)

#: How long the TCP probe of an S3 endpoint waits before saying it does not answer.
PROBE_TIMEOUT_SECONDS = 5.0
#: At most this many destination entries are read to mark SFTP files already there.
MARKS_LIMIT = 20_000
#: How long closing waits for the copies' last lineage events and hooks to go out.
OBSERVE_CLOSE_SECONDS = 30.0


@dataclass
class TransferSpan:
    """The session's transfer time and bytes, as averages should count them: time during which
    some transfer was running (paused and idle time left out), and bytes resumed from an
    earlier run (which this session did not send)."""

    first_start: float | None = None
    last_finish: float | None = None
    #: Bytes of parts that landed in an earlier run, per transfer (from its latest start).
    resumed_bytes: dict[int, int] = field(default_factory=dict)
    _active_total: float = 0.0
    _active_since: float | None = None
    _running: set[int] = field(default_factory=set)
    #: Each transfer's own running time on the same clock (pauses left out too), so its
    #: details never say "Running for 18s" beside an overall "running 14s".
    _file_total: dict[int, float] = field(default_factory=dict)
    _file_since: dict[int, float] = field(default_factory=dict)

    def on_event(self, event: EngineEvent) -> None:
        if isinstance(event, TransferStarted):
            self.resumed_bytes[event.transfer_id] = sum(
                min(event.part_size, event.size - event.part_size * (number - 1))
                for number in event.resumed_parts
            )
        elif isinstance(event, TransferStateChanged):
            if event.state is TransferState.RUNNING:
                if self.first_start is None:
                    self.first_start = event.at
                self._running.add(event.transfer_id)
                self._file_since.setdefault(event.transfer_id, event.at)
            else:
                self._running.discard(event.transfer_id)
                self._file_stopped(event.transfer_id, event.at)
            self._clock(event.at)
        elif isinstance(event, TransferFinished):
            self.last_finish = event.at
            self._running.discard(event.transfer_id)
            self._file_stopped(event.transfer_id, event.at)
            self._clock(event.at)

    def _file_stopped(self, transfer_id: int, at: float) -> None:
        since = self._file_since.pop(transfer_id, None)
        if since is not None:
            self._file_total[transfer_id] = self._file_total.get(transfer_id, 0.0) + at - since

    def transfer_seconds(self, transfer_id: int, now: float | None = None) -> float | None:
        """Seconds transfer ``transfer_id`` has been running (None: it never ran)."""
        total = self._file_total.get(transfer_id)
        since = self._file_since.get(transfer_id)
        if since is not None:
            total = (total or 0.0) + (time.monotonic() if now is None else now) - since
        return total

    def _clock(self, at: float) -> None:
        if self._running and self._active_since is None:
            self._active_since = at
        elif not self._running and self._active_since is not None:
            self._active_total += at - self._active_since
            self._active_since = None

    @property
    def seconds(self) -> float | None:
        """From the first start to the last finish (wall time, pauses included)."""
        if self.first_start is None or self.last_finish is None:
            return None
        return self.last_finish - self.first_start

    def active_seconds(self, now: float | None = None) -> float:
        """Seconds during which at least one transfer was running."""
        running = 0.0
        if self._active_since is not None:
            running = (time.monotonic() if now is None else now) - self._active_since
        return self._active_total + running


@dataclass(frozen=True)
class Target:
    """Where to connect: endpoints, options, and where to start browsing."""

    name: str
    sftp: SftpEndpoint
    s3: S3Endpoint
    options: TransferOptions
    start_folder: str = "/"
    bucket: str | None = None
    prefix: str = ""
    #: How a delivery (d / D) to this server is checked: the profile's ``[delivery]``.
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    @property
    def label(self) -> str:
        """The title bar text: ``name: sftp://… → s3 (…)``."""
        return f"{self.name}: {self.sftp.display} → s3 ({self.s3.display})"


class Session:
    """The engine objects of one connection; open with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        target: Target,
        *,
        journal: Journal | None = None,
        delivery_record_dir: Path | None = None,
        sampler_interval: float = 0.5,
        push_gateway: str | None = None,
        metrics_port: int | None = None,
        on_metrics_warning: Callable[[str], None] | None = None,
        memory_note: str = "",
        observe: ObserveOptions | None = None,
        on_observe_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        #: The profile's hooks (``[notify]``); lineage is OpenLineage's own configuration.
        self.observe = observe or ObserveOptions()
        #: Told (on the loop) when a lineage endpoint or hook does not answer.
        self.on_observe_warning = on_observe_warning
        #: Each copy action's run, until its files have finished and its end is sent.
        self._copies: set[asyncio.Task[None]] = set()
        #: The run following each unfinished transfer of a copy action (a retry moves it).
        self._run_of: dict[int, CopyRun] = {}
        #: Said beside the RSS figure (the demo's in-process S3 holds objects in memory).
        self.memory_note = memory_note
        self.bus = EventBus()
        self.span = TransferSpan()
        self.bus.subscribe(self.span.on_event)
        #: Transfers queued and not finished, kept from events (so "all finished?" never
        #: walks every transfer: that was O(n²) over a queue of many files).
        self.unfinished: set[int] = set()
        self.bus.subscribe(self._track_unfinished)
        # Each copy's jobs carry the policy its plan was decided under (see :meth:`submit`);
        # what comes without one (a watch's files, a resumed upload) runs if-different, so a
        # same-size object is compared by sha256 rather than re-uploaded when identical.
        queue_options = replace(target.options, conflict=ConflictPolicy.IF_DIFFERENT)
        # Browsing a far host needs one connection; a transfer opens the others it needs.
        pool = SftpPool(early_logins=False)
        # The TUI draws and reads keys on the transfers' loop: their heavy steps share it.
        self.queue = TransferQueue(
            target.s3,
            queue_options,
            bus=self.bus,
            journal=journal,
            sftp=pool,
            loop_budget_seconds=ROUND_BUDGET_SECONDS,
        )
        self.journal = journal
        self.sampler = Sampler(
            self.bus, interval=sampler_interval, buffers=self.queue.buffers, history=240
        )
        self.exporter: MetricsExporter | None = None
        if push_gateway or metrics_port is not None:
            self.exporter = MetricsExporter(
                self.sampler,
                push_gateway_url=push_gateway,
                metrics_port=metrics_port,
                on_warning=on_metrics_warning,
            )
        #: Watches started from the TUI; their files are transfers on this queue.
        self.watches = Watches(self.queue, state_dir() / "watch", observers=self.observers)
        #: S3 → SFTP deliveries from the bucket pane: rows on the same bus and list.
        self.deliveries = Deliveries(self.queue, self.bus, delivery_record_dir)
        self._stack = contextlib.AsyncExitStack()
        self._closed = False

    def _track_unfinished(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self.unfinished.add(event.transfer_id)
        elif isinstance(event, TransferStateChanged):
            if event.state.finished:
                self.unfinished.discard(event.transfer_id)
            else:
                self.unfinished.add(event.transfer_id)

    async def open(self) -> None:
        """Open the S3 client and start sampling (the SSH connection opens in :meth:`connect`)."""
        await self._stack.enter_async_context(self.queue)
        await self.sampler.start()
        self._stack.push_async_callback(self.sampler.stop)
        if self.exporter is not None:
            await self.exporter.start()
            self._stack.push_async_callback(self.exporter.stop)

    async def connect(self) -> None:
        """Open the SSH connection; raises ``HostKeyError`` for a key to decide on."""
        await self.queue.sftp.client(self.target.sftp)

    def trust_once(self, key_line: str) -> None:
        """Accept a host key for this session only."""
        sftp = replace(self.target.sftp, trusted_host_keys=(key_line,))
        self.target = replace(self.target, sftp=sftp)

    async def trust_always(self, host: str, port: int, key_line: str) -> None:
        """Record a host key in the endpoint's known_hosts file."""
        path = self.target.sftp.known_hosts_path
        await asyncio.to_thread(remember_host_key, path, host, port, key_line)

    async def close(self) -> None:
        """Cancel unfinished transfers (their uploads are aborted) and close everything."""
        if self._closed:
            return
        self._closed = True
        await self.watches.stop_all()  # each cancels its own poll's uploads first
        await self.deliveries.close()  # temporary files removed while SSH is still open
        await self._stack.aclose()  # the queue cancels what is unfinished: each copy ends
        if self._copies:  # its FAIL event and hook go out (bounded: a dead endpoint waits)
            await asyncio.wait(set(self._copies), timeout=OBSERVE_CLOSE_SECONDS)

    def observers(
        self, job_name: str, job_type: str, expectations: tuple[Expectation, ...] = ()
    ) -> Observers:
        """Lineage (when OpenLineage is configured: ``OPENLINEAGE_URL``, ``openlineage.yml``)
        and the profile's hooks for one copy action or watch, as the CLI's ``copy`` and
        ``watch`` send them. Their warnings come from the notifiers' thread: they are handed
        to the loop."""
        warn = self.on_observe_warning
        on_warning: Callable[[str], None] | None = None
        if warn is not None:
            loop = asyncio.get_running_loop()

            def on_warning(text: str) -> None:
                loop.call_soon_threadsafe(warn, text)

        return Observers(
            replace(self.observe, expectations=expectations),
            job_name=job_name,
            job_type=job_type,
            on_warning=on_warning,
        )

    # browsing ---------------------------------------------------------------------------------
    async def list_dir(self, path: str) -> list[RemoteEntry]:
        return await self.queue.sftp.listdir(self.target.sftp, path)

    async def list_buckets(self) -> list[str]:
        """The buckets; a closed port is told at once and an endpoint that is not S3 plainly."""
        url = self.target.s3.endpoint_url
        if url:
            await probe_endpoint(url)
        try:
            return await list_buckets(self.queue.s3)
        except S3Error as exc:
            if url and isinstance(exc.__cause__, HTTPClientError | ResponseParserError):
                raise S3Error(
                    f"{url} does not answer like an S3 server",
                    "check the Endpoint URL: it must be the S3 API's address and port "
                    "(for MinIO the API port, often :9000, not the web console)",
                ) from exc
            raise

    async def list_prefix(self, bucket: str, prefix: str) -> list[S3Entry]:
        return await list_prefix(self.queue.s3, bucket, prefix, limit=2000)

    async def list_destination(self, bucket: str, prefix: str) -> list[S3Entry]:
        """What is directly under a destination prefix (to mark files already there)."""
        return await list_prefix(self.queue.s3, bucket, prefix, limit=MARKS_LIMIT)

    async def check_bucket(self, bucket: str) -> None:
        await check_bucket(self.queue.s3, bucket)

    # transfers --------------------------------------------------------------------------------
    @property
    def default_conflict(self) -> ConflictPolicy:
        """The conflict policy the plan dialog starts with (the profile's)."""
        return self.target.options.conflict

    async def expand_paths(self, paths: list[str], dest: S3Location) -> list[FileJob]:
        """Files and folders as jobs under ``dest``; a path inside a selected folder counts once
        (as part of the folder)."""
        return (await self.select(paths, dest)).jobs

    async def select(self, paths: list[str], dest: S3Location) -> Selection:
        """The files a copy of ``paths`` to ``dest`` takes, as ``copy`` selects them."""
        if not dest.is_prefix and len(paths) > 1:
            raise exact_key_error(
                len(paths), dest, "end the destination with / to copy into a prefix"
            )
        await self.check_bucket(dest.bucket)
        sources = [PlanSource(self.target.sftp, path) for path in outermost(paths)]
        selection = await select_files(self.queue.sftp, sources, dest, RunOptions())
        if not (selection.jobs or selection.waiting or selection.excluded):
            raise UsageError("Nothing to copy: the selected folders are empty", "")
        return selection

    async def preview(self, selection: Selection, policy: ConflictPolicy) -> CopyPlan:
        """The plan of ``selection`` under ``policy``: the engine's ``copy --dry-run`` plan
        (one listing of the destination, HEADs where it cannot tell; nothing written)."""
        options = replace(self.target.options, conflict=policy)
        return await preview_copy(selection, DestinationIndex(self.queue.s3), options)

    def submit(self, plan: CopyPlan) -> list[Transfer]:
        """Queue the files the plan reads, and (as ``copy`` does) those that cannot be
        copied, so each fails alone with its reason in the queue; skipped, waiting and
        excluded ones are not queued. Each runs under the plan's policy: what the user chose
        to overwrite is overwritten, a skip-existing copy still writes with If-None-Match."""
        queued = [f for f in plan.files if f.action.reads_source or f.action is Action.INVALID]
        return self._copy(
            [replace(f.job, conflict=plan.policy) for f in queued if f.job is not None]
        )

    async def queue_paths(self, paths: list[str], dest: S3Location) -> list[Transfer]:
        """Expand files and folders into jobs under ``dest`` and queue them (overwriting)."""
        jobs = await self.expand_paths(paths, dest)
        return self._copy([replace(j, conflict=ConflictPolicy.OVERWRITE) for j in jobs])

    def _copy(self, jobs: list[FileJob]) -> list[Transfer]:
        """Queue one copy action's files as one run through the engine's :class:`CopyRun`
        (as ``sftp-s3-tui copy`` does): lineage START and the ``/start`` hook now, COMPLETE
        or FAIL and the success or ``/fail`` hook once all its files have finished."""
        return self._observed_run("copy", jobs, lambda run: run.start(Selection(jobs=jobs)))

    def retry(self, transfer_ids: list[int]) -> list[Transfer]:
        """Run failed or cancelled transfers again as a new run of the same copy job: its
        own lineage START / COMPLETE or FAIL and hooks, as the first attempt had."""
        transfers = self.queue.transfers
        jobs = [
            transfers[tid].job
            for tid in transfer_ids
            if tid in transfers and transfers[tid].state in RETRYABLE
        ]
        if not jobs:
            return []
        return self._observed_run("retry", jobs, lambda run: run.retry(transfer_ids))

    def _observed_run(
        self, command: str, jobs: list[FileJob], queue_them: Callable[[CopyRun], list[Transfer]]
    ) -> list[Transfer]:
        """One observed run of ``jobs`` (a copy, a retry, a resume): ``queue_them`` puts
        them on the queue through the run; its end is sent once they have all finished."""
        dest = copy_destination(jobs)
        observers = self.observers(f"copy:{dest}", "COPY")
        summary: dict[str, object] = {
            "command": command,
            "source": self.target.sftp.display,
            "dest": dest,
            "files": len(jobs),
        }
        observed = observers.begin(summary)
        # Rows (a HEAD each when the upload did not return the ETag) only when lineage
        # lists them, as for the CLI.
        run = CopyRun(self.queue, observer=observed if observers.lineage is not None else None)
        transfers = queue_them(run)
        for transfer in transfers:  # a retried file leaves the run that had it
            previous = self._run_of.get(transfer.id)
            if previous is not None and previous is not run:
                previous.release(transfer.id)
            self._run_of[transfer.id] = run
        task = asyncio.create_task(self._end_copy(run, observers, observed, summary))
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)
        return transfers

    async def _end_copy(
        self,
        run: CopyRun,
        observers: Observers,
        observed: ObservedRun,
        summary: dict[str, object],
    ) -> None:
        started = time.monotonic()
        ok, error = False, "the copy was interrupted"
        try:
            report = await run.finished()
            failed = report.failed
            ok = not failed
            summary = {
                **summary,
                "copied": sum(r.status is TransferState.DONE for r in report.results),
                "skipped": sum(r.status is TransferState.SKIPPED for r in report.results),
                "failed": len(failed),
                "seconds": round(time.monotonic() - started, 3),
            }
            if failed:
                first = failed[0]
                error = f"{len(failed)} of {len(report.results)} file(s) failed"
                error += f"; {first.source}: {first.message or first.status.value}"
        finally:
            for tid in run.transfer_ids:
                if self._run_of.get(tid) is run:
                    del self._run_of[tid]
            observers.end(observed, summary, ok=ok, error=None if ok else error)
            await observers.close()

    async def start_watch(self, spec: WatchSpec) -> RunningWatch:
        """Watch ``spec.folder`` on this session's server (the bucket is checked first)."""
        if not spec.dest.is_prefix:
            raise UsageError(
                f"A watch ships many files, but {spec.dest} names one key",
                "end the destination with / to watch into a prefix",
            )
        await self.check_bucket(spec.dest.bucket)
        return self.watches.start(self.target.sftp, spec)

    def resumable(self) -> list[JournalEntry]:
        """Unfinished transfers in the journal that came from this session's SFTP server."""
        records = self.queue.records  # only this store's (and account's) records
        if records is None:
            return []
        prefix = self.target.sftp.display + "/"
        return [e for e in records.resumable() if e.source.startswith(prefix)]

    async def resume(self, entries: list[JournalEntry]) -> list[Transfer]:
        """Queue journal entries again; the engine continues where each upload stopped."""
        jobs = []
        prefix_length = len(self.target.sftp.display)
        for entry in entries:
            path = entry.source[prefix_length:]
            try:
                found = await self.queue.sftp.stat(self.target.sftp, path)
            except TransferError as exc:
                log.warning("cannot resume %s: %s", entry.source, exc)
                continue
            jobs.append(
                FileJob(
                    endpoint=self.target.sftp,
                    path=path,
                    size=found.size,
                    mtime=found.mtime,
                    bucket=entry.bucket,
                    key=entry.key,
                )
            )
        if not jobs:
            return []
        # One run, like a copy action: lineage and hooks hear of the resumed files.
        return self._observed_run("resume", jobs, lambda run: run.start(Selection(jobs=jobs)))


def copy_destination(jobs: list[FileJob]) -> str:
    """Where a copy action's files went, for its lineage job name and hooks: the bucket and
    the folder its keys share (``s3://bucket/in/``), or the one key it wrote."""
    if not jobs:
        return "s3://"
    keys = [job.key for job in jobs]
    if len(set(keys)) == 1 and len(jobs) == 1:
        return f"s3://{jobs[0].bucket}/{keys[0]}"
    folder = posixpath.commonpath([posixpath.dirname(key) or "." for key in keys])
    return f"s3://{jobs[0].bucket}/{folder + '/' if folder not in ('', '.') else ''}"


def outermost(paths: list[str]) -> list[str]:
    """``paths`` without repeats and without those inside another of them (``/a/x`` goes when
    ``/a`` is there: the folder's copy includes it, at the folder's layout)."""
    bare = [p.rstrip("/") or "/" for p in paths]

    def inside(path: str, folder: str) -> bool:
        return path != folder and (folder == "/" or path.startswith(folder + "/"))

    kept: dict[str, str] = {}
    for path, stripped in zip(paths, bare, strict=True):
        if stripped not in kept and not any(inside(stripped, other) for other in bare):
            kept[stripped] = path
    return list(kept.values())


async def probe_endpoint(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Open (and close) one TCP connection to ``url``'s host and port, so a closed port or a
    dead host is reported in moments, naming the URL, rather than after the S3 client's
    retries (13-21 s)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise S3Error(f"The Endpoint URL {url} has a bad port", "e.g. http://host:9000") from exc
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError as exc:
        raise S3Error(
            f"No answer from the S3 endpoint {url} within {timeout:.0f} s",
            "check the Endpoint URL's host and port, and the network or firewall",
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise S3Error(
            f"Cannot reach the S3 endpoint {url}: {reason}",
            "check the Endpoint URL's host and port, and that the S3 server runs",
        ) from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
