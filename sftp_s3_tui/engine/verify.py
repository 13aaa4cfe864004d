"""After the upload: compare what S3 holds with what was read, and remove what does not match."""

from __future__ import annotations

import contextlib
from typing import NoReturn

from . import s3
from .digest import StreamDigest
from .errors import TransferError, VerificationFailed
from .s3 import S3Client

META_SHA256 = "sha256"
META_MTIME = "source-mtime"


async def object_problems(
    client: S3Client,
    bucket: str,
    key: str,
    size: int,
    digest: StreamDigest,
    *,
    sha256_in_metadata: bool,
) -> list[str]:
    """HEAD the object; what differs from the stream (size, stored sha256, S3's CRC64NVME)."""
    head = await s3.head_object(client, bucket, key)
    if head is None:
        return ["the object is missing after the upload"]
    problems = []
    if head.get("ContentLength") != size:
        problems.append(f"size {head.get('ContentLength')} ≠ {size}")
    stored = head.get("Metadata", {}).get(META_SHA256)
    if (stored is not None or sha256_in_metadata) and stored != digest.sha256_hex():
        problems.append(f"stored sha256 {stored} ≠ {digest.sha256_hex()}")
    crc = head.get("ChecksumCRC64NVME")
    if crc and "-" not in crc and crc != digest.crc64nvme_b64():
        problems.append(f"S3's CRC64NVME {crc} ≠ {digest.crc64nvme_b64()}")
    return problems


async def reject(client: S3Client, bucket: str, key: str, problem: str) -> NoReturn:
    """Remove an object that does not match its source and fail the transfer."""
    with contextlib.suppress(TransferError):
        await s3.delete_object(client, bucket, key)
    raise VerificationFailed(
        f"s3://{bucket}/{key} does not match the source: {problem}",
        "the object was removed; transfer it again",
    )
