"""The nightly run on a queue: copy the selected files, and for each one as it finishes write
its manifest row, then (only if verified and unchanged) move or delete its source.

:func:`run_nightly` is the whole run as ``copy`` and the Airflow operator do it: plan the
sources, select (filters, readiness gate), preload the destination's listing, open the
manifest, copy. :class:`CopyRun` is its last step, which ``watch`` and the TUI call with a
selection of their own; everything per file happens there, in the same order for all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..addresses import S3Location
from ..aio import wait_all
from ..config import ConflictPolicy
from ..errors import ManifestWriteFailed, SourceNotFound
from ..events import (
    EngineEvent,
    FilePlanned,
    ManifestKept,
    RunSelected,
    TransferFinished,
    TransferResult,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from ..plan.preview import CopyPlan, preview_copy
from ..plan.selection import Selection, select_planned
from ..plan.sources import FileJob, PlanSource, plan_copy
from ..s3.operations import head_object
from ..sftp.pool import SftpPool
from ..transfer.queue import Transfer, TransferQueue
from .manifest import Manifest, iso
from .options import RunOptions
from .source_actions import SourceAction, SourceOutcome, apply_source_action

log = logging.getLogger(__name__)

#: What :meth:`CopyRun.retry` queues again (what the queue's own retry accepts).
RETRYABLE = (TransferState.FAILED, TransferState.CANCELLED)


@dataclass
class RunReport:
    """What a run did: a result per file copied or skipped, the waiting ones, the excluded
    ones, and what happened to sources."""

    results: list[TransferResult] = field(default_factory=list)
    waiting: list[tuple[FileJob, str]] = field(default_factory=list)
    excluded: list[tuple[FileJob, str]] = field(default_factory=list)
    outcomes: list[SourceOutcome] = field(default_factory=list)
    manifest_rows: int = 0
    # One line per waiting file whose row could not be written (a copied file whose row
    # failed is a failed result instead).
    unrecorded: list[str] = field(default_factory=list)
    #: A dry run's plan (nothing was copied); None for a run that copied.
    plan: CopyPlan | None = None
    #: Why the manifest could not be uploaded when it closed (its rows kept locally): a
    #: run whose manifest lacks rows failed.
    manifest_upload_error: str | None = None

    @property
    def failed(self) -> list[TransferResult]:
        return [
            r for r in self.results if r.status not in (TransferState.DONE, TransferState.SKIPPED)
        ]


async def host_key_fingerprint(sftp: SftpPool, job: FileJob) -> str | None:
    """The SFTP server's host key fingerprint, as the manifest records it."""
    finder = getattr(sftp, "host_key_fingerprint", None)
    if finder is None:
        return None
    try:
        return str(await finder(job.endpoint))
    except Exception:  # the row is still written without it
        return None


def _server_json(sftp: Any, job: FileJob) -> dict[str, Any] | None:
    """The SFTP server's profile for the manifest row (None when the pool has none)."""
    finder = getattr(sftp, "server_profile", None)
    profile = finder(job.endpoint) if finder is not None else None
    return profile.to_json() if profile is not None else None


def file_row(
    job: FileJob,
    result: TransferResult,
    *,
    part_size: int | None,
    started: float | None,
    finished: float,
    head: dict[str, Any] | None,
    host_key: str | None,
    source_action: str | None,
    server: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest row of one file."""
    endpoint = job.endpoint
    return {
        "kind": "file",
        "status": result.status.value,
        "reason": result.message or None,
        "source": {
            "host": endpoint.host,
            "port": endpoint.port,
            "user": endpoint.username,
            "path": job.path,
            "size": job.size,
            "mtime": job.mtime,
            "mtime_iso": iso(job.mtime),
        },
        "host_key": host_key,
        "server": server,
        "bucket": result.bucket,
        "key": result.key,
        "bytes": result.bytes if result.status is TransferState.DONE else 0,
        "sha256": result.sha256,
        "verified_by": getattr(result, "verified_by", None),
        "etag": (head or {}).get("ETag"),
        "version_id": (head or {}).get("VersionId"),
        "part_size": part_size,
        "parts": result.parts,
        "started": iso(started),
        "finished": iso(finished),
        "source_action": source_action,
    }


def waiting_row(job: FileJob, reason: str) -> dict[str, Any]:
    return {
        "kind": "file",
        "status": "waiting",
        "reason": reason,
        "source": {
            "host": job.endpoint.host,
            "port": job.endpoint.port,
            "user": job.endpoint.username,
            "path": job.path,
            "size": job.size,
            "mtime": job.mtime,
            "mtime_iso": iso(job.mtime),
        },
        "bucket": job.bucket,
        "key": job.key,
        "finished": iso(time.time()),
    }


class RunObserver(Protocol):
    """Told each file's manifest row (lineage, hooks): its ``run_id`` goes into the rows."""

    run_id: str

    def row(self, row: dict[str, Any]) -> None: ...


class CopyRun:
    """Copies a selection on ``queue`` with a manifest and a source action (both optional)."""

    def __init__(
        self,
        queue: TransferQueue,
        *,
        manifest: Manifest | None = None,
        source_action: SourceAction | None = None,
        on_outcome: Callable[[SourceOutcome], None] | None = None,
        on_file: Callable[[FileJob, TransferResult], None] | None = None,
        observer: RunObserver | None = None,
    ) -> None:
        self.queue = queue
        self.manifest = manifest
        self.observer = observer
        self.source_action = source_action or SourceAction()
        self.on_outcome = on_outcome
        self.on_file = on_file
        self._jobs: dict[int, FileJob] = {}
        self._part_size: dict[int, int] = {}
        self._started: dict[int, float] = {}
        self._after: set[asyncio.Task[None]] = set()
        self._final: dict[int, TransferResult] = {}  # results a failed row made failures
        self._host_keys: dict[str, str | None] = {}
        self._selection = Selection()
        self._root_of: Callable[[FileJob], str] = lambda job: self._selection.roots.get(
            job.path, "/"
        )
        self._keep_outcomes = True
        self._ids: list[int] = []  # run()'s transfers, in queue order
        self._pending: set[int] = set()  # this run's transfers not finished yet
        self._all_finished = asyncio.Event()
        self._transfers: list[Transfer] = []  # start()'s, in queue order
        self._unsubscribe: Callable[[], None] = lambda: None
        self.report = RunReport()

    def _on_event(self, event: EngineEvent) -> None:
        tid = event.transfer_id
        # submit() may start transfers before it returns their ids: note every start.
        if isinstance(event, TransferStarted):
            self._part_size[tid] = event.part_size
        elif isinstance(event, TransferStateChanged) and event.state is TransferState.RUNNING:
            self._started.setdefault(tid, time.time())
        elif isinstance(event, TransferFinished) and tid in self._jobs:
            if self.manifest is None and self.observer is None and not self.source_action.active:
                # Nothing to write or do after the copy: no task per file for it.
                self._finish_now(tid, self._jobs[tid], event.result)
            else:
                task = asyncio.create_task(self._finish(tid, event.result))
                self._after.add(task)
                task.add_done_callback(self._after.discard)
            self._pending.discard(tid)
            if not self._pending:
                self._all_finished.set()

    async def run(self, selection: Selection) -> RunReport:
        """Copy ``selection.jobs``; returns when every file's row and source action are done."""
        if self.manifest is not None:
            for job, reason in selection.waiting:
                try:
                    await self.manifest.write(waiting_row(job, reason))
                except ManifestWriteFailed as exc:
                    self.report.unrecorded.append(f"{job.source}: waiting, but {exc.message}")
        self.start(selection)
        return await self.finished()

    def start(self, selection: Selection) -> list[Transfer]:
        """Queue ``selection.jobs`` now and return their transfers (a front that lists them,
        the TUI, needs them at once); :meth:`finished` waits for them. Waiting files' rows
        are :meth:`run`'s to write."""
        self._selection = selection
        self.report.waiting += selection.waiting
        self.report.excluded += selection.excluded
        self._unsubscribe = self.queue.bus.subscribe(self._on_event)
        try:
            # No await between submit and the mapping: no transfer can finish unseen.
            transfers = self.queue.submit(selection.jobs)
        except BaseException:
            self._unsubscribe()
            raise
        for transfer in transfers:
            self._jobs[transfer.id] = transfer.job
        self._ids += [t.id for t in transfers]
        self._transfers = transfers
        # Only this run's transfers: the queue may carry others (the TUI's own copies).
        self._pending = {t.id for t in transfers if not t.state.finished}
        if not self._pending:
            self._all_finished.set()
        return transfers

    def retry(self, transfer_ids: Sequence[int]) -> list[Transfer]:
        """Queue failed or cancelled transfers again as this run's (a TUI retry: a new run
        of the same files, told to lineage and hooks like the first); others are passed
        over. :meth:`finished` waits for them, as for :meth:`start`'s."""
        self._unsubscribe = self.queue.bus.subscribe(self._on_event)
        retried: list[Transfer] = []
        for tid in transfer_ids:
            transfer = self.queue.transfers.get(tid)
            if transfer is None or transfer.state not in RETRYABLE:
                continue
            self._jobs[tid] = transfer.job  # before it can finish: no await until mapped
            self.queue.retry(tid)
            retried.append(transfer)
        self._ids += [t.id for t in retried]
        self._transfers = retried
        self._pending = {t.id for t in retried if not t.state.finished}
        if not self._pending:
            self._all_finished.set()
        return retried

    def release(self, transfer_id: int) -> None:
        """Stop following a transfer another run took over (retried while this one runs)."""
        self._jobs.pop(transfer_id, None)
        self._pending.discard(transfer_id)
        if not self._pending:
            self._all_finished.set()

    async def finished(self) -> RunReport:
        """Wait until every transfer :meth:`start` queued has finished and its row and
        source action are done; the report holds their results in queue order."""
        report = self.report
        try:
            await self._all_finished.wait()
            await wait_all(self._after)
        finally:
            self._unsubscribe()
        report.results = [  # queue order
            self._final.get(t.id, t.result) for t in self._transfers if t.result is not None
        ]
        if self.manifest is not None:
            report.manifest_rows = self.manifest.rows
        return report

    async def run_stream(
        self,
        jobs: AsyncIterable[FileJob],
        *,
        root_of: Callable[[FileJob], str],
        lookahead: int | None = None,
    ) -> RunReport:
        """Copy ``jobs`` as they are listed (the queue's bounded look-ahead): nothing per
        file is kept once its row and source action are done; results reach ``on_file`` and
        source outcomes ``on_outcome``, so the report holds no results and no outcomes.
        ``root_of`` names the source folder a job is under (for the source action);
        ``lookahead`` bounds the files listed ahead (the queue's default if None)."""
        self._root_of = root_of
        self._keep_outcomes = False
        unsubscribe = self.queue.bus.subscribe(self._on_event)
        try:
            self.queue.submit_stream(jobs, lookahead=lookahead, on_queued=self._note)
            await self.queue.join()
            await wait_all(self._after)
        finally:
            unsubscribe()
        if self.manifest is not None:
            self.report.manifest_rows = self.manifest.rows
        return self.report

    def _note(self, transfer: Transfer) -> None:
        self._jobs[transfer.id] = transfer.job

    def cancel(self) -> None:
        """Cancel this run's unfinished transfers (their uploads are aborted); others on
        the queue go on."""
        for tid in list(self._pending):
            if tid in self.queue.transfers:
                self.queue.cancel(tid)

    @property
    def transfer_ids(self) -> list[int]:
        """The ids of this run's transfers on the queue."""
        return list(self._ids)

    async def _finish(self, tid: int, result: TransferResult) -> None:
        job = self._jobs[tid]
        try:
            result = await self._record_and_act(tid, job, result)
        except Exception:  # a bug here must not hide the transfer's own result
            log.exception("after-copy step of %s failed", job.source)
        finally:
            self._forget_final(tid, result)
        self._tell(job, result)

    def _finish_now(self, tid: int, job: FileJob, result: TransferResult) -> None:
        """A file's end when nothing follows its copy (no row, no observer, no action)."""
        self._forget_final(tid, result)
        self._tell(job, result)

    def _tell(self, job: FileJob, result: TransferResult) -> None:
        """``on_file``; its failure is logged and the run goes on (it runs inside the
        event that reports the file's end, which must reach the other subscribers)."""
        if self.on_file is None:
            return
        try:
            self.on_file(job, result)
        except Exception:
            log.exception("reporting the result of %s failed", job.source)

    def _forget_final(self, tid: int, result: TransferResult) -> None:
        if result.status in (TransferState.DONE, TransferState.SKIPPED):
            # Final: forget it (a failed one may be retried and finish again).
            self._jobs.pop(tid, None)
            self._part_size.pop(tid, None)
            self._started.pop(tid, None)

    async def _record_and_act(
        self, tid: int, job: FileJob, result: TransferResult
    ) -> TransferResult:
        """Write the file's row, then act on its source; returns the file's result, made a
        failure when its row (or its source action's row) could not be written."""
        action = self.source_action
        finished = time.time()
        if self.manifest is not None or self.observer is not None:
            head = None
            if result.status is TransferState.DONE:
                head = await _head_quietly(self.queue, result)
            endpoint = job.endpoint.display
            if endpoint not in self._host_keys:
                self._host_keys[endpoint] = await host_key_fingerprint(self.queue.sftp, job)
            row = file_row(
                job,
                result,
                part_size=self._part_size.get(tid),
                started=self._started.get(tid),
                finished=finished,
                head=head,
                host_key=self._host_keys[endpoint],
                source_action=action.describe if action.active else None,
                server=_server_json(self.queue.sftp, job),
            )
            if self.observer is not None:
                row["run_id"] = self.observer.run_id
                self.observer.row(row)
            if self.manifest is not None:
                try:
                    await self.manifest.write(row)  # durable before the source is touched
                except ManifestWriteFailed as exc:
                    kept = "; its source was kept" if action.active else ""
                    message = f"{_what_happened(result)}, but {exc.message}{kept}"
                    return self._failed(tid, result, message)
        if not action.active:
            return result
        outcomes = await apply_source_action(
            self.queue.sftp,
            job,
            result,
            action,
            root=self._root_of(job),
            verify_enabled=self.queue.options.verify,
            done_file=self._selection.done_files.get(job.path),
        )
        for outcome in outcomes:
            if self._keep_outcomes:
                self.report.outcomes.append(outcome)
            if self.manifest is not None:
                try:
                    await self.manifest.write(
                        {"kind": "source_action", **outcome.as_json(), "finished": iso(time.time())}
                    )
                except ManifestWriteFailed as exc:
                    did = (
                        f"{outcome.action} → {outcome.target}" if outcome.target else outcome.action
                    )
                    result = self._failed(
                        tid,
                        result,
                        f"{_what_happened(result)} and its source {did}, but {exc.message}",
                    )
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        return result

    def _failed(self, tid: int, result: TransferResult, message: str) -> TransferResult:
        """``result`` as a failure of the run: a file without its row is not done."""
        failed = dataclasses.replace(result, status=TransferState.FAILED, message=message)
        self._final[tid] = failed
        return failed


def _what_happened(result: TransferResult) -> str:
    """What happened to a file before its row failed, for the message that reports it."""
    if result.status is TransferState.DONE:
        return f"copied to s3://{result.bucket}/{result.key}"
    if result.status is TransferState.SKIPPED:
        return f"skipped ({result.message})" if result.message else "skipped"
    return result.message or result.status.value


async def _head_quietly(queue: TransferQueue, result: TransferResult) -> dict[str, Any] | None:
    """The object's ETag and VersionId for the row; a failing HEAD leaves them empty."""
    etag = getattr(result, "etag", None)
    if etag:
        return {"ETag": etag, "VersionId": getattr(result, "version_id", None)}
    try:
        return await head_object(queue.s3, result.bucket, result.key)
    except Exception:
        return None


@dataclass(frozen=True)
class PlanRules:
    """How a front's plan treats its sources: keys rebased on ``base_path``, a source that
    matches nothing told to ``on_missing`` instead of raised, and the hints of the plan's
    refusals in the front's own terms (a flag, an operator argument)."""

    base_path: str | None = None
    on_missing: Callable[[PlanSource, SourceNotFound], None] | None = None
    exact_key_hint: str = "end the destination with / to copy into a prefix"
    unique_hint: str = "copy them to different prefixes"


async def select_files(
    pool: SftpPool,
    sources: Sequence[PlanSource],
    dest: S3Location,
    run: RunOptions,
    rules: PlanRules = PlanRules(),
) -> Selection:
    """The files a run of ``sources`` into ``dest`` takes: the plan (``rules``), then the
    run's filters and readiness gate (the waiting and excluded ones are in the selection)."""
    jobs = await plan_copy(
        pool,
        sources,
        dest,
        base_path=rules.base_path,
        on_missing=rules.on_missing,
        exact_key_hint=rules.exact_key_hint,
        unique_hint=rules.unique_hint,
    )
    return await select_planned(pool, jobs, sources, file_filter=run.file_filter, gate=run.gate)


@asynccontextmanager
async def opened_manifest(
    run: RunOptions, queue: TransferQueue, spool_dir: Path | None = None
) -> AsyncIterator[Manifest | None]:
    """The run's manifest (None when it keeps none), closed on the way out. An upload that
    fails at close keeps the rows in the spool: :class:`ManifestKept` on the queue's bus
    says where, and ``manifest.upload_error`` why."""
    if not run.manifest:
        yield None
        return
    manifest = await Manifest.open(run.manifest, s3=queue.s3, spool_dir=spool_dir)
    try:
        yield manifest
    finally:
        await manifest.close()
        if manifest.upload_error:
            queue.bus.emit(
                ManifestKept(
                    transfer_id=0,
                    path=str(manifest.path),
                    target=manifest.target,
                    error=manifest.upload_error,
                )
            )


async def run_nightly(
    queue: TransferQueue,
    sources: Sequence[PlanSource],
    dest: S3Location,
    run: RunOptions,
    *,
    rules: PlanRules = PlanRules(),
    spool_dir: Path | None = None,
    on_file: Callable[[FileJob, TransferResult], None] | None = None,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
    observer: RunObserver | None = None,
) -> RunReport:
    """A whole nightly run of ``sources`` into ``dest`` on ``queue``: plan, select, preload
    the destination's keys (one listing, unless every file is overwritten), open the
    manifest, copy with :class:`CopyRun`.

    The queue's bus hears :class:`RunSelected` as the copy starts (a dry run: as the plan
    starts, then :class:`FilePlanned` per file; nothing is written and the report holds the
    plan) and :class:`ManifestKept` if the manifest's upload fails. ``spool_dir`` holds an
    ``s3://`` manifest's rows until it is uploaded; ``on_file``, ``on_outcome`` and
    ``observer`` are :class:`CopyRun`'s."""
    selection = await select_files(queue.sftp, sources, dest, run, rules)
    if run.dry_run:
        _selected(queue, dest, selection)
        plan = await preview_copy(
            selection,
            queue.destination,
            queue.options,
            on_planned=lambda planned: queue.bus.emit(FilePlanned(transfer_id=0, planned=planned)),
        )
        return RunReport(waiting=selection.waiting, excluded=selection.excluded, plan=plan)
    if queue.options.conflict is not ConflictPolicy.OVERWRITE:
        await queue.destination.preload(dest.bucket, [j.key for j in selection.jobs])
    async with opened_manifest(run, queue, spool_dir) as manifest:
        copy = CopyRun(
            queue,
            manifest=manifest,
            source_action=run.source_action,
            on_outcome=on_outcome,
            on_file=on_file,
            observer=observer,
        )
        _selected(queue, dest, selection)
        report = await copy.run(selection)
    if manifest is not None:
        report.manifest_upload_error = manifest.upload_error
    return report


def _selected(queue: TransferQueue, dest: S3Location, selection: Selection) -> None:
    queue.bus.emit(
        RunSelected(
            transfer_id=0,
            dest=str(dest),
            files=len(selection.jobs),
            bytes=sum(job.size for job in selection.jobs),
            waiting=tuple((job.source, why) for job, why in selection.waiting),
            excluded=len(selection.excluded),
        )
    )
