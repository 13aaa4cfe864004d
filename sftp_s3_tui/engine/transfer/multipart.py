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

from ..aio import run_to_end
from ..config import ChecksumChoice
from ..digest import DigestState
from ..errors import JournalWriteFailed, S3Error, TransferError
from ..plan.sources import FileJob
from ..resume.in_s3 import SharedRecord
from ..resume.journal import JournalClaim, JournalEntry, JournalError, JournalWriter
from ..s3 import operations as s3
from ..s3.checksums import (
    FULL_OBJECT,
    HEADER_NAME,
    PartSums,
    StoreCapabilities,
    etag_md5,
    request_fields,
)
from ..s3.operations import PreconditionFailed
from .context import EngineContext

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
        claim: JournalClaim | None = None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.upload_id = upload_id
        self.claim = claim  # this run's lock on the key's journal record
        self.shared: SharedRecord | None = None  # the record in S3 (resume_in_s3)
        self.algorithm = algorithm
        self.parts: dict[int, UploadedPart] = parts or {}
        # Where a resumed stream digest restarts: its state after part ``digest_through``.
        self.digest_state: DigestState | None = None
        self.digest_through = 0
        self.etag_is_md5 = True  # part ETags are compared with our MD5 while this holds
        self.sends_md5 = True  # Content-MD5 on every part (not where the store checks CRC64NVME)
        # what SigV4 signs as each body's hash (part_sums' payload_sha256)
        self.body_signature: bool | str = s3.body_signature(ctx.s3, True)
        self._writer = writer

    @property
    def what(self) -> str:
        return f"s3://{self.job.bucket}/{self.job.key}"

    @classmethod
    async def start(
        cls,
        ctx: EngineContext,
        job: FileJob,
        claim: JournalClaim | None,
        part_size: int,
        store: StoreCapabilities,
        **params: Any,
    ) -> MultipartUpload:
        """Create the upload in S3 and record it in the journal (a record of an older upload
        still open is kept aside, never overwritten).

        Both steps finish even if the transfer is cancelled meanwhile; the upload is then
        aborted before the cancellation goes on, so a cancel at any moment leaves no upload.
        """
        return await run_to_end(
            cls._create(ctx, job, claim, part_size, store, **params),
            undo=lambda upload: upload.abort(),
        )

    @classmethod
    async def _create(
        cls,
        ctx: EngineContext,
        job: FileJob,
        claim: JournalClaim | None,
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
        # the source's identity is known before the upload exists (a login may fail)
        host_key, login = await ctx.sftp.server_seen(job.endpoint) if claim else ("", "")
        upload_id = await s3.create_upload(ctx.s3, job.bucket, job.key, **params)
        upload = cls(ctx, job, upload_id, algorithm, None, claim=claim)
        upload.etag_is_md5 = store.etag_is_md5
        upload.sends_md5 = store.sends_md5
        upload.body_signature = s3.body_signature(ctx.s3, store.payload_signed)
        if claim is not None:
            entry = claim.new_entry(
                job.source,
                upload_id,
                part_size,
                job.size,
                job.mtime,
                algorithm.value,
                host_key=host_key,
                login=login,
            )
            try:
                upload._writer = await asyncio.to_thread(claim.start, entry)
            except JournalError as exc:
                aborted = await abort_quietly(ctx, job, upload_id, None)
                raise JournalWriteFailed(
                    exc.message,
                    "free disk space or fix the state folder (or use --no-resume); "
                    + ("the upload was aborted" if aborted else "the upload is still open"),
                ) from exc
            if ctx.options.resume_in_s3:
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
        """Continue the journaled upload, keeping the parts S3 still lists.

        Only an upload of the same source is continued: the same SFTP endpoint (host, port,
        the user logged in as) and path, a server showing the same host key, the same size
        and mtime (a file rewritten in place at the same size and mtime is the limit: the
        parts not re-read are trusted). Resumed parts are not read again, so nothing else
        could tell.

        None when there is nothing to continue: the upload was started from another source
        or the source changed (the old upload is aborted, or, if S3 refuses that, its record
        is kept aside for `cleanup`), the credentials may not list its parts (the same), or
        the upload is gone from S3 (completed or aborted since): then only is
        ``claim.entry`` still set.
        """
        entry = claim.entry
        assert entry is not None
        other = _other_source(entry, job, *await ctx.sftp.server_seen(job.endpoint))
        if other:
            notice(f"not resuming: the upload at {entry.destination} {other}; starting over")
            await _abort_or_keep(ctx, job, claim, notice)
            return None
        if entry.size != job.size or entry.mtime != job.mtime or entry.part_size != part_size:
            notice("the source changed since the last attempt; restarting from zero")
            await _abort_or_keep(ctx, job, claim, notice)
            return None
        try:
            listed = await s3.list_uploaded_parts(ctx.s3, job.bucket, job.key, entry.upload_id)
        except TransferError as exc:
            if exc.retryable:
                raise
            # e.g. no s3:ListParts right: the record would fail this file on every run
            notice(f"the earlier upload cannot be continued ({exc.message}); restarting from zero")
            await _abort_or_keep(ctx, job, claim, notice)
            return None
        if listed is None:
            return None
        parts = {
            n: UploadedPart(etag, checksum)
            for n, (etag, checksum) in entry.parts.items()
            if listed.get(n, "").strip('"') == etag.strip('"')
        }
        algorithm = ChecksumChoice(entry.checksum)
        upload = cls(ctx, job, entry.upload_id, algorithm, claim.resume(), parts, claim=claim)
        # The digest restarts at the furthest checkpoint whose parts are all uploaded.
        for n in sorted(entry.digest):
            if all(p in parts for p in range(1, n + 1)):
                upload.digest_through = n
        if upload.digest_through:
            upload.digest_state = entry.digest[upload.digest_through]
        if ctx.options.resume_in_s3:
            shared_entry = replace(
                entry,
                parts={n: (p.etag, p.checksum) for n, p in parts.items()},
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
                payload_sha256=sums.payload_sha256,
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
        if self.shared is not None:
            self.shared.part_done(number, part.etag, part.checksum)
        return part

    def checkpoint(self, through: int, state: DigestState) -> None:
        """Record the stream digest after part ``through`` (written at the next flush)."""
        if self._writer is not None:
            self._writer.digest_at(through, state, sync=False)
        if self.shared is not None:
            self.shared.digest_at(through, state)

    async def flush(self) -> None:
        """Write and sync the journal lines held back: one append, one sync per part, in a
        worker thread (a slow disk's sync would stall the loop); a journal that cannot be
        written raises JournalError, a JournalWriteFailed."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.flush)
        if self.shared is not None:
            self.shared.flush()

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
        if not await abort_quietly(self.ctx, self.job, self.upload_id, self.claim):
            return False
        await self._unshare()
        return True

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
    """Abort an upload; False (journal record kept, for `cleanup` or a rerun) if S3 refuses.
    A new upload of the key then keeps that record aside instead of overwriting it."""
    try:
        await s3.abort_upload(ctx.s3, job.bucket, job.key, upload_id)
    except TransferError as exc:
        log.warning("%s: could not abort upload %s: %s", job.source, upload_id, exc)
        return False
    if claim is not None and claim.entry is not None and claim.entry.upload_id == upload_id:
        _forget(claim)
    return True


def _other_source(entry: JournalEntry, job: FileJob, host_key: str, login: str) -> str:
    """Why the journaled upload cannot be proven to continue ``job``'s source ('' = it is
    the same source): the rest of the line "not resuming: the upload at KEY …"."""
    if not entry.host_key:
        return "was recorded without its source's identity (by an older version)"
    if entry.source != job.source:
        return f"was started from {entry.source}"
    if entry.host_key != host_key:
        return (
            f"was started from {entry.source} on a server with another host key "
            f"({entry.host_key}, now {host_key})"
        )
    if entry.login != login:
        return f"was started from {entry.source} as user {entry.login or '?'} (now {login})"
    return ""


async def _abort_or_keep(
    ctx: EngineContext, job: FileJob, claim: JournalClaim, notice: Callable[[str], None]
) -> None:
    """The earlier upload will not be continued: abort it (its record goes) or, if S3 refuses,
    keep its record aside for `cleanup` (never lost, never overwritten)."""
    assert claim.entry is not None
    upload_id = claim.entry.upload_id
    if not await abort_quietly(ctx, job, upload_id, claim):
        claim.keep()
        notice(
            f"the earlier upload {upload_id} could not be aborted; its journal record is "
            "kept for `sftp-s3-tui cleanup`"
        )


def _forget(claim: JournalClaim) -> None:
    """Drop the record; a journal that cannot be written then is reported, not fatal (the
    upload it named is gone or complete, and a rerun only finds a record of nothing)."""
    try:
        claim.forget()
    except JournalError as exc:
        log.warning("%s", exc)
