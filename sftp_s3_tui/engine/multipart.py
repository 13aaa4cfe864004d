"""One multipart upload of one key: start or resume it, upload parts, complete or abort it.

The upload keeps its journal record in step: the record is written when the upload starts,
gains a line per finished part (and per digest checkpoint), and is forgotten once the upload
is completed or aborted — never while the upload may still be open in S3.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import s3
from .context import EngineContext
from .digest import DigestState
from .errors import TransferError
from .journal import JournalClaim, JournalEntry, JournalError, JournalWriter
from .plan import FileJob
from .s3 import PreconditionFailed
from .shared_resume import SharedRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part S3 holds: its ETag and the CRC64NVME (base64) it was sent with."""

    etag: str
    crc64nvme: str


class MultipartUpload:
    """An open multipart upload and the parts it already holds."""

    def __init__(
        self,
        ctx: EngineContext,
        job: FileJob,
        upload_id: str,
        writer: JournalWriter | None,
        parts: dict[int, UploadedPart] | None = None,
        claim: JournalClaim | None = None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.upload_id = upload_id
        self.claim = claim  # this run's lock on the key's journal record
        self.shared: SharedRecord | None = None  # the record in S3 (resume_in_s3)
        self.parts: dict[int, UploadedPart] = parts or {}
        # Where a resumed stream digest restarts: its state after part ``digest_through``.
        self.digest_state: DigestState | None = None
        self.digest_through = 0
        self._writer = writer

    @classmethod
    async def start(
        cls,
        ctx: EngineContext,
        job: FileJob,
        claim: JournalClaim | None,
        part_size: int,
        **params: Any,
    ) -> MultipartUpload:
        """Create the upload in S3 and record it in the journal (a record of an older upload
        still open is kept aside, never overwritten)."""
        upload_id = await s3.create_upload(
            ctx.s3,
            job.bucket,
            job.key,
            ChecksumAlgorithm="CRC64NVME",
            ChecksumType="FULL_OBJECT",
            **params,
        )
        writer = None
        if claim is not None:
            entry = claim.new_entry(job.source, upload_id, part_size, job.size, job.mtime)
            try:
                writer = await asyncio.to_thread(claim.start, entry)
            except BaseException:  # not journaled: the upload must not stay open unknown
                await asyncio.shield(s3.abort_upload(ctx.s3, job.bucket, job.key, upload_id))
                raise
        upload = cls(ctx, job, upload_id, writer, claim=claim)
        if claim is not None and ctx.options.resume_in_s3:
            await upload._share(entry)
        return upload

    async def _share(self, entry: JournalEntry) -> None:
        """Keep the resume state in S3 too, written once now (a crash right after finds it)."""
        shared = SharedRecord(self.ctx.s3, entry)
        try:
            await shared.save()
        except TransferError as exc:
            log.warning("%s: the resume state cannot be kept in S3: %s", self.job.source, exc)
            return
        self.shared = shared

    @classmethod
    async def resume(
        cls,
        ctx: EngineContext,
        job: FileJob,
        claim: JournalClaim,
        part_size: int,
        notice: Callable[[str], None],
    ) -> MultipartUpload | None:
        """Continue the journaled upload, keeping the parts S3 still lists; None = start anew."""
        entry = claim.entry
        assert entry is not None
        if entry.size != job.size or entry.mtime != job.mtime or entry.part_size != part_size:
            notice("the source changed since the last attempt; restarting from zero")
            await abort_quietly(ctx, job, entry.upload_id, claim)
            return None
        try:
            listed = await s3.list_uploaded_parts(ctx.s3, job.bucket, job.key, entry.upload_id)
        except TransferError as exc:
            if exc.retryable:
                raise
            # e.g. no s3:ListParts right: the record would fail this file on every run
            notice(f"the earlier upload cannot be continued ({exc.message}); restarting from zero")
            await abort_quietly(ctx, job, entry.upload_id, claim)
            return None
        if listed is None:
            notice("the earlier upload is gone from S3; restarting from zero")
            _forget(claim)
            return None
        parts = {
            n: UploadedPart(etag, crc)
            for n, (etag, crc) in entry.parts.items()
            if listed.get(n, "").strip('"') == etag.strip('"')
        }
        upload = cls(ctx, job, entry.upload_id, claim.resume(), parts, claim=claim)
        # The digest restarts at the furthest checkpoint whose parts are all uploaded.
        for n in sorted(entry.digest):
            if all(p in parts for p in range(1, n + 1)):
                upload.digest_through = n
        if upload.digest_through:
            upload.digest_state = entry.digest[upload.digest_through]
        if ctx.options.resume_in_s3:
            shared_entry = replace(
                entry,
                parts={n: (p.etag, p.crc64nvme) for n, p in parts.items()},
                digest={upload.digest_through: upload.digest_state} if upload.digest_state else {},
            )
            try:
                await upload._share(shared_entry)
            except BaseException:
                upload.close()
                raise
        notice(f"resuming: {len(parts)} parts already uploaded")
        return upload

    async def upload_part(
        self, number: int, buffer: bytearray, crc64nvme: str, timeout_seconds: float
    ) -> UploadedPart:
        """Send one part from its buffer; S3 refuses it if the bytes do not match the CRC."""
        job = self.job
        async with s3.deadline(
            timeout_seconds, f"Uploading part {number} of s3://{job.bucket}/{job.key}"
        ):
            response = await s3.upload_part(
                self.ctx.s3,
                job.bucket,
                job.key,
                self.upload_id,
                number,
                buffer,
                ChecksumAlgorithm="CRC64NVME",
                ChecksumCRC64NVME=crc64nvme,
            )
        part = UploadedPart(str(response["ETag"]), crc64nvme)
        self.parts[number] = part
        if self._writer is not None:
            self._writer.part_done(number, part.etag, part.crc64nvme, sync=False)
        if self.shared is not None:
            self.shared.part_done(number, part.etag, part.crc64nvme)
        return part

    def checkpoint(self, through: int, state: DigestState) -> None:
        """Record the stream digest after part ``through`` (written at the next flush)."""
        if self._writer is not None:
            self._writer.digest_at(through, state, sync=False)
        if self.shared is not None:
            self.shared.digest_at(through, state)

    def flush(self) -> None:
        """Write and sync the journal lines held back: one append, one sync per part."""
        if self._writer is not None:
            self._writer.flush()
        if self.shared is not None:
            self.shared.flush()

    async def complete(self, crc64nvme: str, **params: Any) -> bool:
        """Publish the object; False when a conditional write found the key taken (aborted)."""
        job = self.job
        try:
            await s3.complete_upload(
                self.ctx.s3,
                job.bucket,
                job.key,
                self.upload_id,
                [
                    {"PartNumber": n, "ETag": p.etag, "ChecksumCRC64NVME": p.crc64nvme}
                    for n, p in sorted(self.parts.items())
                ],
                ChecksumCRC64NVME=crc64nvme,
                ChecksumType="FULL_OBJECT",
                **params,
            )
        except PreconditionFailed:
            await self.abort()
            return False
        return True

    async def abort(self) -> None:
        """Abort the upload; its journal record goes only if S3 confirmed the abort."""
        if await abort_quietly(self.ctx, self.job, self.upload_id, self.claim):
            await self._unshare()

    async def _unshare(self) -> None:
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.delete()

    def close(self) -> None:
        """Close the journal writer (the record itself stays until forgotten)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def forget(self) -> None:
        """Drop the journal records (local and in S3) of a finished upload."""
        if self.claim is not None:
            _forget(self.claim)
        await self._unshare()

    async def release(self) -> None:
        """Close the journal writer, save the S3 record's last state if the upload is still
        open, and let other runs have the key again."""
        self.close()
        try:
            shared, self.shared = self.shared, None
            if shared is not None:
                await shared.close()
        finally:
            if self.claim is not None:
                self.claim.release()


async def abort_quietly(
    ctx: EngineContext, job: FileJob, upload_id: str, claim: JournalClaim | None
) -> bool:
    """Abort an upload; if S3 refuses, keep its journal record so `cleanup` or a rerun finds it
    (a new upload of the key then keeps it aside instead of overwriting it). True if aborted."""
    try:
        await s3.abort_upload(ctx.s3, job.bucket, job.key, upload_id)
    except TransferError as exc:
        log.warning("%s: could not abort upload %s: %s", job.source, upload_id, exc)
        return False
    if claim is not None and claim.entry is not None and claim.entry.upload_id == upload_id:
        _forget(claim)
    return True


def _forget(claim: JournalClaim) -> None:
    """Drop the record; a journal that cannot be written then is reported, not fatal (the
    upload it named is gone or complete, and a rerun only finds a record of nothing)."""
    try:
        claim.forget()
    except JournalError as exc:
        log.warning("%s", exc)
