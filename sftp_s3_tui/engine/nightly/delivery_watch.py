"""``watch s3://bucket/prefix/ sftp://host/path/``: poll a prefix and deliver each new object
version once (S3 → SFTP, the other way round from :mod:`.watch`).

Each poll lists the prefix (the same filters as ``copy s3://… sftp://…``) and delivers, with
:func:`..transfer.delivery.deliver_object`, every version the watch's state has not seen. A
version is the bucket, the key and the ETag the listing shows (the ETag of the bytes
delivered once delivered): an object uploaded again with other bytes has another ETag and
is delivered again (replacing the partner's file only under a replacing ``--conflict``),
an unchanged one never twice. The state is :class:`.watch.WatchState` — the same JSON-lines
file, lock and pruning as the SFTP → S3 watch — so a restart delivers nothing twice. A stop
cancels the deliveries under way (each removes its temporary file) and returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..addresses import S3Location
from ..errors import SourceNotFound, TransferError
from ..events import EventBus
from ..plan.delivery import DeliveryJob, DeliveryTarget, RefusedKey, plan_delivery
from ..s3.operations import S3Client
from ..s3.reader import describe_object
from ..sftp.pool import SftpPool
from ..transfer.buffers import BufferPool
from ..transfer.delivery import deliver_object
from ..transfer.delivery_options import DeliveryOptions
from ..transfer.delivery_result import DeliveryEvents, DeliveryResult
from .watch import WatchState, poll_until_stopped, polled

#: Destination stats at once when a poll checks which new versions are there already.
_STATS_IN_FLIGHT = 16


def delivered_key(bucket: str, key: str, etag: str) -> str:
    """What identifies one version of one object in a delivery watch's state."""
    return f"s3://{bucket}/{key}\0{etag}"


@dataclass
class DeliveryPollReport:
    """One poll of a delivery watch: what was listed and what became of the new versions."""

    number: int
    listed: int = 0
    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    #: New to the state but already at the destination (same size and LastModified as the
    #: file's mtime: delivered before the watch could note it): noted, not delivered again.
    already_there: int = 0

    def count(self, result: DeliveryResult) -> None:
        if result.status == "done":
            self.delivered += 1
            self.bytes += result.bytes
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


@dataclass(frozen=True)
class DeliveryWatchHooks:
    """What a front hears (each optional): ``on_poll_start`` as a poll begins (a run id per
    poll), ``on_result`` each object's result, ``on_delivered`` once a file is in place and
    before its source is deleted (a manifest row made durable), ``on_excluded`` each object
    the filters leave out, ``on_poll`` each poll's report."""

    on_poll_start: Callable[[int], None] | None = None
    on_result: Callable[[DeliveryResult], None] | None = None
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None = None
    on_excluded: Callable[[str, str], None] | None = None
    on_poll: Callable[[DeliveryPollReport], None] | None = None


class DeliveryWatcher:
    """A watch of ``source`` (an S3 prefix or key) into ``target`` (an SFTP folder or file)
    over the clients the front opened: :meth:`run` polls until stopped, :meth:`poll` lists
    and delivers what is new."""

    def __init__(
        self,
        source: S3Location,
        target: DeliveryTarget,
        options: DeliveryOptions,
        *,
        s3: S3Client,
        sftp: SftpPool,
        state: WatchState,
        every_seconds: float,
        hooks: DeliveryWatchHooks = DeliveryWatchHooks(),
        bus: EventBus | None = None,
        buffers: BufferPool | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.s3 = s3
        self.sftp = sftp
        #: The versions delivered so far (durable, locked for this watch).
        self.state = state
        self.every_seconds = every_seconds
        self.hooks = hooks
        #: One memory budget for the whole watch, as for one ``copy`` (the front's pool,
        #: when it watches its fill).
        self.buffers = buffers if buffers is not None else BufferPool(options.memory_budget)
        #: Each object told on the front's bus as a transfer (the metrics), when given.
        self.events = DeliveryEvents(bus) if bus is not None else None
        self.polls = 0
        #: Keys refused by name, said once (not at every poll) while they stay listed.
        self._refused: set[str] = set()
        self._deliveries: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, *, max_polls: int | None = None) -> int:
        """Poll until ``stop`` is set (or ``max_polls`` polls); the number of polls.

        A stop mid-poll cancels the deliveries under way (each removes its temporary file;
        none is noted as delivered) and lets the poll finish."""

        def cancel_deliveries() -> None:
            for task in self._deliveries:
                task.cancel()

        async def one_poll(number: int) -> None:
            self.polls = number
            report = await polled(self.poll(number, stop), stop, cancel_deliveries)
            if self.hooks.on_poll is not None:
                self.hooks.on_poll(report)

        await poll_until_stopped(one_poll, stop, self.every_seconds, max_polls, self.polls)
        return self.polls

    async def poll(self, number: int, stop: asyncio.Event) -> DeliveryPollReport:
        """One poll: list, keep the versions not delivered yet, deliver them and note each
        one that is in place (or skipped by the conflict policy: said once, not each poll)."""
        if self.hooks.on_poll_start is not None:
            self.hooks.on_poll_start(number)
        report = DeliveryPollReport(number)
        jobs, refused = await self._listed(report)
        report.listed = len(jobs) + len(refused)
        for item in refused:
            if item.key not in self._refused:
                failed = DeliveryResult(
                    item.bucket, item.key, "", "failed", message=str(item.error)
                )
                if self.events is not None:
                    self.events.refused(failed)
                self._result(report, failed)
        # the keys of which some version was delivered: a new version of one is never
        # taken for "there already" by size and time (a same-size re-upload within the
        # second would look like it)
        seen = {version.rpartition("\0")[0] for version in self.state.versions()}
        if not report.errors:
            self._refused = {item.key for item in refused}
            # a listing that failed must not make its objects look gone
            self.state.keep_only({delivered_key(j.bucket, j.key, j.etag) for j in jobs})
        fresh = [] if stop.is_set() else [j for j in jobs if not self._known(j)]
        fresh = await self.not_landed(
            [j for j in fresh if f"s3://{j.bucket}/{j.key}" not in seen], report
        ) + [j for j in fresh if f"s3://{j.bucket}/{j.key}" in seen]
        if fresh and not stop.is_set():
            await self._deliver(fresh, report, stop)
        return report

    def _known(self, job: DeliveryJob) -> bool:
        return self.state.has(delivered_key(job.bucket, job.key, job.etag))

    async def _listed(
        self, report: DeliveryPollReport
    ) -> tuple[list[DeliveryJob], list[RefusedKey]]:
        """The source's objects now (an exact key described, for its ETag)."""
        jobs: list[DeliveryJob] = []
        refused: list[RefusedKey] = []
        try:
            async for item in plan_delivery(
                self.s3,
                self.source,
                self.target,
                file_filter=self.options.file_filter,
                on_excluded=self.hooks.on_excluded,
                min_age_seconds=self.options.min_age_seconds,
            ):
                if isinstance(item, RefusedKey):
                    refused.append(item)
                elif item.etag or self.source.is_prefix:
                    jobs.append(item)
                else:
                    jobs += await self._described(item)
        except TransferError as exc:  # a bucket not there yet, a dropped link: next poll
            report.errors.append(f"{self.source}: {exc}")
        return jobs, refused

    async def _described(self, job: DeliveryJob) -> list[DeliveryJob]:
        """An exact key's job with the version HEAD sees; none while the key is missing."""
        try:
            info = await describe_object(self.s3, job.bucket, job.key)
        except SourceNotFound:
            return []
        return [dataclasses.replace(job, etag=info.etag, size=info.size, mtime=info.last_modified)]

    async def not_landed(
        self, jobs: list[DeliveryJob], report: DeliveryPollReport
    ) -> list[DeliveryJob]:
        """The jobs whose version is not at the destination already. A file there with the
        object's size and its LastModified as mtime (what a delivery sets) was delivered
        before the watch could note it (it stopped or died in between): noted now, not
        delivered again."""
        slots = asyncio.Semaphore(_STATS_IN_FLIGHT)

        async def there(job: DeliveryJob) -> bool:
            async with slots:
                try:
                    entry = await self.sftp.stat(self.target.endpoint, job.remote_path)
                except TransferError:  # not there (or not readable: the delivery will say)
                    return False
            return (
                not entry.is_dir and entry.size == job.size and int(entry.mtime) == int(job.mtime)
            )

        found = await asyncio.gather(*(there(j) for j in jobs))
        todo = []
        for job, landed in zip(jobs, found, strict=True):
            if landed:
                self.state.add(delivered_key(job.bucket, job.key, job.etag))
                report.already_there += 1
            else:
                todo.append(job)
        return todo

    async def _deliver(
        self, jobs: list[DeliveryJob], report: DeliveryPollReport, stop: asyncio.Event
    ) -> None:
        """Deliver ``jobs``, ``files_in_flight`` at once (a task only for those under way,
        however many objects a first poll finds); each noted once in place. A stop starts
        no more of them (:meth:`run` cancels those under way)."""
        slots = asyncio.Semaphore(max(1, self.options.files_in_flight))
        front_delivered = self.hooks.on_delivered

        async def delivered(result: DeliveryResult) -> None:
            # noted the moment the file is in place (before its source may be deleted)
            self.state.add(delivered_key(result.bucket, result.key, result.etag))
            if front_delivered is not None:
                await front_delivered(result)

        events = self.events

        async def one(job: DeliveryJob, transfer_id: int) -> None:
            try:
                result = await deliver_object(
                    job,
                    s3=self.s3,
                    sftp=self.sftp,
                    target=self.target,
                    buffers=self.buffers,
                    options=self.options,
                    on_delivered=delivered,
                    bus=events.bus if events is not None else None,
                    transfer_id=transfer_id,
                )
            finally:
                slots.release()
            if result.status in ("done", "skipped"):
                # the version read (its ETag may be newer than the listing's), else the listed
                self.state.add(delivered_key(job.bucket, job.key, result.etag or job.etag))
            self._result(report, result)

        running: set[asyncio.Task[None]] = set()
        errors: list[BaseException] = []

        def ended(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self._deliveries.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                errors.append(error)

        try:
            for job in jobs:
                await slots.acquire()
                if stop.is_set() or errors:
                    break
                transfer_id = events.queued(job) if events is not None else 0
                task = asyncio.ensure_future(one(job, transfer_id))
                running.add(task)
                self._deliveries.add(task)
                task.add_done_callback(ended)
        except BaseException:  # this poll cancelled: so are its deliveries (each cleans up)
            for task in running:
                task.cancel()
            raise
        finally:
            while running:
                await asyncio.wait(set(running))
        if errors:
            raise errors[0]  # a defect: a delivery's failures are results

    def _result(self, report: DeliveryPollReport, result: DeliveryResult) -> None:
        report.count(result)
        if self.hooks.on_result is not None:
            self.hooks.on_result(result)
