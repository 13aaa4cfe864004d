"""One file: SFTP reads → pooled part buffers → concurrent uploads → complete → verify."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncssh
from botocore.exceptions import BotoCoreError, ClientError

from .buffers import BufferPool
from .config import MAX_PART_SIZE, ConflictPolicy, TransferOptions
from .digest import StreamDigest, b64, crc64nvme
from .errors import S3Error, SourceChanged, TransferError, UsageError, VerificationFailed
from .events import (
    EventBus,
    PartChanged,
    PartState,
    TransferNotice,
    TransferResult,
    TransferStarted,
    TransferState,
)
from .journal import Journal, JournalEntry, JournalWriter
from .plan import FileJob, part_count, part_size_for
from .s3 import (
    PreconditionFailed,
    S3Client,
    abort_upload,
    check_bucket,
    head_object,
    list_uploaded_parts,
    map_s3_error,
)
from .sftp import SftpPool, map_sftp_error, read_into

log = logging.getLogger(__name__)
T = TypeVar("T")

READS_PER_FILE = 2  # parts of one file read at once: enough to hide the gap between parts
THREAD_HASH_MIN = 1 << 20  # hash larger buffers off the loop (OpenSSL releases the GIL)
META_SHA256 = "sha256"
META_MTIME = "source-mtime"


@dataclass
class EngineContext:
    """What every transfer of a queue shares; the slots enforce the options' global limits."""

    sftp: SftpPool
    s3: S3Client
    pool: BufferPool
    options: TransferOptions
    bus: EventBus
    sftp_slots: asyncio.Semaphore
    s3_slots: asyncio.Semaphore
    journal: Journal | None = None
    buckets_checked: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    storage_class: str | None = None
    server_side_encryption: str | None = None

    async def ensure_bucket(self, bucket: str) -> None:
        task = self.buckets_checked.get(bucket)
        if task is None:
            task = asyncio.ensure_future(check_bucket(self.s3, bucket))
            self.buckets_checked[bucket] = task
        try:
            await asyncio.shield(task)
        except TransferError:
            self.buckets_checked.pop(bucket, None)
            raise


class TransferControl:
    """Pause gate of one transfer: parts start only while ``running`` is set."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.running.set()


class _Turnstile:
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


class _Source:
    """The open remote file, reopened (with a new connection if need be) after a drop."""

    def __init__(self, ctx: EngineContext, job: FileJob) -> None:
        self.ctx = ctx
        self.job = job
        self._file: asyncssh.SFTPClientFile | None = None
        self._client: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    async def file(self) -> asyncssh.SFTPClientFile:
        async with self._lock:
            if self._file is None:
                options = self.ctx.options
                self._client = await self.ctx.sftp.client(self.job.endpoint)
                try:
                    async with asyncio.timeout(self.job.endpoint.request_timeout_seconds):
                        self._file = await self._client.open(
                            self.job.path,
                            "rb",
                            block_size=options.sftp_block_size or -1,
                            max_requests=options.sftp_requests or -1,
                        )
                except (OSError, asyncssh.Error, TimeoutError) as exc:
                    if isinstance(exc, TimeoutError):  # a stalled connection: reconnect next time
                        await self.ctx.sftp.invalidate(self.job.endpoint, self._client)
                    raise map_sftp_error(exc, self.job.path) from exc
            return self._file

    async def attributes(self) -> tuple[int, int]:
        """Current (size, mtime) of the open file."""
        file = await self.file()
        timeout = self.job.endpoint.request_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                attrs = await file.stat()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.reset()
            raise map_sftp_error(exc, self.job.path) from exc
        return attrs.size or 0, int(attrs.mtime or 0)

    async def read(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; a short read means the file shrank."""
        file = await self.file()
        timeout = self.job.endpoint.request_timeout_seconds
        try:
            count = await read_into(file, offset, view, stall_seconds=timeout)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.reset()
            raise map_sftp_error(exc, self.job.path) from exc
        if count != len(view):
            raise SourceChanged(
                f"{self.job.path} ended at {offset + count} bytes, expected {self.job.size}",
                "the file shrank while it was read; nothing was published",
            )

    async def reset(self) -> None:
        """Forget the file and its connection so the next read reconnects."""
        file, client = self._file, self._client
        self._file = self._client = None
        if file is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):  # not wait_for: it can swallow a cancel (3.11)
                    await file.close()
        if client is not None:
            await self.ctx.sftp.invalidate(self.job.endpoint, client)

    async def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):  # not wait_for: it can swallow a cancel (3.11)
                    await self._file.close()
            self._file = None


async def _with_retries(
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


async def _digest(digest: StreamDigest, view: memoryview) -> int:
    """Feed the stream digest and return the part's own CRC64NVME."""

    def work() -> int:
        digest.update(view)
        return crc64nvme(view)

    if len(view) >= THREAD_HASH_MIN:
        return await asyncio.to_thread(work)
    return work()


class FileTransfer:
    """Moves one file; ``run()`` returns its result or raises a :class:`TransferError`."""

    def __init__(
        self, ctx: EngineContext, transfer_id: int, job: FileJob, control: TransferControl
    ) -> None:
        self.ctx = ctx
        self.id = transfer_id
        self.job = job
        self.control = control
        self.started = time.monotonic()
        self.upload_id: str | None = None
        self.resumed_parts = 0
        self._published = False

    def _emit_part(
        self, number: int, state: PartState, size: int, seconds: float = 0.0, side: str = ""
    ) -> None:
        self.ctx.bus.emit(
            PartChanged(
                transfer_id=self.id,
                part_number=number,
                state=state,
                size=size,
                seconds=seconds,
                side=side,  # type: ignore[arg-type]
            )
        )

    def _notice(self, message: str) -> None:
        log.info("%s: %s", self.job.source, message)
        self.ctx.bus.emit(TransferNotice(transfer_id=self.id, message=message))

    def _result(
        self, state: TransferState, sha256: str | None, parts: int, message: str = ""
    ) -> TransferResult:
        return TransferResult(
            source=self.job.source,
            bucket=self.job.bucket,
            key=self.job.key,
            bytes=self.job.size,
            seconds=time.monotonic() - self.started,
            parts=parts,
            sha256=sha256,
            status=state,
            message=message,
            resumed_parts=self.resumed_parts,
        )

    async def run(self) -> TransferResult:
        ctx = self.ctx
        if self.job.problem:
            raise UsageError(self.job.problem)
        await ctx.ensure_bucket(self.job.bucket)
        source = _Source(ctx, self.job)
        try:
            size, mtime = await _with_retries(
                ctx.options, source.attributes, lambda a, e: self._notice(f"retrying: {e}")
            )
            self.job = replace(self.job, size=size, mtime=mtime)
            skip = await self._conflict(source, size, mtime)
            if skip:
                return self._result(TransferState.SKIPPED, None, 0, skip)
            part_size = part_size_for(size, ctx.options.part_size)
            if part_size != ctx.options.part_size and size > ctx.options.part_size:
                self._notice(
                    f"part size raised to {part_size // (1 << 20)} MiB to stay within 10,000 parts"
                )
            if size <= part_size:
                return await self._single(source, size)
            return await self._multipart(source, size, part_size)
        finally:
            await source.close()

    async def _conflict(self, source: _Source, size: int, mtime: int) -> str:
        """Why the transfer is skipped under the queue's conflict policy ('' = go ahead)."""
        policy = self.ctx.options.conflict
        if policy in (ConflictPolicy.OVERWRITE, ConflictPolicy.SKIP_EXISTING):
            return ""  # skip-existing is decided race-free by the conditional write itself
        head = await head_object(self.ctx.s3, self.job.bucket, self.job.key)
        if head is None:
            return ""
        meta = head.get("Metadata", {})
        if policy is ConflictPolicy.IF_NEWER:
            existing = meta.get(META_MTIME)
            theirs = (
                int(existing)
                if existing and existing.isdigit()
                else int(head["LastModified"].timestamp())
            )
            return "" if mtime > theirs else "the object is as new as the source"
        if head.get("ContentLength") != size:
            return ""
        stored = meta.get(META_SHA256) or await self._sha256_tag()
        if stored and await self._same_content(source, stored):
            return "the object already has the same size and sha256"
        return ""

    async def _sha256_tag(self) -> str | None:
        """The sha256 a multipart upload of ours left as an object tag, if any."""
        try:
            tags = await self.ctx.s3.get_object_tagging(Bucket=self.job.bucket, Key=self.job.key)
        except (ClientError, BotoCoreError):
            return None
        found = [t["Value"] for t in tags.get("TagSet", []) if t.get("Key") == META_SHA256]
        return found[0] if found else None

    async def _same_content(self, source: _Source, sha256: str) -> bool:
        """Hash the already open source (streaming, no upload); compare with ``sha256``."""
        digest = StreamDigest()
        step = min(self.ctx.options.part_size, max(self.job.size, 1))
        buffer = await self.ctx.pool.acquire(step)
        view = memoryview(buffer)
        try:
            for offset in range(0, self.job.size, step):
                with view[: min(step, self.job.size - offset)] as chunk:
                    await source.read(offset, chunk)
                    await _digest(digest, chunk)
        finally:
            view.release()
            self.ctx.pool.release(buffer)
        return digest.sha256_hex() == sha256

    def _object_options(self) -> dict[str, Any]:
        """Storage class and encryption, for every request that creates the object."""
        extra: dict[str, Any] = {}
        if self.ctx.storage_class:
            extra["StorageClass"] = self.ctx.storage_class
        if self.ctx.server_side_encryption:
            extra["ServerSideEncryption"] = self.ctx.server_side_encryption
        return extra

    def _publish_condition(self) -> dict[str, Any]:
        """If-None-Match on the request that publishes the key, when skipping existing ones."""
        skip = self.ctx.options.conflict is ConflictPolicy.SKIP_EXISTING
        return {"IfNoneMatch": "*"} if skip else {}

    async def _single(self, source: _Source, size: int) -> TransferResult:
        """A file of at most one part: one read, one PutObject."""
        ctx = self.ctx
        self.ctx.bus.emit(
            TransferStarted(
                transfer_id=self.id, size=size, part_size=size, part_count=1, multipart=False
            )
        )
        digest = StreamDigest()
        await self.control.running.wait()
        buffer = await ctx.pool.acquire(size)
        view = memoryview(buffer)
        try:
            self._emit_part(1, PartState.READING, size)
            began = time.monotonic()
            async with ctx.sftp_slots:
                await _with_retries(
                    ctx.options,
                    lambda: source.read(0, view),
                    lambda a, e: self._emit_part(1, PartState.RETRIED, size, side="sftp"),
                )
            self._emit_part(1, PartState.UPLOADING, size, time.monotonic() - began)
            crc = await _digest(digest, view)
            await self._check_unchanged(source)
            metadata = {META_SHA256: digest.sha256_hex(), META_MTIME: str(self.job.mtime)}
            began = time.monotonic()

            async def put() -> dict[str, Any]:
                what = f"Writing s3://{self.job.bucket}/{self.job.key}"
                try:
                    async with _upload_deadline(ctx.options, size, what):
                        return await ctx.s3.put_object(  # type: ignore[no-any-return]
                            Bucket=self.job.bucket,
                            Key=self.job.key,
                            Body=buffer,
                            ContentLength=size,
                            ChecksumAlgorithm="CRC64NVME",
                            ChecksumCRC64NVME=b64(crc, 8),
                            Metadata=metadata,
                            **self._object_options(),
                            **self._publish_condition(),
                        )
                except (ClientError, BotoCoreError) as exc:
                    raise map_s3_error(exc, what) from exc

            try:
                async with ctx.s3_slots:
                    response = await _with_retries(
                        ctx.options,
                        put,
                        lambda a, e: self._emit_part(1, PartState.RETRIED, size, side="s3"),
                    )
            except PreconditionFailed:
                self._emit_part(1, PartState.DONE, 0)
                return self._result(TransferState.SKIPPED, None, 0, "the key already exists")
            self._published = True
            self._emit_part(1, PartState.DONE, size, time.monotonic() - began)
        finally:
            view.release()
            ctx.pool.release(buffer)
        # S3 checked the body against the CRC64NVME we sent (or refused it); its answer
        # echoes the checksum it stored, so one object needs no extra HEAD round trip.
        stored = response.get("ChecksumCRC64NVME")
        if stored is None and ctx.options.verify:
            await self._verify(size, digest, sha256_in_metadata=True)
        elif stored is not None and stored != digest.crc64nvme_b64():
            await self._reject(f"S3 stored CRC64NVME {stored} ≠ {digest.crc64nvme_b64()}")
        return self._result(TransferState.DONE, digest.sha256_hex(), 1)

    async def _check_unchanged(self, source: _Source) -> None:
        size, mtime = await _with_retries(self.ctx.options, source.attributes, lambda a, e: None)
        if size != self.job.size or mtime != self.job.mtime:
            raise SourceChanged(
                f"{self.job.path} changed while it was read (size {self.job.size} → {size})",
                "nothing was published; transfer it again once it is complete",
            )

    async def _start_upload(
        self, size: int, part_size: int
    ) -> tuple[dict[int, tuple[str, str]], StreamDigest, int, JournalWriter | None]:
        """Create the multipart upload, or continue a journaled one.

        Returns the parts already uploaded, the digest restored to the last checkpoint, the
        first part to read, and the journal writer.
        """
        ctx, job = self.ctx, self.job
        journal = ctx.journal
        if journal is not None:
            entry = journal.load(job.source, job.bucket, job.key)
            if entry is not None:
                resumed = await self._reconcile(entry, size, part_size)
                if resumed is not None:
                    return resumed
        try:
            response = await ctx.s3.create_multipart_upload(
                Bucket=job.bucket,
                Key=job.key,
                ChecksumAlgorithm="CRC64NVME",
                ChecksumType="FULL_OBJECT",
                Metadata={META_MTIME: str(job.mtime)},
                **self._object_options(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, f"Starting the upload of s3://{job.bucket}/{job.key}") from exc
        self.upload_id = response["UploadId"]
        writer = None
        if journal is not None:
            writer = await asyncio.to_thread(
                journal.start,
                JournalEntry(
                    job.source, job.bucket, job.key, self.upload_id, part_size, size, job.mtime
                ),
            )
        return {}, StreamDigest(), 1, writer

    async def _reconcile(
        self, entry: JournalEntry, size: int, part_size: int
    ) -> tuple[dict[int, tuple[str, str]], StreamDigest, int, JournalWriter | None] | None:
        ctx, job = self.ctx, self.job
        assert ctx.journal is not None
        if entry.size != size or entry.mtime != job.mtime or entry.part_size != part_size:
            self._notice("the source changed since the last attempt; restarting from zero")
            await self._abort_quietly(entry.upload_id)
            return None
        listed = await list_uploaded_parts(ctx.s3, job.bucket, job.key, entry.upload_id)
        if listed is None:
            self._notice("the earlier upload is gone from S3; restarting from zero")
            return None
        parts = {
            n: etag_crc
            for n, etag_crc in entry.parts.items()
            if listed.get(n, "").strip('"') == etag_crc[0].strip('"')
        }
        self.upload_id = entry.upload_id
        # The digest restarts at the furthest checkpoint whose parts are all uploaded.
        checkpoint = 0
        for n in sorted(entry.digest):
            if all(p in parts for p in range(1, n + 1)):
                checkpoint = n
        digest = StreamDigest(entry.digest[checkpoint]) if checkpoint else StreamDigest()
        self.resumed_parts = len(parts)
        self._notice(f"resuming: {len(parts)} parts already uploaded")
        return parts, digest, checkpoint + 1, ctx.journal.resume(entry)

    async def _abort_quietly(self, upload_id: str) -> None:
        try:
            await abort_upload(self.ctx.s3, self.job.bucket, self.job.key, upload_id)
        except TransferError as exc:
            # The upload still exists: keep its journal entry so `cleanup` or a rerun finds it.
            log.warning("%s: could not abort upload %s: %s", self.job.source, upload_id, exc)
            return
        if self.ctx.journal is not None:
            self.ctx.journal.forget(self.job.source, self.job.bucket, self.job.key)

    async def _multipart(self, source: _Source, size: int, part_size: int) -> TransferResult:
        ctx, job = self.ctx, self.job
        count = part_count(size, part_size)
        parts, digest, first, writer = await self._start_upload(size, part_size)
        ctx.bus.emit(
            TransferStarted(
                transfer_id=self.id,
                size=size,
                part_size=part_size,
                part_count=count,
                multipart=True,
                resumed_parts=tuple(sorted(parts)),
            )
        )
        completed = False
        try:
            await self._transfer_parts(source, size, part_size, count, parts, digest, first, writer)
            await self._check_unchanged(source)
            await self._complete(parts, digest)
            completed = True
        except BaseException:
            if not completed and self.upload_id:
                await asyncio.shield(self._abort_quietly(self.upload_id))
            raise
        finally:
            if writer is not None:
                writer.close()
        if ctx.journal is not None:
            ctx.journal.forget(job.source, job.bucket, job.key)
        if not self._published:
            return self._result(TransferState.SKIPPED, None, 0, "the key already exists")
        await self._store_sha256(size, digest.sha256_hex())
        await self._verify(size, digest, sha256_in_metadata=self.ctx.options.sha256_metadata)
        return self._result(TransferState.DONE, digest.sha256_hex(), count)

    async def _transfer_parts(
        self,
        source: _Source,
        size: int,
        part_size: int,
        count: int,
        parts: dict[int, tuple[str, str]],
        digest: StreamDigest,
        first: int,
        writer: JournalWriter | None,
    ) -> None:
        ctx, job = self.ctx, self.job
        turn = _Turnstile(first)
        held = asyncio.Semaphore(ctx.options.parts_in_flight)
        reading = asyncio.Semaphore(READS_PER_FILE)
        checkpoints: dict[int, Any] = {}
        done_prefix = first - 1

        def mark_done(number: int) -> None:
            nonlocal done_prefix
            advanced = False
            while done_prefix + 1 in parts and done_prefix + 1 in checkpoints:
                done_prefix += 1
                advanced = True
            if advanced and writer is not None:
                state = checkpoints[done_prefix]
                for n in [k for k in checkpoints if k <= done_prefix]:
                    del checkpoints[n]
                if state is not None:
                    writer.digest_at(done_prefix, state, sync=False)

        async def one_part(number: int, buffer: bytearray) -> None:
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            view = memoryview(buffer)[:length]
            try:
                self._emit_part(number, PartState.READING, length)
                began = time.monotonic()
                async with reading, ctx.sftp_slots:
                    await _with_retries(
                        ctx.options,
                        lambda: source.read(offset, view),
                        lambda a, e: self._emit_part(
                            number, PartState.RETRIED, length, side="sftp"
                        ),
                    )
                self._emit_part(number, PartState.UPLOADING, length, time.monotonic() - began)
                await turn.wait(number)
                try:
                    crc = await _digest(digest, view)
                    checkpoints[number] = digest.save()
                finally:
                    await turn.advance()
                if number in parts:
                    if parts[number][1] != b64(crc, 8):
                        raise SourceChanged(
                            f"{job.path} differs from what the earlier attempt uploaded",
                            "the source changed; transfer it again from zero",
                        )
                else:
                    began = time.monotonic()
                    async with ctx.s3_slots:
                        etag = await _with_retries(
                            ctx.options,
                            lambda: self._upload_part(number, buffer, crc),
                            lambda a, e: self._emit_part(
                                number, PartState.RETRIED, length, side="s3"
                            ),
                        )
                    parts[number] = (etag, b64(crc, 8))
                    if writer is not None:
                        writer.part_done(number, etag, b64(crc, 8), sync=False)
                    self._emit_part(number, PartState.DONE, length, time.monotonic() - began)
                mark_done(number)
                if writer is not None:
                    writer.flush()  # the part and any digest checkpoint: one append, one sync
            except BaseException:
                turn.break_()
                self._emit_part(number, PartState.FAILED, length)
                raise
            finally:
                view.release()
                ctx.pool.release(buffer)
                held.release()

        try:
            async with asyncio.TaskGroup() as group:
                for number in range(first, count + 1):
                    await self.control.running.wait()
                    await held.acquire()
                    try:
                        length = min(part_size, size - (number - 1) * part_size)
                        buffer = await ctx.pool.acquire(length)
                    except BaseException:
                        held.release()
                        raise
                    group.create_task(one_part(number, buffer))
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None

    async def _upload_part(self, number: int, buffer: bytearray, crc: int) -> str:
        """Upload one part straight from its pool buffer (sized exactly, so no copy)."""
        job = self.job
        what = f"Uploading part {number} of s3://{job.bucket}/{job.key}"
        try:
            async with _upload_deadline(self.ctx.options, len(buffer), what):
                response = await self.ctx.s3.upload_part(
                    Bucket=job.bucket,
                    Key=job.key,
                    UploadId=self.upload_id,
                    PartNumber=number,
                    Body=buffer,
                    ContentLength=len(buffer),
                    ChecksumAlgorithm="CRC64NVME",
                    ChecksumCRC64NVME=b64(crc, 8),
                )
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, what) from exc
        return str(response["ETag"])

    async def _complete(self, parts: dict[int, tuple[str, str]], digest: StreamDigest) -> None:
        job = self.job
        extra = self._publish_condition()
        try:
            await self.ctx.s3.complete_multipart_upload(
                Bucket=job.bucket,
                Key=job.key,
                UploadId=self.upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": n, "ETag": etag, "ChecksumCRC64NVME": crc}
                        for n, (etag, crc) in sorted(parts.items())
                    ]
                },
                ChecksumCRC64NVME=digest.crc64nvme_b64(),
                ChecksumType="FULL_OBJECT",
                **extra,
            )
        except ClientError as exc:
            error = map_s3_error(exc, f"Completing s3://{job.bucket}/{job.key}")
            if isinstance(error, PreconditionFailed):
                assert self.upload_id is not None
                await self._abort_quietly(self.upload_id)
                self.upload_id = None
                return
            raise error from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, f"Completing s3://{job.bucket}/{job.key}") from exc
        self._published = True

    async def _store_sha256(self, size: int, sha256: str) -> None:
        """Record the stream's SHA-256 on a multipart object.

        Its metadata is fixed when the upload starts, before the stream is hashed, so by
        default the SHA-256 becomes an object tag (a small metadata-only request). With
        ``sha256_metadata`` it goes into ``x-amz-meta-sha256`` by a server-side copy of the
        object onto itself, which costs time in proportion to the object's size.
        """
        job = self.job
        if not self.ctx.options.sha256_metadata:
            try:
                await self.ctx.s3.put_object_tagging(
                    Bucket=job.bucket,
                    Key=job.key,
                    Tagging={"TagSet": [{"Key": META_SHA256, "Value": sha256}]},
                )
            except (ClientError, BotoCoreError) as exc:
                reason = map_s3_error(exc, "tagging").message
                self._notice(f"the sha256 could not be tagged on the object ({reason})")
            return
        metadata = {META_SHA256: sha256, META_MTIME: str(job.mtime)}
        extra = self._object_options()
        try:
            if size <= MAX_PART_SIZE:
                await self.ctx.s3.copy_object(
                    Bucket=job.bucket,
                    Key=job.key,
                    CopySource={"Bucket": job.bucket, "Key": job.key},
                    Metadata=metadata,
                    MetadataDirective="REPLACE",
                    ChecksumAlgorithm="CRC64NVME",
                    **extra,
                )
            else:
                await self._copy_multipart(size, metadata, extra)
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, f"Recording the sha256 of s3://{job.bucket}/{job.key}") from exc

    async def _copy_multipart(
        self, size: int, metadata: dict[str, str], extra: dict[str, Any]
    ) -> None:
        job, s3 = self.job, self.ctx.s3
        created = await s3.create_multipart_upload(
            Bucket=job.bucket,
            Key=job.key,
            Metadata=metadata,
            ChecksumAlgorithm="CRC64NVME",
            **extra,
        )
        upload_id = created["UploadId"]
        try:
            step = MAX_PART_SIZE
            parts = []
            for number, offset in enumerate(range(0, size, step), start=1):
                last = min(offset + step, size) - 1
                response = await s3.upload_part_copy(
                    Bucket=job.bucket,
                    Key=job.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": job.bucket, "Key": job.key},
                    CopySourceRange=f"bytes={offset}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=job.bucket, Key=job.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await asyncio.shield(abort_upload(s3, job.bucket, job.key, upload_id))
            raise

    async def _verify(self, size: int, digest: StreamDigest, *, sha256_in_metadata: bool) -> None:
        """HEAD the object and compare size, stored sha256 and S3's CRC64NVME with the stream."""
        if not self.ctx.options.verify:
            return
        job = self.job
        head = await head_object(self.ctx.s3, job.bucket, job.key)
        problems = []
        if head is None:
            problems.append("the object is missing after the upload")
        else:
            if head.get("ContentLength") != size:
                problems.append(f"size {head.get('ContentLength')} ≠ {size}")
            stored = head.get("Metadata", {}).get(META_SHA256)
            if (stored is not None or sha256_in_metadata) and stored != digest.sha256_hex():
                problems.append(f"stored sha256 {stored} ≠ {digest.sha256_hex()}")
            crc = head.get("ChecksumCRC64NVME")
            if crc and "-" not in crc and crc != digest.crc64nvme_b64():
                problems.append(f"S3's CRC64NVME {crc} ≠ {digest.crc64nvme_b64()}")
        if problems:
            await self._reject("; ".join(problems))

    async def _reject(self, problem: str) -> None:
        """Remove an object that does not match its source and fail the transfer."""
        job = self.job
        with contextlib.suppress(ClientError, BotoCoreError):
            await self.ctx.s3.delete_object(Bucket=job.bucket, Key=job.key)
        raise VerificationFailed(
            f"s3://{job.bucket}/{job.key} does not match the source: {problem}",
            "the object was removed; transfer it again",
        )


@contextlib.asynccontextmanager
async def _upload_deadline(options: TransferOptions, length: int, what: str) -> AsyncIterator[None]:
    """Bound one upload attempt; a stalled S3 becomes a retryable :class:`S3Error`."""
    seconds = options.upload_timeout_seconds or 120.0 + length / (1 << 20)
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise S3Error(f"{what}: S3 did not answer within {seconds:.0f} s", "S3 stalled") from exc


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed part group: a user-facing one if there is one."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for wanted in (TransferError, Exception):
        for leaf in leaves:
            if isinstance(leaf, wanted):
                return leaf
    return leaves[0]
