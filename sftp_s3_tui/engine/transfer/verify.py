"""After the upload: compare what S3 holds with what was read, and remove what does not match.

Each object is checked by the strongest comparison the store makes meaningful: its own
checksum of the bytes (only where the probe saw it refuse a wrong one, so the value is not
just our header echoed), else its ETag against the MD5 computed here (plain for one part,
MD5 of the parts' MD5s for multipart; not with SSE-KMS / SSE-C), else the size alone. The
result names it (``verified_by``), so nothing is called verified that was not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from ..config import ChecksumChoice
from ..errors import StoreChecksumWrong, TransferError, VerificationFailed
from ..s3 import operations as s3
from ..s3.checksums import HEADER_NAME, KMS_VALUES, StoreCapabilities
from ..s3.operations import PreconditionFailed, S3Client

META_SHA256 = "sha256"
META_MTIME = "source-mtime"
NOT_IF_MATCH = {"NotImplemented", "InvalidArgument", "InvalidRequest", "501"}


@dataclass(frozen=True)
class Expected:
    """What the object must look like, from what was read and sent."""

    size: int
    sha256: str
    algorithm: ChecksumChoice
    checksum: str | None  # the store's Checksum<ALG> for the object ("b64" or "b64-N")
    etag: str | None  # MD5 hex, or "hex-N" for multipart; None when not known here
    multipart: bool
    sha256_in_metadata: bool = False
    checksum_full: str | None = None  # the same as a FULL_OBJECT value, for stores that
    # answer a composite upload with the whole object's CRC (moto does)

    def checksum_kind(self, *, full_object: bool) -> str:
        """``crc64nvme-full-object`` / ``crc32c-composite``: what a checksum match proves."""
        return f"{self.algorithm.value}-{'full-object' if full_object else 'composite'}"


@dataclass(frozen=True)
class Published:
    """The object our request published: its ETag and version (to delete only ours)."""

    etag: str | None = None
    version_id: str | None = None

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Published:
        return cls(answer.get("ETag"), answer.get("VersionId"))


async def verify_object(
    client: S3Client,
    bucket: str,
    key: str,
    expected: Expected,
    store: StoreCapabilities,
    published: Published,
    endpoint: str = "",
) -> str:
    """HEAD the object and compare; the ``verified_by`` name, or raise (the object removed)."""
    head = await s3.head_object(client, bucket, key)
    if head is None:
        raise VerificationFailed(
            f"s3://{bucket}/{key} is missing right after the upload",
            "another writer may have deleted it; transfer it again",
        )
    problems: list[str] = []
    verified_by = "size-only"
    if head.get("ContentLength") != expected.size:
        problems.append(f"size {head.get('ContentLength')} ≠ {expected.size}")
    stored = head.get("Metadata", {}).get(META_SHA256)
    if (stored is not None or expected.sha256_in_metadata) and stored != expected.sha256:
        problems.append(f"stored sha256 {stored} ≠ {expected.sha256}")
    etag = str(head.get("ETag", "")).strip('"')
    encrypted = head.get("ServerSideEncryption") in KMS_VALUES or "SSECustomerAlgorithm" in head
    # Only an ETag shaped like ours is an MD5 to compare; another shape (a store that makes
    # its own multipart ETags) proves nothing either way.
    md5_shaped = bool(re.fullmatch(r"[0-9a-f]{32}(-\d+)?", etag)) and (
        ("-" in etag) == ("-" in (expected.etag or ""))
    )
    if expected.etag and store.etag_is_md5 and not encrypted and md5_shaped:
        if etag != expected.etag:
            problems.append(f"S3's ETag {etag} ≠ the MD5 computed here {expected.etag}")
        else:
            verified_by = "md5-etag"
    name = HEADER_NAME.get(expected.algorithm)
    theirs = head.get(f"Checksum{name}") if name else None
    ours = expected.checksum
    wrong = ""
    if theirs and ours:
        # A composite upload may be answered without its "-N" suffix, or (some stores) with
        # the whole object's value: either is a function of the bytes, so either may match.
        kinds = {ours: "-" not in ours}
        if "-" in ours and "-" not in theirs:
            kinds = {ours.split("-")[0]: False}
            if expected.checksum_full:
                kinds[expected.checksum_full] = True
        if theirs not in kinds:
            wrong = f"S3's {name} {theirs} ≠ {ours}"
            problems.append(wrong)
        elif store.checksum_checked:
            verified_by = expected.checksum_kind(full_object=kinds[theirs])
    if problems == [wrong] and verified_by == "md5-etag":
        # The bytes are right (the ETag is their MD5) but the stored checksum is not: readers
        # that check it would refuse the object, so it goes, and the store's limit is named.
        outcome = await _delete_ours(client, bucket, key, published)
        raise StoreChecksumWrong(
            f"{endpoint or 's3'} computes {name} differently: its {name} of s3://{bucket}/{key} "
            f"is {theirs}, the bytes' is {ours} (their MD5 matches)",
            f"{outcome}; use --checksum md5 (or auto) with this store",
        )
    if problems:
        await reject(client, bucket, key, "; ".join(problems), published)
    return verified_by


async def reject(
    client: S3Client, bucket: str, key: str, problem: str, ours: Published
) -> NoReturn:
    """Remove the object our request published (only ours) and fail the transfer."""
    outcome = await _delete_ours(client, bucket, key, ours)
    raise VerificationFailed(
        f"s3://{bucket}/{key} does not match the source: {problem}", f"{outcome}; transfer it again"
    )


async def _delete_ours(client: S3Client, bucket: str, key: str, ours: Published) -> str:
    """Delete the key only while it still holds our object; what happened, for the hint."""
    try:
        if ours.version_id:
            await s3.delete_object(client, bucket, key, VersionId=ours.version_id)
            return "our version of the object was removed"
        if not ours.etag:
            return "the object was left in place (its ETag is unknown, so it may not be ours)"
        try:
            await s3.delete_object(client, bucket, key, IfMatch=ours.etag)
            return "the object was removed"
        except PreconditionFailed:
            return "the object was left in place: the key now holds another writer's object"
        except TransferError as exc:
            if getattr(exc, "code", "") not in NOT_IF_MATCH:
                raise
        # The store does not take If-Match on DELETE: compare a HEAD first (a small race).
        head = await s3.head_object(client, bucket, key)
        if head is None:
            return "the object is already gone"
        if head.get("ETag") != ours.etag:
            return "the object was left in place: the key now holds another writer's object"
        await s3.delete_object(client, bucket, key)
        return "the object was removed (checked by HEAD first: the store ignores If-Match)"
    except TransferError as exc:
        return f"the object could not be removed ({exc.message})"
