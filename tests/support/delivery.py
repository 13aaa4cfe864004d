"""S3 → SFTP delivery helpers: the target address, test bytes, and what landed on disk."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.servers import SftpServerInfo


def target_url(server: SftpServerInfo, relative: str, user: str | None = None) -> str:
    """``sftp://user@host:port/<root>/relative`` (a trailing / kept: a folder)."""
    user = user or server.username
    path = server.remote_path(relative.rstrip("/")) + ("/" if relative.endswith("/") else "")
    return f"sftp://{user}@{server.host}:{server.port}{path}"


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporary ones included) by its relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def records(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *rows, summary = [json.loads(line) for line in stdout.splitlines()]
    return rows, summary


def past_second_of(modified: datetime) -> None:
    """Wait until the clock has left ``modified``'s whole second.

    SFTP v3 carries whole seconds, and ProFTPD's FSETSTAT skips a time that already equals
    the file's (compared in whole seconds): a file written within the second its object was
    uploaded kept its sub-second write time. Writing it a second later makes the test see
    whether the mtime was set at all.
    """
    while time.time() < int(modified.timestamp()) + 1:
        time.sleep(0.05)


def put_crc64nvme_multipart(s3: Any, bucket: str, key: str, data: bytes, part: int) -> None:
    """``data`` at ``key`` as a multipart upload of ``part``-sized parts with a full-object
    CRC64NVME (what the store then holds for the whole object, whatever the parts)."""
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT"
    )
    parts = []
    for number, start in enumerate(range(0, len(data), part), start=1):
        answer = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[start : start + part],
            ChecksumAlgorithm="CRC64NVME",
        )
        parts.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumCRC64NVME": answer["ChecksumCRC64NVME"],
            }
        )
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
