"""One file: SFTP reads → pooled part buffers → concurrent uploads → complete → verify.

A part's buffer, start to end: :meth:`FileTransfer._transfer_parts` takes it from the pool,
:meth:`FileTransfer._part` fills it from the SFTP file (``_read_part``), hashes it in byte
order (``_PartOrder.hash``: the stream's SHA-256 and the part's MD5 and checksum), sends it
(``_send_part`` → :meth:`MultipartUpload.upload_part`) and gives it back to the pool.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..aio import run_to_end
from ..config import MAX_PART_SIZE, ChecksumChoice, ConflictPolicy, TransferOptions
from ..digest import DigestState, StreamDigest
from ..errors import (
    SourceChanged,
    StoreChecksumWrong,
    TransferError,
    UsageError,
    VerificationFailed,
)
from ..events import (
    PartChanged,
    PartState,
    StoreChecked,
    TransferNotice,
    TransferResult,
    TransferStarted,
    TransferState,
)
from ..plan.conflicts import Action
from ..plan.sources import FileJob, part_count, part_size_for
from ..resume import in_s3 as shared_resume
from ..resume.journal import JournalEntry
from ..s3 import operations as s3
from ..s3.checksums import (
    HEADER_NAME,
    KMS_VALUES,
    SESSION_PROBES,
    PartSums,
    StoreCapabilities,
    combined_crc,
    composite,
    etag_md5,
    multipart_etag,
    part_sums,
    request_fields,
)
from ..s3.operations import PreconditionFailed
from .context import EngineContext
from .multipart import MultipartUpload, UploadedPart
from .source_file import Source
from .verify import META_MTIME, META_SHA256, Expected, Published, tag_ours, verify_object

__all__ = ["EngineContext", "FileTransfer", "TransferControl"]

log = logging.getLogger(__name__)
T = TypeVar("T")

READS_PER_FILE = 2  # parts of one file read at once: enough to hide the gap between parts
THREAD_HASH_MIN = 1 << 20  # hash larger buffers off the loop (OpenSSL releases the GIL)
KEY_EXISTS = "the key already exists"


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


class _PartOrder:
    """Feeds parts to the stream digest in byte order; checkpoints it behind the uploaded prefix."""

    def __init__(self, upload: MultipartUpload, digest: StreamDigest, first: int) -> None:
        self.upload = upload
        self.digest = digest
        self.turn = _Turnstile(first)
        self._states: dict[int, DigestState | None] = {}  # digest after part n, not yet saved
        self._done_through = first - 1  # every part up to here is hashed and in S3

    async def hash(self, number: int, view: memoryview) -> PartSums:
        """The part's own MD5 and checksum, then (in its turn) the stream digest."""
        upload = self.upload
        sums = await _part_sums(upload.algorithm, view, upload.sends_md5, upload.signs_payload)
        await self.turn.wait(number)
        try:
            await _digest(self.digest, view)
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


class _ReadsLeft:
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


async def _off_loop(work: Callable[[], T], length: int) -> T:
    """Run CPU work on a buffer of ``length`` bytes, in a thread when it is big.

    A cancel while a thread works waits for the thread before it goes on: the buffer must
    not be released (or reused) under the thread's feet.
    """
    if length < THREAD_HASH_MIN:
        return work()
    return await run_to_end(asyncio.to_thread(work))


async def _digest(digest: StreamDigest, view: memoryview) -> None:
    """Feed the stream digest (SHA-256 and CRC64NVME of the whole file, in byte order)."""
    await _off_loop(lambda: digest.update(view), len(view))


async def _part_sums(
    algorithm: ChecksumChoice, view: memoryview, md5: bool, payload_sha256: bool
) -> PartSums:
    """The part's own MD5 and checksum (and its SHA-256 for SigV4 on http, else botocore
    hashes it on the event loop); parts need no order, so several hash at once."""
    return await _off_loop(
        lambda: part_sums(algorithm, view, md5=md5, payload_sha256=payload_sha256), len(view)
    )


class FileTransfer:
    """Moves one file; ``run()`` returns its result or raises a :class:`TransferError`.

    ``abort_failed`` says, after a failure or cancel, why an upload could not be aborted
    ('' when nothing was left open), so the front does not claim "aborted".
    """

    def __init__(
        self, ctx: EngineContext, transfer_id: int, job: FileJob, control: TransferControl
    ) -> None:
        self.ctx = ctx
        self.id = transfer_id
        self.job = job
        self.control = control
        self.started = time.monotonic()
        self.resumed_parts = 0
        self.abort_failed = ""
        self.aborted = False  # an upload of ours was aborted after a failure or cancel
        self.published = False  # our PutObject / Complete succeeded
        self.store: StoreCapabilities | None = None

    def cancel_note(self) -> str:
        """What a cancel left behind, for the one line the front prints."""
        if self.abort_failed:
            return self.abort_failed
        if self.published:
            return "the object was published but not verified"
        return "the upload was aborted" if self.aborted else "nothing was published"

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
        self,
        state: TransferState,
        sha256: str | None,
        parts: int,
        message: str = "",
        verified_by: str = "",
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
            verified_by=verified_by,
        )

    async def run(self) -> TransferResult:
        ctx = self.ctx
        if self.job.problem:
            raise UsageError(self.job.problem)
        if self.job.skipped:
            return self._result(TransferState.SKIPPED, None, 0, self.job.skipped)
        await ctx.ensure_bucket(self.job.bucket)
        source = Source(ctx, self.job)
        try:
            size, mtime = await _with_retries(
                ctx.options, source.attributes, lambda a, e: self._notice(f"retrying: {e}")
            )
            self.job = replace(self.job, size=size, mtime=mtime)
            skip = await self._conflict(source, size, mtime)
            if skip:
                return self._result(TransferState.SKIPPED, None, 0, skip)
            self.store = await self._store()
            part_size = part_size_for(size, ctx.options.part_size)
            if part_size != ctx.options.part_size and size > ctx.options.part_size:
                self._notice(
                    f"part size raised to {part_size // (1 << 20)} MiB to stay within 10,000 parts"
                )
            if size <= part_size:
                return await self._single(source, size, self.store)
            try:
                return await self._multipart(source, size, part_size)
            except StoreChecksumWrong as exc:
                if ctx.options.checksum is not ChecksumChoice.AUTO:
                    raise
                # auto: the store's own value showed it only now; once per store, not per file
                self.store = SESSION_PROBES.downgrade(self.store, exc.message)
                self._notice(f"{exc.message}; sending it again with {self.store.algorithm}")
                return await self._multipart(source, size, part_size)
        finally:
            await source.close()

    async def _store(self) -> StoreCapabilities:
        """What the store honours: probed by the session's first transfer, then reused."""
        ctx, job = self.ctx, self.job
        endpoint = ctx.endpoint_name or "s3"
        record, probed = await _with_retries(
            ctx.options,
            lambda: SESSION_PROBES.capabilities(
                ctx.s3,
                endpoint,
                job.bucket,
                job.key,
                ctx.options.checksum,
                encrypted=(
                    ctx.options.object_options.sse or ctx.server_side_encryption or ""
                ).startswith("aws:kms"),
            ),
            lambda a, e: self._notice(f"retrying the store check: {e}"),
        )
        if probed:
            # A fact about the store, not about this file: fronts print the event once, as
            # a store line (a notice here read like a warning about whichever file came first).
            log.info("store check: %s", record.summary())
            ctx.bus.emit(StoreChecked(transfer_id=self.id, capabilities=record))
        if record.algorithm is ChecksumChoice.NONE:
            self._notice("--checksum none: nothing is sent to check the bytes; size only")
        return record

    # deciding whether to copy -----------------------------------------------------------------
    @property
    def _policy(self) -> ConflictPolicy:
        """The job's own conflict policy (a TUI copy's), else the queue's."""
        return self.job.conflict or self.ctx.options.conflict

    async def _conflict(self, source: Source, size: int, mtime: int) -> str:
        """Why the transfer is skipped under its conflict policy ('' = go ahead).

        Decided from what is at the key (the queue's listing or a HEAD) before a byte is
        read; under skip-existing the conditional write still guards against a racing writer.
        """
        job = self.job
        decision = await self.ctx.destination.decide(
            self._policy, job.bucket, job.key, size, mtime, probe_overwrite=False
        )
        if decision.action is Action.SKIP:
            return decision.reason
        if decision.action is Action.COMPARE:
            existing = await self.ctx.destination.head(job.bucket, job.key, want_sha256=True)
            if existing and existing.sha256 and await self._same_content(source, existing.sha256):
                return "the object already has the same size and sha256"
        return ""

    async def _taken(self) -> bool:
        """Under skip-existing, whether the key was taken meanwhile (checked just before
        publishing, for stores that ignore If-None-Match)."""
        if self._policy is not ConflictPolicy.SKIP_EXISTING:
            return False
        return await s3.head_object(self.ctx.s3, self.job.bucket, self.job.key) is not None

    async def _same_content(self, source: Source, sha256: str) -> bool:
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
        """Storage class, encryption, content type and tags (the options', else the
        endpoint's), for every request that creates the object; metadata: :meth:`_metadata`."""
        extra: dict[str, Any] = self.ctx.options.object_options.create_args(self.job.key)
        extra.pop("Metadata", None)
        if self.ctx.storage_class:
            extra.setdefault("StorageClass", self.ctx.storage_class)
        if self.ctx.server_side_encryption:
            extra.setdefault("ServerSideEncryption", self.ctx.server_side_encryption)
        return extra

    def _metadata(self, engine: dict[str, str]) -> dict[str, str]:
        """The user's metadata with the engine's own (sha256, source mtime) over it."""
        return {**dict(self.ctx.options.object_options.metadata), **engine}

    def _publish_condition(self) -> dict[str, Any]:
        """If-None-Match on the request that publishes the key, when skipping existing ones."""
        skip = self._policy is ConflictPolicy.SKIP_EXISTING
        return {"IfNoneMatch": "*"} if skip else {}

    def _upload_timeout(self, length: int) -> float:
        """Seconds one upload attempt of ``length`` bytes may take before it counts as stalled."""
        return self.ctx.options.upload_timeout_seconds or 120.0 + length / (1 << 20)

    async def _check_unchanged(self, source: Source) -> None:
        size, mtime = await _with_retries(self.ctx.options, source.attributes, lambda a, e: None)
        if size != self.job.size or mtime != self.job.mtime:
            raise SourceChanged(
                f"{self.job.path} changed while it was read (size {self.job.size} → {size})",
                "nothing was published; transfer it again once it is complete",
            )

    async def _read_part(
        self, source: Source, number: int, offset: int, view: memoryview, reading: asyncio.Semaphore
    ) -> None:
        """SFTP → the part's buffer, with retries; one of the file's ``reading`` slots."""
        ctx, length = self.ctx, len(view)
        self._emit_part(number, PartState.READING, length)
        began = time.monotonic()
        async with reading, ctx.sftp_slots:
            await _with_retries(
                ctx.options,
                lambda: source.read(offset, view),
                lambda a, e: self._emit_part(number, PartState.RETRIED, length, side="sftp"),
            )
        self._emit_part(number, PartState.UPLOADING, length, time.monotonic() - began)

    # one part: PutObject ----------------------------------------------------------------------
    async def _single(self, source: Source, size: int, store: StoreCapabilities) -> TransferResult:
        """A file of at most one part: one read, one PutObject with its checksums."""
        ctx, job = self.ctx, self.job
        ctx.bus.emit(
            TransferStarted(
                transfer_id=self.id, size=size, part_size=size, part_count=1, multipart=False
            )
        )
        digest = StreamDigest()
        await self.control.running.wait()
        buffer = await ctx.pool.acquire(size)
        view = memoryview(buffer)
        try:
            await self._read_part(source, 1, 0, view, asyncio.Semaphore(1))
            sums = await _part_sums(
                store.algorithm, view, store.sends_md5, s3.signs_payload(ctx.s3)
            )
            await _digest(digest, view)
            await self._check_unchanged(source)
            metadata = {META_SHA256: digest.sha256_hex(), META_MTIME: str(job.mtime)}
            began = time.monotonic()

            async def put() -> dict[str, Any]:
                what = f"Writing s3://{job.bucket}/{job.key}"
                await ctx.loop_share.turn()  # the request's start is ~3 ms of the loop's CPU
                async with s3.deadline(self._upload_timeout(size), what):
                    return await s3.put_object(
                        ctx.s3,
                        job.bucket,
                        job.key,
                        buffer,
                        payload_sha256=sums.payload_sha256,
                        Metadata=self._metadata(metadata),
                        **request_fields(store.algorithm, sums),
                        **self._object_options(),
                        **self._publish_condition(),
                    )

            try:
                if await self._taken():
                    raise PreconditionFailed(KEY_EXISTS)
                async with ctx.s3_slots:
                    answer = await _with_retries(
                        ctx.options,
                        put,
                        lambda a, e: self._emit_part(1, PartState.RETRIED, size, side="s3"),
                    )
            except PreconditionFailed:
                self._emit_part(1, PartState.DONE, 0)
                return self._result(TransferState.SKIPPED, None, 0, KEY_EXISTS)
            self.published = True
            self._emit_part(1, PartState.DONE, size, time.monotonic() - began)
        finally:
            view.release()
            ctx.pool.release(buffer)
        await ctx.loop_share.turn()  # verifying and reporting the result: ~1 ms more
        name = HEADER_NAME.get(store.algorithm)
        expected = Expected(
            size=size,
            sha256=digest.sha256_hex(),
            algorithm=store.algorithm,
            checksum=sums.checksum_b64 if name else None,
            etag=sums.md5_hex or None,
            multipart=False,
            sha256_in_metadata=True,
        )
        verified_by = _put_answer_proves(expected, answer, store) if ctx.options.verify else ""
        if not verified_by:
            verified_by = await self._verify(expected, Published.from_answer(answer))
        return self._result(TransferState.DONE, digest.sha256_hex(), 1, verified_by=verified_by)

    # many parts: a multipart upload ----------------------------------------------------------
    async def _open_upload(self, part_size: int) -> MultipartUpload | TransferResult:
        """Continue the journaled upload of this file if S3 still has it, else start one; a
        result when an earlier run already completed it (killed before it could say so)."""
        ctx, job = self.ctx, self.job
        assert self.store is not None
        # The key's record stays locked until the transfer ends (MultipartUpload.release):
        # an overlapping run gets JournalBusy instead of resuming or replacing it. A journal
        # that cannot be read or written raises JournalError (one line; nothing uploaded).
        claim = ctx.journal.claim(job.bucket, job.key) if ctx.journal is not None else None
        try:
            if claim is not None and claim.entry is None and ctx.options.resume_in_s3:
                found = await shared_resume.load(ctx.s3, job.bucket, job.key)
                if found is not None:  # a run on another machine left it
                    self._notice("found the resume state of an earlier run in S3")
                    await asyncio.to_thread(claim.adopt, found)
            entry = claim.entry if claim is not None else None
            if claim is not None and entry is not None:
                upload = await MultipartUpload.resume(ctx, job, claim, part_size, self._notice)
                if upload is not None:
                    self.resumed_parts = len(upload.parts)
                    return upload
                if claim.entry is not None:  # the upload is gone from S3
                    finished = await self._finished_earlier(entry, part_size)
                    claim.forget()
                    if finished is not None:
                        claim.release()
                        return finished
                    self._notice("the earlier upload is gone from S3; restarting from zero")
            return await MultipartUpload.start(
                ctx,
                job,
                claim,
                part_size,
                self.store,
                Metadata=self._metadata({META_MTIME: str(job.mtime)}),
                **self._object_options(),
            )
        except BaseException:
            if claim is not None:
                claim.release()
            raise

    async def _finished_earlier(self, entry: JournalEntry, part_size: int) -> TransferResult | None:
        """The journaled upload is gone: if the key holds the object it was completing (size,
        the source's mtime and the ETag or checksum of the journaled parts match), say so."""
        job, count = self.job, part_count(self.job.size, part_size)
        final = entry.digest.get(count)
        if final is None or sorted(entry.parts) != list(range(1, count + 1)):
            return None
        head = await s3.head_object(self.ctx.s3, job.bucket, job.key)
        if head is None or head.get("ContentLength") != job.size:
            return None
        if head.get("Metadata", {}).get(META_MTIME) != str(job.mtime):
            return None
        parts = [entry.parts[n] for n in range(1, count + 1)]
        md5s = [etag_md5(etag) for etag, _ in parts]
        etag = str(head.get("ETag", "")).strip('"')
        digest = StreamDigest(final)
        algorithm = ChecksumChoice(entry.checksum)
        checked = self.store is not None and self.store.checksum_checked
        verified_by = ""
        if all(md5s) and etag == multipart_etag([m for m in md5s if m]):
            verified_by = "md5-etag"
        crc = head.get("ChecksumCRC64NVME")
        if algorithm is ChecksumChoice.CRC64NVME and crc == digest.crc64nvme_b64() and checked:
            verified_by = "crc64nvme-full-object"
        if not verified_by:
            return None
        self._notice("an earlier run completed this upload; nothing to send")
        await self._store_sha256(
            job.size, digest.sha256_hex(), Published.from_answer(head), algorithm
        )
        return self._result(
            TransferState.DONE,
            digest.sha256_hex(),
            count,
            "completed by an earlier run",
            verified_by=verified_by,
        )

    async def _multipart(self, source: Source, size: int, part_size: int) -> TransferResult:
        opened = await self._open_upload(part_size)
        if isinstance(opened, TransferResult):
            return opened
        try:
            return await self._upload_parts(source, opened, size, part_size)
        finally:
            # after forget(): the record goes while this run holds the key
            await run_to_end(opened.release())

    async def _upload_parts(
        self, source: Source, upload: MultipartUpload, size: int, part_size: int
    ) -> TransferResult:
        count = part_count(size, part_size)
        digest = StreamDigest(upload.digest_state)
        self.ctx.bus.emit(
            TransferStarted(
                transfer_id=self.id,
                size=size,
                part_size=part_size,
                part_count=count,
                multipart=True,
                resumed_parts=tuple(sorted(upload.parts)),
            )
        )
        answer: dict[str, Any] | None = None
        completed = False
        reads = _ReadsLeft(count - upload.digest_through, lambda: self._check_unchanged(source))
        try:
            await self._transfer_parts(source, upload, digest, size, part_size, count, reads)
            await reads.checked()
            if await self._taken():
                await upload.abort()
            else:
                answer = await upload.complete(digest.crc64nvme_b64(), **self._publish_condition())
                self.published = answer is not None
            completed = True
        except BaseException:
            if not completed and await run_to_end(upload.abort()):
                self.aborted = True
            elif not completed:
                self.abort_failed = (
                    f"the upload {upload.upload_id} could not be aborted and stays open "
                    "(its journal record is kept; `sftp-s3-tui cleanup` removes it)"
                )
                self._notice(self.abort_failed)
            raise
        finally:
            reads.discard()
            upload.close()
        await upload.forget()
        if answer is None:
            return self._result(TransferState.SKIPPED, None, 0, KEY_EXISTS)
        published = Published.from_answer(answer)
        verified_by = await self._verify(
            self._expected_multipart(upload, digest, size, part_size), published
        )
        if await self._store_sha256(size, digest.sha256_hex(), published, upload.algorithm):
            # The copy is a new object: check it too. Not called ours (Published()): on a
            # store that ignores CopySourceIfMatch it may be a copy of another writer's
            # bytes, so a failed check must not delete it.
            crc = digest.crc64nvme_b64() if upload.algorithm is ChecksumChoice.CRC64NVME else None
            copied = Expected(size, digest.sha256_hex(), upload.algorithm, crc, None, False, True)
            await self._verify(copied, Published())
        return self._result(TransferState.DONE, digest.sha256_hex(), count, verified_by=verified_by)

    def _expected_multipart(
        self, upload: MultipartUpload, digest: StreamDigest, size: int, part_size: int
    ) -> Expected:
        parts: list[UploadedPart] = [upload.parts[n] for n in sorted(upload.parts)]
        md5s = [etag_md5(p.etag) for p in parts]
        algorithm = upload.algorithm
        checksum = full = None
        if algorithm is ChecksumChoice.CRC64NVME:
            checksum = full = digest.crc64nvme_b64()
        elif algorithm in HEADER_NAME:
            raw = [base64.b64decode(p.checksum) for p in parts]
            checksum = composite(algorithm, raw)
            full = combined_crc(algorithm, raw, part_size, size)
        return Expected(
            size=size,
            sha256=digest.sha256_hex(),
            algorithm=algorithm,
            checksum=checksum,
            etag=multipart_etag([m for m in md5s if m])
            if all(md5s) and upload.etag_is_md5
            else None,
            multipart=True,
            checksum_full=full,
        )

    async def _transfer_parts(
        self,
        source: Source,
        upload: MultipartUpload,
        digest: StreamDigest,
        size: int,
        part_size: int,
        count: int,
        reads: _ReadsLeft,
    ) -> None:
        """Every part not yet in S3: a pool buffer each, at most ``parts_in_flight`` held."""
        ctx = self.ctx
        first = upload.digest_through + 1
        order = _PartOrder(upload, digest, first)
        held = asyncio.Semaphore(ctx.options.parts_in_flight)
        reading = asyncio.Semaphore(max(READS_PER_FILE, source.width))  # a part per connection
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
                    offset = (number - 1) * part_size
                    group.create_task(
                        self._part(source, order, number, offset, buffer, reading, held, reads)
                    )
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None

    async def _part(
        self,
        source: Source,
        order: _PartOrder,
        number: int,
        offset: int,
        buffer: bytearray,
        reading: asyncio.Semaphore,
        held: asyncio.Semaphore,
        reads: _ReadsLeft,
    ) -> None:
        """One part's buffer: SFTP read → hashes in byte order → UploadPart → back to the pool."""
        upload = order.upload
        view = memoryview(buffer)
        try:
            await self._read_part(source, number, offset, view, reading)
            reads.one_read()
            sums = await order.hash(number, view)
            resumed = upload.parts.get(number)
            if resumed is None:
                await self._send_part(upload, number, buffer, sums)
            elif resumed.checksum != sums.checksum_b64:
                raise SourceChanged(
                    f"{self.job.path} differs from what the earlier attempt uploaded",
                    "the source changed; transfer it again from zero",
                )
            order.part_finished()
            await upload.flush()  # the part and any digest checkpoint: one append, one sync
        except BaseException:
            order.turn.break_()
            self._emit_part(number, PartState.FAILED, len(buffer))
            raise
        finally:
            view.release()
            self.ctx.pool.release(buffer)
            held.release()

    async def _send_part(
        self, upload: MultipartUpload, number: int, buffer: bytearray, sums: PartSums
    ) -> None:
        """The part's buffer → UploadPart, with retries; one of the queue's S3 slots."""
        ctx, length = self.ctx, len(buffer)
        began = time.monotonic()
        async with ctx.s3_slots:
            await ctx.loop_share.turn()
            await _with_retries(
                ctx.options,
                lambda: upload.upload_part(number, buffer, sums, self._upload_timeout(length)),
                lambda a, e: self._emit_part(number, PartState.RETRIED, length, side="s3"),
            )
        self._emit_part(number, PartState.DONE, length, time.monotonic() - began)

    # after Complete ---------------------------------------------------------------------------
    async def _store_sha256(
        self,
        size: int,
        sha256: str,
        ours: Published,
        algorithm: ChecksumChoice = ChecksumChoice.NONE,
    ) -> bool:
        """Record the stream's SHA-256 on the multipart object ``ours`` names (never on
        another writer's: a later run would skip the file there); True if it was copied.

        Its metadata is fixed when the upload starts, before the stream is hashed, so by
        default the SHA-256 becomes an object tag (a small metadata-only request, see
        :func:`tag_ours`). With ``sha256_metadata`` it goes into ``x-amz-meta-sha256`` by a
        server-side copy of the object onto itself, which costs time in proportion to the
        object's size.
        """
        job = self.job
        if not self.ctx.options.sha256_metadata:
            try:
                await tag_ours(
                    self.ctx.s3,
                    job.bucket,
                    job.key,
                    sha256,
                    ours,
                    keep=self.ctx.options.object_options.tags,
                )
            except VerificationFailed:
                raise
            except TransferError as exc:
                self._notice(f"the sha256 could not be tagged on the object ({exc.message})")
            return False
        metadata = self._metadata({META_SHA256: sha256, META_MTIME: str(job.mtime)})
        extra = self._object_options()
        # CopySourceIfMatch: the copy is of our object or of nothing. Without it an object
        # put over ours after our HEAD would get our sha256 and pass the copy's check (same
        # size), and the source would be deleted. AWS and SeaweedFS honour it (412); moto
        # 5.2 ignores it (it checks only copy-source-if-none-match): there an overwrite
        # between our HEAD and the copy is not caught (probed 2026-12-07).
        if_match = {"CopySourceIfMatch": ours.etag} if ours.etag else {}
        try:
            if size > MAX_PART_SIZE:
                await self._copy_multipart(size, metadata, extra, if_match)
                return True
            await s3.copy_object_onto_itself(
                self.ctx.s3,
                job.bucket,
                job.key,
                **if_match,
                Metadata=metadata,
                MetadataDirective="REPLACE",
                **(
                    {"ChecksumAlgorithm": "CRC64NVME"}
                    if algorithm is ChecksumChoice.CRC64NVME
                    else {}
                ),
                **{k: v for k, v in extra.items() if k != "Tagging"},  # tags are copied
            )
        except PreconditionFailed:
            raise VerificationFailed(
                f"s3://{job.bucket}/{job.key} now holds someone else's object "
                f"(ours was {str(ours.etag).strip(chr(34))}), so its sha256 was not stored",
                "it was left in place; transfer it again once the other writer is done",
            ) from None
        return True

    async def _copy_multipart(
        self, size: int, metadata: dict[str, str], extra: dict[str, Any], if_match: dict[str, str]
    ) -> None:
        """Copy an object over 5 GiB onto itself part by part (CopyObject's limit), each part
        only from our object (``if_match``)."""
        job, client = self.job, self.ctx.s3
        upload_id = await run_to_end(
            s3.create_upload(client, job.bucket, job.key, Metadata=metadata, **extra),
            undo=lambda made: s3.abort_upload(client, job.bucket, job.key, made),
        )
        try:
            parts = []
            for number, offset in enumerate(range(0, size, MAX_PART_SIZE), start=1):
                last = min(offset + MAX_PART_SIZE, size) - 1
                etag = await s3.copy_part(
                    client,
                    job.bucket,
                    job.key,
                    upload_id,
                    number,
                    f"bytes={offset}-{last}",
                    **if_match,
                )
                parts.append({"PartNumber": number, "ETag": etag})
            await s3.complete_upload(client, job.bucket, job.key, upload_id, parts)
        except BaseException:
            await run_to_end(s3.abort_upload(client, job.bucket, job.key, upload_id))
            raise

    async def _verify(self, expected: Expected, published: Published) -> str:
        """HEAD the object and compare it with the stream; what it was verified by."""
        if not self.ctx.options.verify:
            return "none"
        assert self.store is not None
        job = self.job
        return await verify_object(
            self.ctx.s3,
            job.bucket,
            job.key,
            expected,
            self.store,
            published,
            self.ctx.endpoint_name,
        )


def _put_answer_proves(expected: Expected, answer: dict[str, Any], store: StoreCapabilities) -> str:
    """What a PutObject's answer proves by itself ('' = HEAD the object to verify it).

    A store that refused a wrong checksum in the store check and answers with ours computed
    it from the bytes it stored (size and metadata came in the same request); else an ETag
    that is a plain MD5 (no SSE-KMS / SSE-C) equal to ours is the MD5 of what it stored. Any
    disagreement in the answer goes to the HEAD, which names and cleans up the problem.
    """
    name = HEADER_NAME.get(expected.algorithm)
    echoed = answer.get(f"Checksum{name}") if name else None
    if echoed is not None and echoed != expected.checksum:
        return ""
    if echoed is not None and store.checksum_checked:
        return expected.checksum_kind(full_object=True)
    encrypted = answer.get("ServerSideEncryption") in KMS_VALUES or "SSECustomerAlgorithm" in answer
    etag = str(answer.get("ETag", "")).strip('"')
    if expected.etag and store.etag_is_md5 and not encrypted and etag == expected.etag:
        return "md5-etag"
    return ""


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
