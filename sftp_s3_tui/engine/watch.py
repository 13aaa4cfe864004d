"""``watch``: poll SFTP folders every so often and ship each new or changed file once.

Each poll lists the sources, applies the same filters and readiness gate as ``copy`` (the
gate's stability check remembers earlier polls, so it never waits), and copies what the
watch's state has not shipped yet. The state — one line per shipped (endpoint, path, size,
mtime) — lives in the user state dir, is appended durably as each file lands and pruned of
files no longer listed, so a restart ships nothing twice and memory stays bounded by what the
folders hold. A stop request (SIGTERM) cancels the poll under way (its uploads are aborted,
its sources untouched) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write, fsync_dir
from .config import ConflictPolicy, SftpEndpoint
from .errors import TransferError
from .events import TransferResult, TransferState
from .filters import FileFilter, source_root
from .locations import S3Location
from .manifest import Manifest
from .plan import FileJob, ensure_unique_keys
from .queue import TransferQueue
from .readiness import ReadinessGate, StabilityTracker
from .selection import Selection, select_jobs
from .source_actions import SourceAction
from .workflow import CopyRun, RunReport

log = logging.getLogger(__name__)


def shipped_key(job: FileJob) -> str:
    """What identifies one version of one file: endpoint, path, size and mtime."""
    return f"{job.endpoint.display}\0{job.path}\0{job.size}\0{job.mtime}"


class WatchState:
    """The versions of files a watch has shipped, kept in ``path`` (JSON lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shipped: set[str] = set()

    @classmethod
    def for_watch(cls, folder: Path, sources: Sequence[str], dest: S3Location) -> WatchState:
        """The state of the watch of ``sources`` into ``dest`` (one file per such watch)."""
        name = hashlib.sha256("\0".join([*sorted(sources), str(dest)]).encode()).hexdigest()
        state = cls(folder / f"{name[:24]}.jsonl")
        state.load()
        return state

    def load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):  # a torn last line
                self._shipped.add(str(json.loads(line)["id"]))

    def __len__(self) -> int:
        return len(self._shipped)

    def shipped(self, job: FileJob) -> bool:
        return shipped_key(job) in self._shipped

    def record(self, job: FileJob) -> None:
        """Remember that this version of ``job`` landed (appended and fsync'd)."""
        key = shipped_key(job)
        if key in self._shipped:
            return
        self._shipped.add(key)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not self.path.exists()
        line = json.dumps({"id": key}, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.path.parent)

    def prune(self, listed: Sequence[FileJob]) -> None:
        """Forget versions no longer listed (moved, deleted or replaced by a newer one)."""
        present = {shipped_key(j) for j in listed}
        gone = self._shipped - present
        if not gone:
            return
        self._shipped &= present
        data = "".join(json.dumps({"id": k}, ensure_ascii=False) + "\n" for k in self._shipped)
        atomic_write(self.path, data.encode())


@dataclass(frozen=True)
class WatchSource:
    endpoint: SftpEndpoint
    path: str


@dataclass
class PollReport:
    """One poll: how many files were listed, and the run over the new ones."""

    number: int
    listed: int
    run: RunReport
    errors: list[str] = field(default_factory=list)
    #: New to this watch's state but already at the destination (same size and source mtime):
    #: noted as shipped without sending them, and counted here so no one takes them for sent.
    already_there: int = 0


async def watch(
    queue: TransferQueue,
    sources: Sequence[WatchSource],
    dest: S3Location,
    *,
    every_seconds: float,
    state: WatchState,
    stop: asyncio.Event,
    file_filter: FileFilter | None = None,
    gate: ReadinessGate | None = None,
    manifest: Manifest | None = None,
    source_action: SourceAction | None = None,
    on_poll: Callable[[PollReport], None] | None = None,
    max_polls: int | None = None,
    on_file: Callable[[FileJob, TransferResult], None] | None = None,
    forget_finished: bool = True,
) -> int:
    """Poll until ``stop`` is set (or ``max_polls`` polls); returns the number of polls.

    ``on_file`` is told each file's result as it lands (``on_poll`` after the poll). The
    queue may carry other transfers (the TUI's): a stop cancels only the poll's, and
    ``forget_finished`` drops only the poll's finished ones from ``queue.transfers`` (a
    front that lists them keeps them with ``False``).
    """
    tracker = StabilityTracker()
    polls = 0
    runs: list[CopyRun] = []  # the copy of the poll under way, once it starts
    while not stop.is_set() and (max_polls is None or polls < max_polls):
        polls += 1
        poll = asyncio.ensure_future(
            _poll(
                queue,
                sources,
                dest,
                polls,
                state,
                tracker,
                stop,
                file_filter,
                gate,
                manifest,
                source_action,
                on_file,
                runs,
                forget_finished,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({poll, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        # Stop requested mid-poll: cancel the transfers (uploads aborted, sources untouched)
        # but let the poll finish, so files that did land get their row and state entry.
        while not poll.done():
            for run in runs:
                run.cancel()
            await asyncio.wait({poll}, timeout=1.0)
        runs.clear()
        report = poll.result()
        if on_poll is not None:
            on_poll(report)
        if stop.is_set() or (max_polls is not None and polls >= max_polls):
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
    return polls


async def _not_landed(
    queue: TransferQueue, jobs: list[FileJob], state: WatchState
) -> tuple[list[FileJob], int]:
    """The jobs whose version is not in S3 already. One that is (same size and recorded
    source mtime: it landed, but the watch stopped or died before noting it) is noted now,
    not shipped again."""
    if not jobs:
        return jobs, 0
    index = queue.destination
    for bucket in {j.bucket for j in jobs}:
        await index.preload(bucket, [j.key for j in jobs if j.bucket == bucket])
    todo = []
    for job in jobs:
        found = await index.lookup(
            job.bucket, job.key, policy=ConflictPolicy.IF_DIFFERENT, size=job.size, mtime=job.mtime
        )
        if found is not None and found.size == job.size and found.source_mtime == job.mtime:
            state.record(job)
        else:
            todo.append(job)
    return todo, len(jobs) - len(todo)


async def _poll(
    queue: TransferQueue,
    sources: Sequence[WatchSource],
    dest: S3Location,
    number: int,
    state: WatchState,
    tracker: StabilityTracker,
    stop: asyncio.Event,
    file_filter: FileFilter | None,
    gate: ReadinessGate | None,
    manifest: Manifest | None,
    source_action: SourceAction | None,
    on_file: Callable[[FileJob, TransferResult], None] | None,
    runs: list[CopyRun],
    forget_finished: bool,
) -> PollReport:
    listed: list[FileJob] = []
    selection = Selection()
    errors: list[str] = []
    for source in sources:
        try:
            jobs = await queue.expand(source.endpoint, source.path, dest)
        except TransferError as exc:  # a folder not there yet, a dropped link: next poll
            errors.append(f"{source.endpoint.display}{source.path}: {exc}")
            continue
        listed += jobs
        selection.extend(
            await select_jobs(
                queue.sftp,
                jobs,
                source_root(source.path),
                file_filter=file_filter,
                gate=gate,
                tracker=tracker,
                wait=False,
            )
        )
    tracker.forget_missing(listed)
    fresh = [] if stop.is_set() else [j for j in selection.jobs if not state.shipped(j)]
    ensure_unique_keys(fresh)
    fresh, already_there = await _not_landed(queue, fresh, state)
    todo = Selection(jobs=fresh, done_files=selection.done_files, roots=selection.roots)

    def landed(job: FileJob, result: TransferResult) -> None:
        if result.status in (TransferState.DONE, TransferState.SKIPPED):
            state.record(job)
        if on_file is not None:
            on_file(job, result)

    copy = CopyRun(queue, manifest=manifest, source_action=source_action, on_file=landed)
    runs.append(copy)  # a stop from now on cancels its transfers
    run = await copy.run(todo)
    run.waiting = selection.waiting
    if forget_finished:  # a watch runs for weeks: keep the queue's table small
        for tid in copy.transfer_ids:
            transfer = queue.transfers.get(tid)
            if transfer is not None and transfer.state.finished:
                del queue.transfers[tid]
    if not errors:  # a listing that failed must not make its files look gone
        state.prune(listed)
    return PollReport(
        number=number, listed=len(listed), run=run, errors=errors, already_there=already_there
    )
