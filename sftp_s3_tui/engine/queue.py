"""Many files: a queue with a global memory budget, per-side limits and user controls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from types import TracebackType

from .buffers import BufferPool
from .config import S3Endpoint, SftpEndpoint, TransferOptions
from .errors import TransferError
from .events import (
    EventBus,
    TransferFinished,
    TransferQueued,
    TransferResult,
    TransferState,
    TransferStateChanged,
)
from .journal import Journal
from .locations import S3Location
from .pipeline import EngineContext, FileTransfer, TransferControl
from .plan import FileJob, expand
from .s3 import S3Client, open_client
from .sftp import SftpPool

log = logging.getLogger(__name__)


@dataclass
class Transfer:
    """One queued file and where it stands."""

    id: int
    job: FileJob
    state: TransferState = TransferState.QUEUED
    result: TransferResult | None = None
    control: TransferControl = field(default_factory=TransferControl)
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False


class TransferQueue:
    """Runs file jobs concurrently within the memory budget and the per-side limits.

    Use as an async context manager: it opens the S3 client and the SFTP pool, and on exit
    cancels what still runs (aborting those uploads) and closes the connections.
    """

    def __init__(
        self,
        s3_endpoint: S3Endpoint,
        options: TransferOptions | None = None,
        *,
        bus: EventBus | None = None,
        journal: Journal | None = None,
        sftp: SftpPool | None = None,
    ) -> None:
        self.s3_endpoint = s3_endpoint
        self.options = options or TransferOptions()
        self.bus = bus or EventBus()
        self.journal = journal
        self.sftp = sftp or SftpPool()
        self.pool = BufferPool(self.options.memory_budget)
        self.transfers: dict[int, Transfer] = {}
        self._ids = itertools.count(1)
        self._file_slots = asyncio.Semaphore(self.options.files_in_flight)
        self._stack = contextlib.AsyncExitStack()
        self._ctx: EngineContext | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._unfinished: set[int] = set()  # ids whose state is not final (join waits on it)

    @property
    def s3(self) -> S3Client:
        assert self._ctx is not None, "use the queue as an async context manager"
        return self._ctx.s3

    async def __aenter__(self) -> TransferQueue:
        options = self.options
        client = await self._stack.enter_async_context(
            open_client(self.s3_endpoint, connections=options.s3_concurrency + 8)
        )
        self._stack.push_async_callback(self.sftp.close)
        self._ctx = EngineContext(
            sftp=self.sftp,
            s3=client,
            pool=self.pool,
            options=options,
            bus=self.bus,
            journal=self.journal,
            sftp_slots=asyncio.Semaphore(options.sftp_concurrency),
            s3_slots=asyncio.Semaphore(options.s3_concurrency),
            storage_class=self.s3_endpoint.storage_class,
            server_side_encryption=self.s3_endpoint.server_side_encryption,
            endpoint_name=self.s3_endpoint.display,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
        await self._stack.aclose()

    async def shutdown(self) -> None:
        """Cancel every unfinished transfer and wait until their uploads are aborted."""
        running = [t for t in self.transfers.values() if t.task and not t.task.done()]
        for transfer in running:
            transfer.cancel_requested = True
            assert transfer.task is not None
            transfer.task.cancel()
        if running:
            await asyncio.gather(*(t.task for t in running if t.task), return_exceptions=True)

    async def expand(self, endpoint: SftpEndpoint, path: str, dest: S3Location) -> list[FileJob]:
        """Turn a file, folder or glob into file jobs under ``dest``."""
        return await expand(self.sftp, endpoint, path, dest)

    def submit(self, jobs: list[FileJob]) -> list[Transfer]:
        """Queue jobs; they start as file slots free up."""
        added = []
        for job in jobs:
            transfer = Transfer(id=next(self._ids), job=job)
            self.transfers[transfer.id] = transfer
            self._unfinished.add(transfer.id)
            self.bus.emit(
                TransferQueued(
                    transfer_id=transfer.id,
                    source=job.source,
                    bucket=job.bucket,
                    key=job.key,
                    size=job.size,
                )
            )
            self._start(transfer)
            added.append(transfer)
        return added

    def _start(self, transfer: Transfer) -> None:
        self._idle.clear()
        transfer.cancel_requested = False
        transfer.task = asyncio.create_task(self._run(transfer), name=f"transfer-{transfer.id}")

    def _set_state(self, transfer: Transfer, state: TransferState) -> None:
        transfer.state = state
        if state.finished:
            self._unfinished.discard(transfer.id)
        else:
            self._unfinished.add(transfer.id)
        self.bus.emit(TransferStateChanged(transfer_id=transfer.id, state=state))

    async def _run(self, transfer: Transfer) -> None:
        assert self._ctx is not None
        job = transfer.job
        file_transfer: FileTransfer | None = None
        try:
            await transfer.control.running.wait()
            async with self._file_slots:
                self._set_state(transfer, TransferState.RUNNING)
                file_transfer = FileTransfer(self._ctx, transfer.id, job, transfer.control)
                result = await file_transfer.run()
        except TransferError as exc:
            result = _failed(job, TransferState.FAILED, str(exc))
        except asyncio.CancelledError:
            note = file_transfer.cancel_note() if file_transfer else "nothing was published"
            result = _failed(job, TransferState.CANCELLED, f"cancelled; {note}")
            if not transfer.cancel_requested:
                self._finish(transfer, result)
                raise
        except Exception as exc:  # a bug must still end the transfer with a message
            log.exception("transfer of %s failed unexpectedly", job.source)
            result = _failed(job, TransferState.FAILED, f"unexpected error: {exc!r}")
        self._finish(transfer, result)

    def _finish(self, transfer: Transfer, result: TransferResult) -> None:
        transfer.result = result
        self._set_state(transfer, result.status)
        self.bus.emit(TransferFinished(transfer_id=transfer.id, result=result))
        if not self._unfinished:  # O(1): checking every transfer made big queues O(n²)
            self._idle.set()

    async def join(self) -> list[TransferResult]:
        """Wait until every queued transfer has finished; their results in queue order."""
        await self._idle.wait()
        return [t.result for t in self.transfers.values() if t.result is not None]

    async def run(self, jobs: list[FileJob]) -> list[TransferResult]:
        """Queue ``jobs`` and wait for all of them."""
        self.submit(jobs)
        return await self.join()

    # user controls -------------------------------------------------------------------------
    def pause(self, transfer_id: int) -> None:
        transfer = self.transfers[transfer_id]
        if not transfer.state.finished and transfer.control.running.is_set():
            transfer.control.running.clear()
            self._set_state(transfer, TransferState.PAUSED)

    def resume(self, transfer_id: int) -> None:
        transfer = self.transfers[transfer_id]
        if transfer.state is TransferState.PAUSED:
            transfer.control.running.set()
            self._set_state(transfer, TransferState.RUNNING)

    def cancel(self, transfer_id: int) -> None:
        transfer = self.transfers[transfer_id]
        if transfer.task is not None and not transfer.task.done():
            transfer.cancel_requested = True
            transfer.control.running.set()
            transfer.task.cancel()

    def retry(self, transfer_id: int) -> None:
        """Run a failed or cancelled transfer again."""
        transfer = self.transfers[transfer_id]
        if transfer.state in (TransferState.FAILED, TransferState.CANCELLED):
            transfer.result = None
            transfer.control = TransferControl()
            self._set_state(transfer, TransferState.QUEUED)
            self._start(transfer)

    def pause_all(self) -> None:
        for transfer_id in list(self.transfers):
            self.pause(transfer_id)

    def resume_all(self) -> None:
        for transfer_id in list(self.transfers):
            self.resume(transfer_id)

    def cancel_all(self) -> None:
        for transfer_id in list(self.transfers):
            self.cancel(transfer_id)


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
