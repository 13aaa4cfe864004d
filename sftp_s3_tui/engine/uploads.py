"""Stale multipart uploads: list and abort what crashed runs left behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from .journal import Journal
from .s3 import S3Client, abort_upload, map_s3_error


@dataclass(frozen=True)
class StaleUpload:
    key: str
    upload_id: str
    initiated: datetime
    journaled: bool


async def list_stale(
    client: S3Client, bucket: str, prefix: str, older_than: datetime, journal: Journal | None
) -> list[StaleUpload]:
    """Multipart uploads under ``prefix`` started before ``older_than``."""
    ours = {e.upload_id for e in journal.entries()} if journal else set()
    found = []
    paginator = client.get_paginator("list_multipart_uploads")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []) or []:
                if upload["Initiated"] < older_than:
                    found.append(
                        StaleUpload(
                            upload["Key"],
                            upload["UploadId"],
                            upload["Initiated"],
                            upload["UploadId"] in ours,
                        )
                    )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Listing uploads in {bucket}") from exc
    return found


async def abort_stale(
    client: S3Client, bucket: str, uploads: list[StaleUpload], journal: Journal | None
) -> None:
    by_id = {e.upload_id: e for e in journal.entries()} if journal else {}
    for upload in uploads:
        await abort_upload(client, bucket, upload.key, upload.upload_id)
        entry = by_id.get(upload.upload_id)
        if entry is not None and journal is not None:
            journal.forget(entry)
