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
from .checksums import (
    FULL_OBJECT,
    HEADER_NAME,
    PartSums,
    StoreCapabilities,
    etag_md5,
    request_fields,
)
from .config import ChecksumChoice
from .context import EngineContext
from .digest import DigestState
from .errors import JournalWriteFailed, S3Error, TransferError
from .journal import JournalEntry, JournalWriter
from .plan import FileJob
from .s3 import PreconditionFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part S3 holds: its ETag and the checksum (base64, the upload's algorithm) it was sent
    with — for ``md5`` uploads the Content-MD5, for ``none`` ''."""

    etag: str
    checksum: str


class MultipartUpload:
    """An open multipart upload and the parts it already holds."""

    def __init__(
        self,
        ctx: EngineContext,
        job: FileJob,
        upload_id: str,
        algorithm: ChecksumChoice,
        writer: JournalWriter | None,
        parts: dict[int, UploadedPart] | None = None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.upload_id = upload_id
        self.algorithm = algorithm
        self.parts: dict[int, UploadedPart] = parts or {}
        # Where a resumed stream digest restarts: its state after part ``digest_through``.
        self.digest_state: DigestState | None = None
        self.digest_through = 0
        self.etag_is_md5 = True  # part ETags are compared with our MD5 while this holds
        self._writer = writer

    @property
    def what(self) -> str:
        return f"s3://{self.job.bucket}/{self.job.key}"

    @classmethod
    async def start(
        cls,
        ctx: EngineContext,
        job: FileJob,
        part_size: int,
        store: StoreCapabilities,
        **params: Any,
    ) -> MultipartUpload:
        """Create the upload in S3 and record it in the journal.

        Both steps finish even if the transfer is cancelled meanwhile; the upload is then
        aborted before the cancellation goes on, so a cancel at any moment leaves no upload.
        """
        task = asyncio.ensure_future(cls._create(ctx, job, part_size, store, **params))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    continue
                except BaseException:
                    break
            if task.done() and not task.cancelled() and task.exception() is None:
                await asyncio.shield(task.result().abort())
            raise

    @classmethod
    async def _create(
        cls,
        ctx: EngineContext,
        job: FileJob,
        part_size: int,
        store: StoreCapabilities,
        **params: Any,
    ) -> MultipartUpload:
        algorithm = store.algorithm
        name = HEADER_NAME.get(algorithm)
        if name is not None:
            params["ChecksumAlgorithm"] = name
            if algorithm in FULL_OBJECT:  # the others are COMPOSITE, S3's default
                params["ChecksumType"] = "FULL_OBJECT"
        upload_id = await s3.create_upload(ctx.s3, job.bucket, job.key, **params)
        upload = cls(ctx, job, upload_id, algorithm, None)
        upload.etag_is_md5 = store.etag_is_md5
        if ctx.journal is not None:
            entry = JournalEntry(
                job.source, job.bucket, job.key, upload_id, part_size, job.size, job.mtime
            )
            entry.checksum = algorithm.value
            try:
                upload._writer = await asyncio.to_thread(ctx.journal.start, entry)
            except OSError as exc:
                aborted = await abort_quietly(ctx, job, upload_id)
                raise JournalWriteFailed(
                    f"Could not record the upload of {upload.what} in the journal "
                    f"({ctx.journal.folder}): {exc.strerror or exc}",
                    "free disk space or fix the state folder (or use --no-resume); "
                    + ("the upload was aborted" if aborted else "the upload is still open"),
                ) from exc
        return upload

    @classmethod
    async def resume(
        cls,
        ctx: EngineContext,
        job: FileJob,
        entry: JournalEntry,
        part_size: int,
        notice: Callable[[str], None],
    ) -> MultipartUpload | None:
        """Continue the journaled upload, keeping the parts S3 still lists.

        None when there is nothing to continue: the source changed (the old upload is
        aborted) or the upload is gone from S3 (completed or aborted since).
        """
        assert ctx.journal is not None
        if entry.size != job.size or entry.mtime != job.mtime or entry.part_size != part_size:
            notice("the source changed since the last attempt; restarting from zero")
            if not await abort_quietly(ctx, job, entry.upload_id):
                raise S3Error(
                    f"The earlier upload {entry.upload_id} of s3://{job.bucket}/{job.key} "
                    "could not be aborted, and its journal record is kept",
                    "abort it with `sftp-s3-tui cleanup` (needs s3:AbortMultipartUpload)",
                )
            return None
        listed = await s3.list_uploaded_parts(ctx.s3, job.bucket, job.key, entry.upload_id)
        if listed is None:
            return None
        parts = {
            n: UploadedPart(etag, checksum)
            for n, (etag, checksum) in entry.parts.items()
            if listed.get(n, "").strip('"') == etag.strip('"')
        }
        algorithm = ChecksumChoice(entry.checksum)
        upload = cls(ctx, job, entry.upload_id, algorithm, ctx.journal.resume(entry), parts)
        # The digest restarts at the furthest checkpoint whose parts are all uploaded.
        for n in sorted(entry.digest):
            if all(p in parts for p in range(1, n + 1)):
                upload.digest_through = n
        if upload.digest_through:
            upload.digest_state = entry.digest[upload.digest_through]
        notice(f"resuming: {len(parts)} parts already uploaded")
        return upload

    async def upload_part(
        self, number: int, buffer: bytearray, sums: PartSums, timeout_seconds: float
    ) -> UploadedPart:
        """Send one part from its buffer with its checksums; a store that checks them refuses
        a corrupt part, and an ETag that is not our MD5 means S3 got other bytes (retried)."""
        what = f"Uploading part {number} of {self.what}"
        async with s3.deadline(timeout_seconds, what):
            response = await s3.upload_part(
                self.ctx.s3,
                self.job.bucket,
                self.job.key,
                self.upload_id,
                number,
                buffer,
                **request_fields(self.algorithm, sums),
            )
        etag = str(response["ETag"])
        if self.etag_is_md5 and sums.md5 is not None and etag_md5(etag) != sums.md5:
            raise S3Error(
                f"{what}: S3's ETag {etag} is not the MD5 of the part ({sums.md5_hex})",
                "S3 stored other bytes than were sent",
            )
        name = HEADER_NAME.get(self.algorithm)
        if name is not None and sums.checksum is not None:
            echoed = response.get(f"Checksum{name}")
            if echoed is not None and echoed != sums.checksum_b64:
                raise S3Error(
                    f"{what}: S3's {name} {echoed} ≠ {sums.checksum_b64}",
                    "S3 stored other bytes than were sent",
                )
        part = UploadedPart(etag, sums.checksum_b64)
        self.parts[number] = part
        if self._writer is not None:
            self._writer.part_done(number, part.etag, part.checksum, sync=False)
        return part

    def checkpoint(self, through: int, state: DigestState) -> None:
        """Record the stream digest after part ``through`` (written at the next flush)."""
        if self._writer is not None:
            self._writer.digest_at(through, state, sync=False)

    def flush(self) -> None:
        """Write and sync the journal lines held back: one append, one sync per part."""
        if self._writer is None:
            return
        try:
            self._writer.flush()
        except OSError as exc:
            raise JournalWriteFailed(
                f"Could not record progress of {self.what} in the journal: {exc.strerror or exc}",
                "free disk space or fix the state folder (or use --no-resume)",
            ) from exc

    async def complete(self, crc64nvme: str, **params: Any) -> dict[str, Any] | None:
        """Publish the object; its answer, or None when a conditional write found the key
        taken (the upload is then aborted)."""
        name = HEADER_NAME.get(self.algorithm)
        listed = []
        for n, p in sorted(self.parts.items()):
            part: dict[str, Any] = {"PartNumber": n, "ETag": p.etag}
            if name is not None:
                part[f"Checksum{name}"] = p.checksum
            listed.append(part)
        if self.algorithm in FULL_OBJECT:
            params.update(ChecksumCRC64NVME=crc64nvme, ChecksumType="FULL_OBJECT")
        try:
            return await s3.complete_upload(
                self.ctx.s3, self.job.bucket, self.job.key, self.upload_id, listed, **params
            )
        except PreconditionFailed:
            await self.abort()
            return None

    async def abort(self) -> bool:
        """Abort the upload; its journal record goes only if S3 confirmed the abort."""
        return await abort_quietly(self.ctx, self.job, self.upload_id)

    def close(self) -> None:
        """Close the journal writer (the record itself stays until forgotten)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def forget(self) -> None:
        """Drop the journal record of a finished upload."""
        if self.ctx.journal is not None:
            self.ctx.journal.forget(self.job.source, self.job.bucket, self.job.key)


async def abort_quietly(ctx: EngineContext, job: FileJob, upload_id: str) -> bool:
    """Abort an upload; False (journal record kept, for `cleanup` or a rerun) if S3 refuses."""
    try:
        await s3.abort_upload(ctx.s3, job.bucket, job.key, upload_id)
    except TransferError as exc:
        log.warning("%s: could not abort upload %s: %s", job.source, upload_id, exc)
        return False
    if ctx.journal is not None:
        ctx.journal.forget(job.source, job.bucket, job.key)
    return True
