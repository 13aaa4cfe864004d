"""Many files: a queue with a global memory budget, per-side limits and user controls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from ..addresses import S3Location
from ..aio import LoopShare
from ..config import S3Endpoint, SftpEndpoint, TransferOptions
from ..errors import TransferError
from ..events import (
    EventBus,
    TransferFinished,
    TransferQueued,
    TransferResult,
    TransferState,
    TransferStateChanged,
)
from ..plan.conflicts import DestinationIndex
from ..plan.sources import FileJob, expand
from ..resume.journal import AWS, EndpointJournal, Journal, account_identity, endpoint_identity
from ..s3.operations import S3Client, open_client, session_for
from ..sftp.pool import SftpPool
from .buffers import BufferPool
from .file import EngineContext, FileTransfer, TransferControl

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Transfer:
    """One queued file and where it stands: a plain record, no task until it gets a slot."""

    id: int
    job: FileJob
    state: TransferState = TransferState.QUEUED
    result: TransferResult | None = None
    control: TransferControl | None = None  # while it runs: its pause gate
    task: asyncio.Task[None] | None = None  # while it runs
    cancel_requested: bool = False
    in_line: bool = False  # in the queue's waiting line (possibly paused there)


class TransferQueue:
    """Runs file jobs concurrently within the memory budget and the per-side limits.

    A queued file is a small record in a waiting line; a task exists only for the (at most
    ``files_in_flight``) files that run, so a queue of 100k files costs about as much as its
    records. Jobs can also be queued from an async iterator as a listing yields them
    (:meth:`submit_stream`), with a bounded look-ahead.

    Use as an async context manager: it opens the S3 client and the SFTP pool, and on exit
    cancels what still runs (aborting those uploads) and closes the connections.

    A front that draws on the same event loop (the TUI) gives ``loop_budget_seconds``: the
    transfers' heavy steps then share each turn of the loop with it (:class:`LoopShare`).
    """

    def __init__(
        self,
        s3_endpoint: S3Endpoint,
        options: TransferOptions | None = None,
        *,
        bus: EventBus | None = None,
        journal: Journal | None = None,
        sftp: SftpPool | None = None,
        keep_finished: int | None = None,
        loop_budget_seconds: float | None = None,
    ) -> None:
        self.s3_endpoint = s3_endpoint
        #: With a number, only that many done/skipped transfers stay in ``transfers`` (and in
        #: join()'s results); failed and cancelled ones always stay (they can be retried).
        #: For runs of very many files whose results are taken from the bus as they come.
        self.keep_finished = keep_finished
        self._finished_line: deque[int] = deque()
        #: How many transfers ended in each state (a retried one counts where it ends).
        self.outcomes: Counter[TransferState] = Counter()
        self.options = options or TransferOptions()
        self.bus = bus or EventBus()
        self.journal = journal
        self.sftp = sftp or SftpPool()
        if self.sftp.on_link is None:
            self.sftp.on_link = self.bus.emit  # hosts' RTT and ceiling
        self.buffers = BufferPool(self.options.memory_budget)
        #: Spreads the transfers' CPU-heavy steps over the event loop's turns when a front
        #: shares the loop (``loop_budget_seconds``, see :class:`LoopShare`); else a no-op.
        self.loop_share = LoopShare(loop_budget_seconds)
        self.transfers: dict[int, Transfer] = {}
        self._ids = itertools.count(1)
        self._stack = contextlib.AsyncExitStack()
        self._ctx: EngineContext | None = None
        self._line: deque[Transfer] = deque()  # waiting for a file slot, in queue order
        self._running = 0  # transfers holding a file slot
        # Not finished yet, in queue order: join waits on it, pause_all/cancel_all walk it.
        self._unfinished: dict[int, Transfer] = {}
        self._feeders: set[asyncio.Task[None]] = set()
        self._feed_errors: list[BaseException] = []
        self._room = asyncio.Event()  # the waiting line has room for a feeder's next job
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False  # shutting down: start nothing new
        #: The journal's records of this queue's store (set once the client is open).
        self.records: EndpointJournal | None = None

    def new_transfer_id(self) -> int:
        """An id no transfer of this queue has: for work shown beside the queue's own
        (an S3 → SFTP delivery's rows in the same list)."""
        return next(self._ids)

    @property
    def s3(self) -> S3Client:
        assert self._ctx is not None, "use the queue as an async context manager"
        return self._ctx.s3

    @property
    def waiting(self) -> int:
        """Files queued and not started (paused ones included)."""
        return len(self._line)

    @property
    def destination(self) -> DestinationIndex:
        """What is at the destination keys; preload a listing here before a big rerun."""
        assert self._ctx is not None, "use the queue as an async context manager"
        return self._ctx.destination

    async def __aenter__(self) -> TransferQueue:
        options = self.options
        client = await self._stack.enter_async_context(
            open_client(self.s3_endpoint, connections=options.s3_concurrency + 8)
        )
        self._stack.push_async_callback(self.sftp.close)
        if self.journal is not None:
            endpoint = endpoint_identity(client.meta.endpoint_url)
            account = "" if endpoint.startswith(AWS) else await self._account(client)
            self.records = self.journal.for_endpoint(endpoint, account)
        self._ctx = EngineContext(
            sftp=self.sftp,
            s3=client,
            buffers=self.buffers,
            options=options,
            bus=self.bus,
            journal=self.records,
            sftp_slots=asyncio.Semaphore(options.sftp_concurrency),
            s3_slots=asyncio.Semaphore(options.s3_concurrency),
            storage_class=self.s3_endpoint.storage_class,
            server_side_encryption=self.s3_endpoint.server_side_encryption,
            endpoint_name=self.s3_endpoint.display,
            loop_share=self.loop_share,
        )
        return self

    async def _account(self, client: S3Client) -> str:
        """Who the credentials are, for stores other than AWS: there, bucket names may be
        scoped per account (Ceph tenants), so the account is part of a record's key. The
        client's own credentials (resolved as it was made), else a session's."""
        endpoint = self.s3_endpoint
        if endpoint.access_key_id:
            return account_identity(endpoint.access_key_id)
        try:
            signer = getattr(client, "_request_signer", None)
            credentials = getattr(signer, "_credentials", None)
            if credentials is None:
                credentials = await session_for(endpoint).get_credentials()
            frozen = await credentials.get_frozen_credentials() if credentials else None
        except Exception:  # unknown credentials: the first request reports that properly
            frozen = None
        if frozen is not None and frozen.access_key:
            return account_identity(frozen.access_key)
        return account_identity(profile=endpoint.profile)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
        await self._stack.aclose()

    async def shutdown(self) -> None:
        """Stop feeding, cancel every unfinished transfer and wait until their uploads are
        aborted."""
        self._closing = True
        feeders = list(self._feeders)
        for feeder in feeders:
            feeder.cancel()
        if feeders:
            await asyncio.gather(*feeders, return_exceptions=True)
        running = []
        for transfer in list(self._unfinished.values()):
            if transfer.task is not None and not transfer.task.done():
                transfer.cancel_requested = True
                transfer.task.cancel()
                running.append(transfer.task)
            else:
                self._cancel_waiting(transfer)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def expand(self, endpoint: SftpEndpoint, path: str, dest: S3Location) -> list[FileJob]:
        """Turn a file, folder or glob into file jobs under ``dest``."""
        return await expand(self.sftp, endpoint, path, dest)

    def submit(self, jobs: Iterable[FileJob]) -> list[Transfer]:
        """Queue jobs; they start as file slots free up."""
        added = [self._add(job) for job in jobs]
        self._pump()
        return added

    def submit_stream(
        self,
        jobs: AsyncIterable[FileJob],
        *,
        lookahead: int | None = None,
        on_queued: Callable[[Transfer], None] | None = None,
    ) -> asyncio.Task[None]:
        """Queue jobs as ``jobs`` yields them, never more than ``lookahead`` waiting at once.

        A listing that streams is thus planned and queued while the first files already
        move, and a folder of a million files is never held in memory at once. :meth:`join`
        waits for the iterator to end too, and raises what it raised (after the files
        queued so far have finished). ``on_queued`` is told each transfer as it is queued,
        before it can start (so a caller can map its id to its job without a scan).
        """
        limit = lookahead or max(256, 4 * self.options.files_in_flight)
        feeder = asyncio.create_task(
            self._feed(jobs, limit, on_queued), name="transfer-queue-feeder"
        )
        self._feeders.add(feeder)
        self._idle.clear()
        feeder.add_done_callback(self._feeder_done)
        return feeder

    async def _feed(
        self,
        jobs: AsyncIterable[FileJob],
        limit: int,
        on_queued: Callable[[Transfer], None] | None,
    ) -> None:
        share = self.loop_share
        try:
            async for job in jobs:
                while len(self._line) >= limit:
                    self._room.clear()
                    await self._room.wait()
                # A listing batch planned and queued at once held the loop ~20 ms for 100s of
                # names: a job's planning and queueing share the loop's rounds too.
                await share.turn()
                transfer = self._add(job)
                if on_queued is not None:
                    on_queued(transfer)
                self._pump()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a listing that failed: join() reports it
            self._feed_errors.append(exc)
        finally:
            if isinstance(jobs, AsyncGenerator):
                with contextlib.suppress(Exception):
                    await jobs.aclose()

    def _feeder_done(self, feeder: asyncio.Task[None]) -> None:
        self._feeders.discard(feeder)
        self._check_idle()

    def _add(self, job: FileJob) -> Transfer:
        transfer = Transfer(id=next(self._ids), job=job)
        self.transfers[transfer.id] = transfer
        self._unfinished[transfer.id] = transfer
        self._idle.clear()
        self.bus.emit(
            TransferQueued(
                transfer_id=transfer.id,
                source=job.source,
                bucket=job.bucket,
                key=job.key,
                size=job.size,
            )
        )
        transfer.in_line = True
        self._line.append(transfer)
        return transfer

    def _pump(self) -> None:
        """Start waiting transfers, in line order, while file slots are free."""
        if self._closing:
            return
        line = self._line
        while line and self._running < self.options.files_in_flight:
            transfer = line.popleft()
            transfer.in_line = False
            if transfer.state is TransferState.QUEUED:
                self._launch(transfer)
            # a paused one leaves the line; resume() puts it back
        self._room.set()  # each feeder checks its own look-ahead again

    def _launch(self, transfer: Transfer) -> None:
        assert self._ctx is not None, "use the queue as an async context manager"
        self._running += 1
        transfer.cancel_requested = False
        transfer.control = TransferControl()
        self._set_state(transfer, TransferState.RUNNING)
        transfer.task = asyncio.create_task(self._run(transfer), name=f"transfer-{transfer.id}")

    def _set_state(self, transfer: Transfer, state: TransferState) -> None:
        transfer.state = state
        if state.finished:
            self._unfinished.pop(transfer.id, None)
            if not self._unfinished:  # a dict keeps its largest table: let it go
                self._unfinished = {}
        else:
            self._unfinished[transfer.id] = transfer
        self.bus.emit(TransferStateChanged(transfer_id=transfer.id, state=state))

    async def _run(self, transfer: Transfer) -> None:
        assert self._ctx is not None and transfer.control is not None
        job = transfer.job
        file_transfer: FileTransfer | None = None
        try:
            try:
                file_transfer = FileTransfer(self._ctx, transfer.id, job, transfer.control)
                result = await file_transfer.run()
            except TransferError as exc:
                result = _failed(job, TransferState.FAILED, str(exc))
            except asyncio.CancelledError:
                note = file_transfer.cancel_note() if file_transfer else "nothing was published"
                result = _failed(job, TransferState.CANCELLED, f"cancelled; {note}")
                if not transfer.cancel_requested:  # the loop itself is going down
                    self._closing = True
                    self._finish(transfer, result)
                    raise
            except Exception as exc:  # a bug must still end the transfer with a message
                log.exception("transfer of %s failed unexpectedly", job.source)
                result = _failed(job, TransferState.FAILED, f"unexpected error: {exc!r}")
            self._finish(transfer, result)
        finally:
            self._running -= 1
            transfer.task = None
            transfer.control = None
            self._pump()

    def _finish(self, transfer: Transfer, result: TransferResult) -> None:
        transfer.result = result
        self._set_state(transfer, result.status)
        self.outcomes[result.status] += 1
        self.bus.emit(TransferFinished(transfer_id=transfer.id, result=result))
        if self.keep_finished is not None and result.status in _FORGETTABLE:
            line = self._finished_line
            line.append(transfer.id)
            while len(line) > self.keep_finished:
                self.transfers.pop(line.popleft(), None)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._unfinished and not self._feeders:  # O(1): no scan of every transfer
            self._idle.set()

    def _cancel_waiting(self, transfer: Transfer) -> None:
        """Cancel a transfer that has not started (queued or paused in line): no upload yet."""
        if transfer.state.finished or transfer.task is not None:
            return
        self._finish(
            transfer, _failed(transfer.job, TransferState.CANCELLED, "cancelled before it started")
        )

    async def join(self) -> list[TransferResult]:
        """Wait until every queued transfer has finished (and every feeding iterator ended);
        their results in queue order (those ``keep_finished`` kept, if set; ``outcomes``
        counts them all). A feeding iterator's error is raised here."""
        await self._idle.wait()
        if self._feed_errors:
            error = self._feed_errors[0]
            self._feed_errors.clear()
            raise error
        return [t.result for t in self.transfers.values() if t.result is not None]

    async def run(self, jobs: Iterable[FileJob] | AsyncIterable[FileJob]) -> list[TransferResult]:
        """Queue ``jobs`` (a list, or an async iterator fed as it yields) and wait for all."""
        if isinstance(jobs, AsyncIterable):
            self.submit_stream(jobs)
        else:
            self.submit(jobs)
        return await self.join()

    # user controls -------------------------------------------------------------------------
    def pause(self, transfer_id: int) -> None:
        """Hold a running transfer's next parts, or keep a queued one from starting."""
        transfer = self.transfers[transfer_id]
        if transfer.state is TransferState.QUEUED:
            self._set_state(transfer, TransferState.PAUSED)  # the pump passes it by
        elif transfer.state is TransferState.RUNNING and transfer.control is not None:
            transfer.control.running.clear()
            self._set_state(transfer, TransferState.PAUSED)

    def resume(self, transfer_id: int) -> None:
        transfer = self.transfers[transfer_id]
        if transfer.state is not TransferState.PAUSED:
            return
        if transfer.task is not None and transfer.control is not None:
            transfer.control.running.set()
            self._set_state(transfer, TransferState.RUNNING)
            return
        self._set_state(transfer, TransferState.QUEUED)
        if not transfer.in_line:
            transfer.in_line = True
            self._line.appendleft(transfer)  # it had its place before those queued since
        self._pump()

    def cancel(self, transfer_id: int) -> None:
        transfer = self.transfers[transfer_id]
        if transfer.task is not None and not transfer.task.done():
            transfer.cancel_requested = True
            if transfer.control is not None:
                transfer.control.running.set()
            transfer.task.cancel()
        else:
            self._cancel_waiting(transfer)

    def retry(self, transfer_id: int) -> None:
        """Run a failed or cancelled transfer again."""
        transfer = self.transfers[transfer_id]
        if transfer.state in (TransferState.FAILED, TransferState.CANCELLED):
            self.outcomes[transfer.state] -= 1
            transfer.result = None
            self._set_state(transfer, TransferState.QUEUED)
            self._idle.clear()
            if not transfer.in_line:
                transfer.in_line = True
                self._line.append(transfer)
            self._pump()

    def pause_all(self) -> None:
        for transfer_id in list(self._unfinished):
            self.pause(transfer_id)

    def resume_all(self) -> None:
        for transfer_id in list(self._unfinished):
            self.resume(transfer_id)

    def cancel_all(self) -> None:
        for transfer_id in list(self._unfinished):
            self.cancel(transfer_id)


_FORGETTABLE = frozenset({TransferState.DONE, TransferState.SKIPPED})


def _failed(job: FileJob, state: TransferState, message: str) -> TransferResult:
    return TransferResult(
        source=job.source,
        bucket=job.bucket,
        key=job.key,
        bytes=job.size,
        seconds=0.0,
        parts=0,
        sha256=None,
        status=state,
        message=message,
    )
