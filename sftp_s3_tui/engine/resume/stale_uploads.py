"""Stale multipart uploads: list and abort what crashed runs left behind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from ..s3.operations import S3Client, abort_upload, map_s3_error
from .journal import Journal, JournalBusy

log = logging.getLogger(__name__)


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
    """Abort ``uploads`` and drop their journal records; an upload whose key a running
    transfer holds (its journal record is locked) is left alone, with a warning."""
    by_id = {e.upload_id: e for e in journal.entries()} if journal else {}
    for upload in uploads:
        entry = by_id.get(upload.upload_id)
        if journal is None or entry is None or entry.kept or not entry.endpoint:
            await abort_upload(client, bucket, upload.key, upload.upload_id)
            if journal is not None and entry is not None:
                journal.forget(entry)
            continue
        records = journal.for_endpoint(entry.endpoint, entry.account)
        try:
            claim = records.claim(entry.bucket, entry.key)
        except JournalBusy as exc:
            log.warning("not aborting upload %s: %s", upload.upload_id, exc)
            continue
        with claim:
            await abort_upload(client, bucket, upload.key, upload.upload_id)
            if claim.entry is not None and claim.entry.upload_id == upload.upload_id:
                claim.forget()
