"""The part machinery of a multipart (or single-part) transfer: retries, part events, the
turnstile and digest order, reading a part from SFTP and sending it to S3.

A part's buffer, start to end: :meth:`FileTransfer._transfer_parts` takes it from the
buffer pool, :meth:`FileTransfer._part` fills it (:func:`read_part`), hashes it in byte
order (:meth:`PartOrder.hash`: the stream's SHA-256 and the part's MD5 and checksum), sends
it (:func:`send_part` → :meth:`MultipartUpload.upload_part`) and gives it back.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..aio import run_to_end
from ..config import ChecksumChoice, TransferOptions
from ..digest import DigestState, StreamDigest
from ..errors import TransferError
from ..events import EventBus, PartChanged, PartState
from ..s3.checksums import PartSums, part_sums
from .context import EngineContext
from .multipart import MultipartUpload
from .source_file import SourceFile

T = TypeVar("T")

THREAD_HASH_MIN = 1 << 20  # hash larger buffers off the loop (OpenSSL releases the GIL)


class Turnstile:
    """Lets parts through one at a time in part-number order (the digests need byte order)."""

    def __init__(self, first: int) -> None:
        self.next = first
        self.broken = False
        # One future per waiting part, no lock: a part cancelled while it waits can never
        # leave the others stuck.
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def break_(self) -> None:
        """A part failed, so some turn will never come: release every waiter (cancelled).

        Waiters are cancelled by their task group too, but a cancellation that asyncio
        swallows (3.11's wait_for / timeout races, e.g. in a read's reconnect) must not leave
        a part waiting forever — that hung the whole transfer.
        """
        self.broken = True
        for future in self._waiting.values():
            future.cancel()

    async def wait(self, number: int) -> None:
        if self.broken:
            raise asyncio.CancelledError
        if self.next == number:
            return
        future = self._waiting[number] = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self._waiting.pop(number, None)

    async def advance(self) -> None:
        self.next += 1
        future = self._waiting.get(self.next)
        if future is not None and not future.done():
            future.set_result(None)


class PartOrder:
    """Feeds parts to the stream digest in byte order; checkpoints it behind the uploaded prefix."""

    def __init__(self, upload: MultipartUpload, digest: StreamDigest, first: int) -> None:
        self.upload = upload
        self.digest = digest
        self.turn = Turnstile(first)
        self._states: dict[int, DigestState | None] = {}  # digest after part n, not yet saved
        self._done_through = first - 1  # every part up to here is hashed and in S3

    async def hash(self, number: int, view: memoryview) -> PartSums:
        """The part's own MD5 and checksum, then (in its turn) the stream digest."""
        upload = self.upload
        sums = await hash_part(upload.algorithm, view, upload.sends_md5, upload.body_signature)
        await self.turn.wait(number)
        try:
            await digest_into(self.digest, view)
            self._states[number] = self.digest.save()
        finally:
            await self.turn.advance()
        return sums

    def part_finished(self) -> None:
        """Advance the uploaded prefix; journal the digest state at its new end."""
        start = self._done_through
        while (
            self._done_through + 1 in self.upload.parts and self._done_through + 1 in self._states
        ):
            self._done_through += 1
        if self._done_through == start:
            return
        state = self._states[self._done_through]
        for n in [k for k in self._states if k <= self._done_through]:
            del self._states[n]
        if state is not None:
            self.upload.checkpoint(self._done_through, state)


class ReadsLeft:
    """Counts a file's part reads down; the source's unchanged-check starts after the last
    one, while the last parts are still uploading (a round trip less at the end of a far
    file). Nothing is published before :meth:`checked` has passed."""

    def __init__(self, count: int, check: Callable[[], Awaitable[None]]) -> None:
        self._left = count
        self._check = check
        self._task: asyncio.Future[None] | None = None

    def one_read(self) -> None:
        self._left -= 1
        if self._left == 0 and self._task is None:
            self._task = asyncio.ensure_future(self._check())

    async def checked(self) -> None:
        """The check's outcome (run now if no read started it: every part was resumed)."""
        if self._task is None:
            await self._check()
            return
        await self._task

    def discard(self) -> None:
        """Stop a check nobody will wait for (the file failed first)."""
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()  # retrieved: no "never retrieved" at exit


class PartEvents:
    """Emits one transfer's :class:`PartChanged` events (what the chunk map shows)."""

    def __init__(self, bus: EventBus, transfer_id: int) -> None:
        self.bus = bus
        self.transfer_id = transfer_id

    def changed(
        self, number: int, state: PartState, size: int, seconds: float = 0.0, side: str = ""
    ) -> None:
        self.bus.emit(
            PartChanged(
                transfer_id=self.transfer_id,
                part_number=number,
                state=state,
                size=size,
                seconds=seconds,
                side=side,  # type: ignore[arg-type]
            )
        )


async def with_retries(
    options: TransferOptions,
    step: Callable[[], Awaitable[T]],
    on_retry: Callable[[int, TransferError], None],
) -> T:
    """Run ``step``, retrying retryable errors with capped exponential backoff."""
    attempt = 1
    while True:
        try:
            return await step()
        except TransferError as exc:
            if not exc.retryable or attempt >= options.attempts:
                raise
            on_retry(attempt, exc)
            delay = min(options.backoff_seconds * 2 ** (attempt - 1), options.backoff_max_seconds)
            await asyncio.sleep(delay)
            attempt += 1


async def off_loop(work: Callable[[], T], length: int) -> T:
    """Run CPU work on a buffer of ``length`` bytes, in a thread when it is big.

    A cancel while a thread works waits for the thread before it goes on: the buffer must
    not be released (or reused) under the thread's feet.
    """
    if length < THREAD_HASH_MIN:
        return work()
    return await run_to_end(asyncio.to_thread(work))


async def digest_into(digest: StreamDigest, view: memoryview) -> None:
    """Feed the stream digest (SHA-256 and CRC64NVME of the whole file, in byte order)."""
    await off_loop(lambda: digest.update(view), len(view))


async def hash_part(
    algorithm: ChecksumChoice, view: memoryview, md5: bool, payload_sha256: bool | str
) -> PartSums:
    """The part's own MD5 and checksum, and what SigV4 signs as its body's hash
    (:func:`operations.body_signature`); parts need no order, so several hash at once."""
    return await off_loop(
        lambda: part_sums(algorithm, view, md5=md5, payload_sha256=payload_sha256), len(view)
    )


async def hash_whole_file(
    algorithm: ChecksumChoice, view: memoryview, md5: bool, payload_sha256: bool | str
) -> tuple[PartSums, str]:
    """A one-part file's sums and its SHA-256 in one pass off the loop. The body is the
    whole file, so a payload SHA-256 computed for SigV4 is the file's too; else hashlib
    hashes it once (a :class:`StreamDigest` would also keep a CRC and a savable state that
    a one-part file never needs)."""

    def work() -> tuple[PartSums, str]:
        sums = part_sums(algorithm, view, md5=md5, payload_sha256=payload_sha256)
        if payload_sha256 is True and sums.payload_sha256:
            return sums, sums.payload_sha256
        return sums, hashlib.sha256(view).hexdigest()

    return await off_loop(work, len(view))


async def read_part(
    ctx: EngineContext,
    source: SourceFile,
    events: PartEvents,
    number: int,
    offset: int,
    view: memoryview,
    reading: asyncio.Semaphore,
) -> None:
    """SFTP → the part's buffer, with retries; one of the file's ``reading`` slots."""
    length = len(view)
    events.changed(number, PartState.READING, length)
    began = time.monotonic()
    async with reading, ctx.sftp_slots:
        await with_retries(
            ctx.options,
            lambda: source.read(offset, view),
            lambda a, e: events.changed(number, PartState.RETRIED, length, side="sftp"),
        )
    events.changed(number, PartState.UPLOADING, length, time.monotonic() - began)


async def send_part(
    ctx: EngineContext,
    upload: MultipartUpload,
    events: PartEvents,
    number: int,
    buffer: bytearray,
    sums: PartSums,
) -> None:
    """The part's buffer → UploadPart, with retries; one of the queue's S3 slots."""
    length = len(buffer)
    began = time.monotonic()
    async with ctx.s3_slots:
        await ctx.loop_share.turn()
        await with_retries(
            ctx.options,
            lambda: upload.upload_part(number, buffer, sums, upload_timeout(ctx.options, length)),
            lambda a, e: events.changed(number, PartState.RETRIED, length, side="s3"),
        )
    events.changed(number, PartState.DONE, length, time.monotonic() - began)


def upload_timeout(options: TransferOptions, length: int) -> float:
    """Seconds one upload attempt of ``length`` bytes may take before it counts as stalled."""
    return options.upload_timeout_seconds or 120.0 + length / (1 << 20)


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed part group: a user-facing one if there is one,
    and among those a definitive answer (not retryable: the file is gone, a checksum
    differs) before a symptom such as a dropped connection another part met meanwhile."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, TransferError) and not leaf.retryable:
            return leaf
    for wanted in (TransferError, Exception):
        for leaf in leaves:
            if isinstance(leaf, wanted):
                return leaf
    return leaves[0]
