"""One file: SFTP reads → buffer-pool parts → concurrent uploads → complete → verify.

The story reads top to bottom in :class:`FileTransfer`: :meth:`~FileTransfer.run` picks
:meth:`~FileTransfer._single` (one PutObject) or :meth:`~FileTransfer._multipart`, which
opens or resumes the upload, :meth:`~FileTransfer._upload_parts` sends every part
(:meth:`~FileTransfer._transfer_parts`, one :meth:`~FileTransfer._part` each) and completes
it. The part machinery (retries, part events, digest order) is in :mod:`.parts`; what runs
once the object is published (its SHA-256 recorded, the verification) is in :mod:`.finish`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from ..aio import run_to_end
from ..config import ChecksumChoice, ConflictPolicy
from ..digest import StreamDigest
from ..errors import SourceChanged, StoreChecksumWrong, UsageError
from ..events import (
    PartState,
    StoreChecked,
    TransferNotice,
    TransferResult,
    TransferStarted,
    TransferState,
)
from ..object_options import META_MTIME, META_SHA256
from ..plan.conflicts import Action
from ..plan.sources import FileJob, part_count, part_size_for
from ..resume import in_s3 as shared_resume
from ..resume.journal import JournalEntry
from ..s3 import operations as s3
from ..s3.checksums import (
    HEADER_NAME,
    SESSION_PROBES,
    StoreCapabilities,
    etag_md5,
    multipart_etag,
    request_fields,
)
from ..s3.operations import PreconditionFailed
from .context import EngineContext
from .finish import Finish, expected_multipart, put_answer_proves
from .multipart import MultipartUpload
from .parts import (
    PartEvents,
    PartOrder,
    ReadsLeft,
    digest_into,
    first_error,
    hash_whole_file,
    read_part,
    send_part,
    upload_timeout,
    with_retries,
)
from .source_file import SourceFile
from .verify import Expected, Published

__all__ = ["EngineContext", "FileTransfer", "TransferControl"]

log = logging.getLogger(__name__)

READS_PER_FILE = 2  # parts of one file read at once: enough to hide the gap between parts
KEY_EXISTS = "the key already exists"


class TransferControl:
    """Pause gate of one transfer: parts start only while ``running`` is set."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.running.set()


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
        self.part_events = PartEvents(ctx.bus, transfer_id)

    def cancel_note(self) -> str:
        """What a cancel left behind, for the one line the front prints."""
        if self.abort_failed:
            return self.abort_failed
        if self.published:
            return "the object was published but not verified"
        return "the upload was aborted" if self.aborted else "nothing was published"

    async def run(self) -> TransferResult:
        ctx = self.ctx
        if self.job.problem:
            raise UsageError(self.job.problem)
        if self.job.skipped:
            return self._result(TransferState.SKIPPED, None, 0, self.job.skipped)
        await ctx.ensure_bucket(self.job.bucket)
        source = SourceFile(ctx, self.job, listed=True)
        try:
            return await self._transfer(source)
        except SourceChanged as exc:
            if not source.listed or self.published:
                raise
            # Changed since it was listed, not necessarily while it was read: once more,
            # from a stat (a change while that read runs fails the file as before).
            log.info("%s: %s; starting it again from a stat", self.job.path, exc.message)
        finally:
            await source.close()
        source = SourceFile(ctx, self.job)
        try:
            return await self._transfer(source)
        finally:
            await source.close()

    async def _transfer(self, source: SourceFile) -> TransferResult:
        ctx = self.ctx
        size, mtime = await with_retries(
            ctx.options, source.attributes, lambda a, e: self._notice(f"retrying: {e}")
        )
        self.job = replace(self.job, size=size, mtime=mtime)
        skip = await self._conflict(source, size, mtime)
        if skip and source.listed and not await source.still_as_listed():
            raise SourceChanged(f"{self.job.path} changed since it was listed", "")
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

    # one part: PutObject ----------------------------------------------------------------------
    async def _single(
        self, source: SourceFile, size: int, store: StoreCapabilities
    ) -> TransferResult:
        """A file of at most one part: one read, one PutObject with its checksums."""
        ctx, job = self.ctx, self.job
        ctx.bus.emit(
            TransferStarted(
                transfer_id=self.id, size=size, part_size=size, part_count=1, multipart=False
            )
        )
        await self.control.running.wait()
        buffer = await ctx.buffers.acquire(size)
        view = memoryview(buffer)
        try:
            await read_part(ctx, source, self.part_events, 1, 0, view, asyncio.Semaphore(1))
            signature = s3.body_signature(ctx.s3, store.payload_signed)
            sums, sha256 = await hash_whole_file(store.algorithm, view, store.sends_md5, signature)
            await self._check_unchanged(source)
            metadata = {META_SHA256: sha256, META_MTIME: str(job.mtime)}
            began = time.monotonic()

            async def put() -> dict[str, Any]:
                what = f"Writing s3://{job.bucket}/{job.key}"
                await ctx.loop_share.turn()  # the request's start is ~3 ms of the loop's CPU
                async with s3.deadline(upload_timeout(ctx.options, size), what):
                    return await s3.put_object(
                        ctx.s3,
                        job.bucket,
                        job.key,
                        buffer,
                        payload_sha256=sums.payload_sha256,
                        Metadata=ctx.metadata(metadata),
                        **request_fields(store.algorithm, sums),
                        **ctx.object_args(job.key),
                        **self._publish_condition(),
                    )

            try:
                if await self._taken():
                    raise PreconditionFailed(KEY_EXISTS)
                async with ctx.s3_slots:
                    answer = await with_retries(
                        ctx.options,
                        put,
                        lambda a, e: self.part_events.changed(
                            1, PartState.RETRIED, size, side="s3"
                        ),
                    )
            except PreconditionFailed:
                self.part_events.changed(1, PartState.DONE, 0)
                return self._result(TransferState.SKIPPED, None, 0, KEY_EXISTS)
            self.published = True
            self.part_events.changed(1, PartState.DONE, size, time.monotonic() - began)
        finally:
            view.release()
            ctx.buffers.release(buffer)
        await ctx.loop_share.turn()  # verifying and reporting the result: ~1 ms more
        name = HEADER_NAME.get(store.algorithm)
        expected = Expected(
            size=size,
            sha256=sha256,
            algorithm=store.algorithm,
            checksum=sums.checksum_b64 if name else None,
            etag=sums.md5_hex or None,
            multipart=False,
            sha256_in_metadata=True,
        )
        verified_by = put_answer_proves(expected, answer, store) if ctx.options.verify else ""
        if not verified_by:
            verified_by = await self._finish().verify(expected, Published.from_answer(answer))
        return self._result(TransferState.DONE, sha256, 1, verified_by=verified_by)

    # many parts: a multipart upload ----------------------------------------------------------
    async def _multipart(self, source: SourceFile, size: int, part_size: int) -> TransferResult:
        opened = await self._open_upload(part_size)
        if isinstance(opened, TransferResult):
            return opened
        try:
            return await self._upload_parts(source, opened, size, part_size)
        finally:
            # after forget(): the record goes while this run holds the key
            await run_to_end(opened.release())

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
                Metadata=ctx.metadata({META_MTIME: str(job.mtime)}),
                **ctx.object_args(job.key),
            )
        except BaseException:
            if claim is not None:
                claim.release()
            raise

    async def _upload_parts(
        self, source: SourceFile, upload: MultipartUpload, size: int, part_size: int
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
        reads = ReadsLeft(count - upload.digest_through, lambda: self._check_unchanged(source))
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
        finish = self._finish()
        verified_by = await finish.verify(
            expected_multipart(upload, digest, size, part_size), published
        )
        if await finish.store_sha256(size, digest.sha256_hex(), published, upload.algorithm):
            # The copy is a new object: check it too. Not called ours (Published()): on a
            # store that ignores CopySourceIfMatch it may be a copy of another writer's
            # bytes, so a failed check must not delete it.
            crc = digest.crc64nvme_b64() if upload.algorithm is ChecksumChoice.CRC64NVME else None
            copied = Expected(size, digest.sha256_hex(), upload.algorithm, crc, None, False, True)
            await finish.verify(copied, Published())
        return self._result(TransferState.DONE, digest.sha256_hex(), count, verified_by=verified_by)

    async def _transfer_parts(
        self,
        source: SourceFile,
        upload: MultipartUpload,
        digest: StreamDigest,
        size: int,
        part_size: int,
        count: int,
        reads: ReadsLeft,
    ) -> None:
        """Every part not yet in S3: a pool buffer each, at most ``parts_in_flight`` held."""
        ctx = self.ctx
        first = upload.digest_through + 1
        order = PartOrder(upload, digest, first)
        held = asyncio.Semaphore(ctx.options.parts_in_flight)
        reading = asyncio.Semaphore(max(READS_PER_FILE, source.width))  # a part per connection
        try:
            async with asyncio.TaskGroup() as group:
                for number in range(first, count + 1):
                    await self.control.running.wait()
                    await held.acquire()
                    try:
                        length = min(part_size, size - (number - 1) * part_size)
                        buffer = await ctx.buffers.acquire(length)
                    except BaseException:
                        held.release()
                        raise
                    offset = (number - 1) * part_size
                    group.create_task(
                        self._part(source, order, number, offset, buffer, reading, held, reads)
                    )
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None

    async def _part(
        self,
        source: SourceFile,
        order: PartOrder,
        number: int,
        offset: int,
        buffer: bytearray,
        reading: asyncio.Semaphore,
        held: asyncio.Semaphore,
        reads: ReadsLeft,
    ) -> None:
        """One part's buffer: SFTP read → hashes in byte order → UploadPart → back to the pool."""
        upload = order.upload
        view = memoryview(buffer)
        try:
            await read_part(self.ctx, source, self.part_events, number, offset, view, reading)
            reads.one_read()
            sums = await order.hash(number, view)
            resumed = upload.parts.get(number)
            if resumed is None:
                await send_part(self.ctx, upload, self.part_events, number, buffer, sums)
            elif resumed.checksum != sums.checksum_b64:
                raise SourceChanged(
                    f"{self.job.path} differs from what the earlier attempt uploaded",
                    "the source changed; transfer it again from zero",
                )
            order.part_finished()
            await upload.flush()  # the part and any digest checkpoint: one append, one sync
        except BaseException:
            order.turn.break_()
            self.part_events.changed(number, PartState.FAILED, len(buffer))
            raise
        finally:
            view.release()
            self.ctx.buffers.release(buffer)
            held.release()

    # before the first byte: the store's abilities, the conflict policy ------------------------
    async def _store(self) -> StoreCapabilities:
        """What the store honours: probed by the session's first transfer, then reused."""
        ctx, job = self.ctx, self.job
        endpoint = ctx.endpoint_name or "s3"
        record, probed = await with_retries(
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

    @property
    def _policy(self) -> ConflictPolicy:
        """The job's own conflict policy (a TUI copy's), else the queue's."""
        return self.job.conflict or self.ctx.options.conflict

    async def _conflict(self, source: SourceFile, size: int, mtime: int) -> str:
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

    async def _same_content(self, source: SourceFile, sha256: str) -> bool:
        """Hash the already open source (streaming, no upload); compare with ``sha256``."""
        digest = StreamDigest()
        step = min(self.ctx.options.part_size, max(self.job.size, 1))
        buffer = await self.ctx.buffers.acquire(step)
        view = memoryview(buffer)
        try:
            for offset in range(0, self.job.size, step):
                with view[: min(step, self.job.size - offset)] as chunk:
                    await source.read(offset, chunk)
                    await digest_into(digest, chunk)
        finally:
            view.release()
            self.ctx.buffers.release(buffer)
        return digest.sha256_hex() == sha256

    # checks and helpers -------------------------------------------------------------------------
    async def _check_unchanged(self, source: SourceFile) -> None:
        size, mtime = await with_retries(self.ctx.options, source.attributes, lambda a, e: None)
        if size != self.job.size or mtime != self.job.mtime:
            raise SourceChanged(
                f"{self.job.path} changed while it was read (size {self.job.size} → {size})",
                "nothing was published; transfer it again once it is complete",
            )

    def _publish_condition(self) -> dict[str, Any]:
        """If-None-Match on the request that publishes the key, when skipping existing ones."""
        skip = self._policy is ConflictPolicy.SKIP_EXISTING
        return {"IfNoneMatch": "*"} if skip else {}

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
        await self._finish().store_sha256(
            job.size, digest.sha256_hex(), Published.from_answer(head), algorithm
        )
        return self._result(
            TransferState.DONE,
            digest.sha256_hex(),
            count,
            "completed by an earlier run",
            verified_by=verified_by,
        )

    def _finish(self) -> Finish:
        """The after-publish steps for this transfer's object."""
        return Finish(self.ctx, self.job, self.store, self._notice)

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
