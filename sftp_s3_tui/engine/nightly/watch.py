"""``watch``: poll SFTP folders every so often and ship each new or changed file once.

Each poll lists the sources, applies the same filters and readiness gate as ``copy`` (the
gate's stability check remembers earlier polls, so it never waits), and copies what the
watch's state has not shipped yet. The state — one line per shipped (endpoint, path, size,
mtime) — lives in the user state dir, is appended durably as each file lands and pruned of
files no longer listed, so a restart ships nothing twice and memory stays bounded by what the
folders hold. A stop request (SIGTERM) cancels the poll under way (its uploads are aborted,
its sources untouched) and returns.

:class:`Watcher` holds a watch's state between polls (the stability tracker, the poll under
way) and takes the run's options as one value, as :func:`.run.run_nightly` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ..addresses import S3Location
from ..config import ConflictPolicy, SftpEndpoint
from ..durable import atomic_write, fsync_dir
from ..errors import TransferError, WatchStateBusy, WatchStateUnreadable
from ..events import TransferResult, TransferState
from ..plan.filters import source_root
from ..plan.readiness import StabilityTracker
from ..plan.selection import Selection, select_jobs
from ..plan.sources import FileJob, ensure_unique_keys
from ..transfer.queue import TransferQueue
from .manifest import Manifest
from .options import RunOptions
from .run import CopyRun, RunObserver, RunReport
from .source_actions import SourceOutcome

T = TypeVar("T")

log = logging.getLogger(__name__)


def shipped_key(job: FileJob) -> str:
    """What identifies one version of one file: endpoint, path, size and mtime."""
    return f"{job.endpoint.display}\0{job.path}\0{job.size}\0{job.mtime}"


class WatchState:
    """The versions of files a watch has shipped, kept in ``path`` (JSON lines).

    One watch per state: :meth:`for_watch` takes an ``flock`` on ``<state>.lock`` (holding
    who took it: pid, host, since) that lasts until :meth:`close` or the process ends, so a
    second watch of the same sources and destination stops with one line instead of shipping
    every file a second time. A state that is not one (binary data, a folder) stops the
    watch too, and is left as it is: never silently overwritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shipped: set[str] = set()
        self._lock_fd = -1
        self._torn_tail = False  # the last line was cut by a crash: the next record starts anew

    @classmethod
    def for_watch(cls, folder: Path, sources: Sequence[str], dest: S3Location | str) -> WatchState:
        """The state of the watch of ``sources`` into ``dest`` (one file per such watch;
        ``dest`` an S3 location, or a delivery's ``sftp://`` target as text), locked for
        this watch: :class:`WatchStateBusy` when another watch holds it,
        :class:`WatchStateUnreadable` when the file is not a state."""
        name = hashlib.sha256("\0".join([*sorted(sources), str(dest)]).encode()).hexdigest()
        state = cls(folder / f"{name[:24]}.jsonl")
        state.lock()
        try:
            state.load()
        except BaseException:
            state.close()
            raise
        return state

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> None:
        """Take the state's lock, or say who holds it (:class:`WatchStateBusy`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise WatchStateBusy(
                f"another watch of these sources into this destination is running "
                f"({holder or 'holder unknown'}; lock {self.lock_path})",
                "stop it first: two watches would ship every file twice",
            ) from None
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {since}\n".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock (the process ending releases it too)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:  # a folder at its path, no rights
            raise self._unreadable(exc.strerror or type(exc).__name__) from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._unreadable(f"binary data at byte {exc.start}") from exc
        lines = text.splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                self._shipped.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError) as exc:
                if number == len(lines) and not text.endswith("\n"):
                    self._torn_tail = True  # a crash cut the last append: that file is
                    continue  # found in S3 by the next poll, not shipped twice
                raise self._unreadable(f"line {number} is not a state row") from exc

    def _unreadable(self, why: str) -> WatchStateUnreadable:
        return WatchStateUnreadable(
            f"the watch state {self.path} cannot be read ({why}); it was left as it is",
            f"move it aside (mv {self.path} {self.path}.bad) and start again: the watch "
            "then finds what is in S3 already and ships only the rest",
        )

    def __len__(self) -> int:
        return len(self._shipped)

    def shipped(self, job: FileJob) -> bool:
        return shipped_key(job) in self._shipped

    def has(self, key: str) -> bool:
        """Whether the version ``key`` names (see :func:`shipped_key`) was shipped."""
        return key in self._shipped

    def versions(self) -> frozenset[str]:
        """Every version noted (a snapshot: what a poll compares its listing with)."""
        return frozenset(self._shipped)

    def record(self, job: FileJob) -> None:
        """Remember that this version of ``job`` landed (appended and fsync'd)."""
        self.add(shipped_key(job))

    def add(self, key: str) -> None:
        """Remember the version ``key`` names as shipped (appended and fsync'd)."""
        if key in self._shipped:
            return
        self._shipped.add(key)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not self.path.exists()
        line = json.dumps({"id": key}, ensure_ascii=False) + "\n"
        if self._torn_tail:
            line, self._torn_tail = "\n" + line, False
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
        self.keep_only({shipped_key(j) for j in listed})

    def keep_only(self, present: set[str]) -> None:
        """Forget the versions not in ``present`` (what the last full listing found)."""
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


@dataclass(frozen=True)
class WatchHooks:
    """What a front is told as a watch runs (each optional): ``on_file`` each file's result
    as it lands, ``on_outcome`` what the source action did to it (a move refused
    included), ``on_poll`` each poll's report once it is done, and ``observe_poll`` is asked
    for each poll's observer (a run id and lineage rows: one run per poll)."""

    on_file: Callable[[FileJob, TransferResult], None] | None = None
    on_outcome: Callable[[SourceOutcome], None] | None = None
    on_poll: Callable[[PollReport], None] | None = None
    observe_poll: Callable[[int], RunObserver | None] | None = None


async def polled(poll: Awaitable[T], stop: asyncio.Event, cancel: Callable[[], None]) -> T:
    """Run one poll; when ``stop`` is set meanwhile, ``cancel()`` its transfers (every second
    until it ends) but let the poll finish, so what did land gets its row and state entry."""
    task = asyncio.ensure_future(poll)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    while not task.done():
        cancel()
        await asyncio.wait({task}, timeout=1.0)
    return task.result()


async def poll_until_stopped(
    one_poll: Callable[[int], Awaitable[None]],
    stop: asyncio.Event,
    every_seconds: float,
    max_polls: int | None = None,
    done: int = 0,
) -> int:
    """Call ``one_poll(n)`` every ``every_seconds`` until ``stop`` is set (or ``max_polls``
    polls); the number of polls. The one loop of both watches (SFTP → S3 and deliveries)."""
    polls = done
    while not stop.is_set() and (max_polls is None or polls < max_polls):
        polls += 1
        await one_poll(polls)
        if stop.is_set() or (max_polls is not None and polls >= max_polls):
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
    return polls


class Watcher:
    """A watch of ``sources`` into ``dest``: what it holds between polls, and one method
    per step (:meth:`run` polls until stopped, :meth:`poll` lists, selects and copies what
    is new, :meth:`not_landed` notes what S3 has already)."""

    def __init__(
        self,
        queue: TransferQueue,
        sources: Sequence[WatchSource],
        dest: S3Location,
        run: RunOptions,
        *,
        state: WatchState,
        every_seconds: float,
        manifest: Manifest | None = None,
        hooks: WatchHooks = WatchHooks(),
        forget_finished: bool = True,
    ) -> None:
        #: The queue the polls copy on; it may carry other transfers (the TUI's): a stop
        #: cancels only the poll's.
        self.queue = queue
        self.sources = sources
        self.dest = dest
        #: Which files (filters, readiness gate) and what happens to their sources; its
        #: ``manifest`` is opened by the front and given as ``manifest``.
        self.run_options = run
        #: The versions shipped so far (durable, locked for this watch).
        self.state = state
        self.every_seconds = every_seconds
        self.manifest = manifest
        self.hooks = hooks
        #: Drop each poll's finished transfers from ``queue.transfers`` (a watch runs for
        #: weeks); a front that lists them (the TUI) keeps them with ``False``.
        self.forget_finished = forget_finished
        #: Each file's size and mtime across polls: the gate's stability check never waits.
        self.tracker = StabilityTracker()
        #: Polls begun so far.
        self.polls = 0
        #: The copy of the poll under way, once it starts (a stop cancels its transfers).
        self._runs: list[CopyRun] = []

    async def run(self, stop: asyncio.Event, *, max_polls: int | None = None) -> int:
        """Poll until ``stop`` is set (or ``max_polls`` polls); returns the number of polls.

        A stop mid-poll cancels the poll's transfers (uploads aborted, sources untouched)
        but lets the poll finish, so the files that did land get their row and state entry."""

        def cancel_copies() -> None:
            for copy in self._runs:
                copy.cancel()

        async def one_poll(number: int) -> None:
            self.polls = number
            try:
                report = await polled(self.poll(number, stop), stop, cancel_copies)
            finally:
                self._runs.clear()
            if self.hooks.on_poll is not None:
                self.hooks.on_poll(report)

        await poll_until_stopped(one_poll, stop, self.every_seconds, max_polls, self.polls)
        return self.polls

    async def poll(self, number: int, stop: asyncio.Event) -> PollReport:
        """One poll: list every source, select (filters, gate), copy the versions not
        shipped yet, and note each one that lands."""
        queue, run = self.queue, self.run_options
        observe = self.hooks.observe_poll
        observer = observe(number) if observe is not None else None
        listed: list[FileJob] = []
        selection = Selection()
        errors: list[str] = []
        for source in self.sources:
            try:
                jobs = await queue.expand(source.endpoint, source.path, self.dest)
            except TransferError as exc:  # a folder not there yet, a dropped link: next poll
                errors.append(f"{source.endpoint.display}{source.path}: {exc}")
                continue
            listed += jobs
            selection.extend(
                await select_jobs(
                    queue.sftp,
                    jobs,
                    source_root(source.path),
                    file_filter=run.file_filter,
                    gate=run.gate,
                    tracker=self.tracker,
                    wait=False,
                )
            )
        self.tracker.forget_missing(listed)
        fresh = [] if stop.is_set() else [j for j in selection.jobs if not self.state.shipped(j)]
        ensure_unique_keys(fresh)
        fresh, already_there = await self.not_landed(fresh)
        todo = Selection(jobs=fresh, done_files=selection.done_files, roots=selection.roots)
        on_file = self.hooks.on_file

        def landed(job: FileJob, result: TransferResult) -> None:
            if result.status in (TransferState.DONE, TransferState.SKIPPED):
                self.state.record(job)
            if on_file is not None:
                on_file(job, result)

        copy = CopyRun(
            queue,
            manifest=self.manifest,
            source_action=run.source_action,
            on_file=landed,
            on_outcome=self.hooks.on_outcome,
            observer=observer,
        )
        self._runs.append(copy)  # a stop from now on cancels its transfers
        report = await copy.run(todo)
        report.waiting = selection.waiting
        if self.forget_finished:  # a watch runs for weeks: keep the queue's table small
            for tid in copy.transfer_ids:
                transfer = queue.transfers.get(tid)
                if transfer is not None and transfer.state.finished:
                    del queue.transfers[tid]
        if not errors:  # a listing that failed must not make its files look gone
            self.state.prune(listed)
        return PollReport(
            number=number,
            listed=len(listed),
            run=report,
            errors=errors,
            already_there=already_there,
        )

    async def not_landed(self, jobs: list[FileJob]) -> tuple[list[FileJob], int]:
        """The jobs whose version is not in S3 already, and how many were. One that is (same
        size and recorded source mtime: it landed, but the watch stopped or died before
        noting it) is noted now, not shipped again."""
        if not jobs:
            return jobs, 0
        index = self.queue.destination
        for bucket in {j.bucket for j in jobs}:
            await index.preload(bucket, [j.key for j in jobs if j.bucket == bucket])
        todo = []
        for job in jobs:
            found = await index.lookup(
                job.bucket,
                job.key,
                policy=ConflictPolicy.IF_DIFFERENT,
                size=job.size,
                mtime=job.mtime,
            )
            if found is not None and found.size == job.size and found.source_mtime == job.mtime:
                self.state.record(job)
            else:
                todo.append(job)
        return todo, len(jobs) - len(todo)
