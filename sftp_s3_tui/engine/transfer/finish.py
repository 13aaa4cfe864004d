"""What runs once the object is published (after PutObject or CompleteMultipartUpload):
the SHA-256 recorded on it (a tag, or metadata by a copy onto itself), and the check of
what S3 holds against what was read (:mod:`.verify`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..aio import run_to_end
from ..config import MAX_PART_SIZE, ChecksumChoice
from ..digest import StreamDigest
from ..errors import TransferError, VerificationFailed
from ..object_options import META_MTIME, META_SHA256
from ..plan.sources import FileJob
from ..s3 import operations as s3
from ..s3.checksums import (
    HEADER_NAME,
    KMS_VALUES,
    StoreCapabilities,
    combined_crc,
    composite,
    etag_md5,
    multipart_etag,
)
from ..s3.operations import PreconditionFailed
from .context import EngineContext
from .multipart import MultipartUpload, UploadedPart
from .verify import Expected, Published, tag_ours, verify_object


class Finish:
    """The after-publish steps of one transfer's object (``job`` with its size and mtime)."""

    def __init__(
        self,
        ctx: EngineContext,
        job: FileJob,
        store: StoreCapabilities | None,
        notice: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.store = store
        self.notice = notice

    async def store_sha256(
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
                self.notice(f"the sha256 could not be tagged on the object ({exc.message})")
            return False
        metadata = self.ctx.metadata({META_SHA256: sha256, META_MTIME: str(job.mtime)})
        extra = self.ctx.object_args(job.key)
        # CopySourceIfMatch: the copy is of our object or of nothing. Without it an object
        # put over ours after our HEAD would get our sha256 and pass the copy's check (same
        # size), and the source would be deleted. AWS and SeaweedFS honour it (412); moto
        # 5.2 ignores it (it checks only copy-source-if-none-match): there an overwrite
        # between our HEAD and the copy is not caught (probed 2026-12-07).
        if_match = {"CopySourceIfMatch": ours.etag} if ours.etag else {}
        try:
            if size > MAX_PART_SIZE:
                await self.copy_multipart(size, metadata, extra, if_match)
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

    async def copy_multipart(
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

    async def verify(self, expected: Expected, published: Published) -> str:
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


def expected_multipart(
    upload: MultipartUpload, digest: StreamDigest, size: int, part_size: int
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
        etag=multipart_etag([m for m in md5s if m]) if all(md5s) and upload.etag_is_md5 else None,
        multipart=True,
        checksum_full=full,
    )


def put_answer_proves(expected: Expected, answer: dict[str, Any], store: StoreCapabilities) -> str:
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
