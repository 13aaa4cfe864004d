"""One multipart upload of one key: start or resume it, upload parts, complete or abort it.

The upload keeps its journal record in step: the record is written when the upload starts,
gains a line per finished part (and per digest checkpoint), and is forgotten once the upload
is completed or aborted — never while the upload may still be open in S3.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import s3
from .context import EngineContext
from .digest import DigestState
from .errors import TransferError
from .journal import JournalEntry, JournalWriter
from .plan import FileJob
from .s3 import PreconditionFailed

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
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.upload_id = upload_id
        self.parts: dict[int, UploadedPart] = parts or {}
        # Where a resumed stream digest restarts: its state after part ``digest_through``.
        self.digest_state: DigestState | None = None
        self.digest_through = 0
        self._writer = writer

    @classmethod
    async def start(
        cls, ctx: EngineContext, job: FileJob, part_size: int, **params: Any
    ) -> MultipartUpload:
        """Create the upload in S3 and record it in the journal."""
        upload_id = await s3.create_upload(
            ctx.s3,
            job.bucket,
            job.key,
            ChecksumAlgorithm="CRC64NVME",
            ChecksumType="FULL_OBJECT",
            **params,
        )
        writer = None
        if ctx.journal is not None:
            writer = await asyncio.to_thread(
                ctx.journal.start,
                JournalEntry(
                    job.source, job.bucket, job.key, upload_id, part_size, job.size, job.mtime
                ),
            )
        return cls(ctx, job, upload_id, writer)

    @classmethod
    async def resume(
        cls,
        ctx: EngineContext,
        job: FileJob,
        entry: JournalEntry,
        part_size: int,
        notice: Callable[[str], None],
    ) -> MultipartUpload | None:
        """Continue the journaled upload, keeping the parts S3 still lists; None = start anew."""
        assert ctx.journal is not None
        if entry.size != job.size or entry.mtime != job.mtime or entry.part_size != part_size:
            notice("the source changed since the last attempt; restarting from zero")
            await abort_quietly(ctx, job, entry.upload_id)
            return None
        listed = await s3.list_uploaded_parts(ctx.s3, job.bucket, job.key, entry.upload_id)
        if listed is None:
            notice("the earlier upload is gone from S3; restarting from zero")
            return None
        parts = {
            n: UploadedPart(etag, crc)
            for n, (etag, crc) in entry.parts.items()
            if listed.get(n, "").strip('"') == etag.strip('"')
        }
        upload = cls(ctx, job, entry.upload_id, ctx.journal.resume(entry), parts)
        # The digest restarts at the furthest checkpoint whose parts are all uploaded.
        for n in sorted(entry.digest):
            if all(p in parts for p in range(1, n + 1)):
                upload.digest_through = n
        if upload.digest_through:
            upload.digest_state = entry.digest[upload.digest_through]
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
        return part

    def checkpoint(self, through: int, state: DigestState) -> None:
        """Record the stream digest after part ``through`` (written at the next flush)."""
        if self._writer is not None:
            self._writer.digest_at(through, state, sync=False)

    def flush(self) -> None:
        """Write and sync the journal lines held back: one append, one sync per part."""
        if self._writer is not None:
            self._writer.flush()

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
        await abort_quietly(self.ctx, self.job, self.upload_id)

    def close(self) -> None:
        """Close the journal writer (the record itself stays until forgotten)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def forget(self) -> None:
        """Drop the journal record of a finished upload."""
        if self.ctx.journal is not None:
            self.ctx.journal.forget(self.job.source, self.job.bucket, self.job.key)


async def abort_quietly(ctx: EngineContext, job: FileJob, upload_id: str) -> None:
    """Abort an upload; if S3 refuses, keep its journal record so `cleanup` or a rerun finds it."""
    try:
        await s3.abort_upload(ctx.s3, job.bucket, job.key, upload_id)
    except TransferError as exc:
        log.warning("%s: could not abort upload %s: %s", job.source, upload_id, exc)
        return
    if ctx.journal is not None:
        ctx.journal.forget(job.source, job.bucket, job.key)
