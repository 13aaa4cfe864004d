"""Small helpers shared by the engine tests: run a queue, read back what S3 holds."""

from __future__ import annotations

import hashlib
from typing import Any

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
from sftp_s3_tui.engine.events import EventBus, TransferResult
from sftp_s3_tui.engine.resume.journal import Journal
from sftp_s3_tui.engine.transfer.queue import TransferQueue

MiB = 1 << 20


async def copy(
    sftp: SftpEndpoint,
    paths: list[str],
    dest: str,
    s3_endpoint: S3Endpoint,
    *,
    options: TransferOptions | None = None,
    bus: EventBus | None = None,
    journal: Journal | None = None,
) -> list[TransferResult]:
    """What ``sftp-s3-tui copy`` does, in process."""
    async with TransferQueue(s3_endpoint, options, bus=bus, journal=journal) as queue:
        jobs = []
        for path in paths:
            jobs += await queue.expand(sftp, path, parse_s3_url(dest))
        return await queue.run(jobs)


def object_bytes(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def stored_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """The sha256 the engine recorded: metadata (single part or --sha256-metadata) or tag."""
    head = s3.head_object(Bucket=bucket, Key=key)
    if "sha256" in head["Metadata"]:
        return str(head["Metadata"]["sha256"])
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return next((t["Value"] for t in tags if t["Key"] == "sha256"), None)


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) or []


async def check_store(endpoint: S3Endpoint, bucket: str) -> None:
    """Do the session's store check (the checksum probe) of ``endpoint``/``bucket`` now, as a
    long session has it done, so faults armed afterwards meet the files' own requests only."""
    from sftp_s3_tui.engine.config import ChecksumChoice
    from sftp_s3_tui.engine.s3.checksums import SESSION_PROBES
    from sftp_s3_tui.engine.s3.operations import open_client

    async with open_client(endpoint) as client:
        await SESSION_PROBES.capabilities(
            client, endpoint.display, bucket, "probe", ChecksumChoice.AUTO
        )
