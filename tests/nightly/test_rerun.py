"""Every night Airflow reruns the copy with replace=False: files already landed are skipped
from a listing or a HEAD, before a single byte is read from SFTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, object_bytes, open_uploads

PART = 5 * MiB


@pytest.mark.parametrize(
    "policy", [ConflictPolicy.SKIP_EXISTING, ConflictPolicy.IF_NEWER, ConflictPolicy.IF_DIFFERENT]
)
@pytest.mark.parametrize("preload", [False, True], ids=["head", "listing"])
async def test_rerun_reads_nothing_from_sftp(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    policy: ConflictPolicy,
    preload: bool,
) -> None:
    written = time.time() - 60  # last night's files, written a while before the copy
    big = embedded_sftp.write_file("drop/big.bin", size=3 * PART + 5, seed=7, mtime=written)
    small = embedded_sftp.write_file("drop/small.csv", b"id\n1\n", mtime=written)
    options = TransferOptions(part_size=PART, conflict=policy)
    source, dest = "/drop/", f"s3://{bucket}/in/"
    first = await copy(embedded_sftp.endpoint(), [source], dest, s3_endpoint, options=options)
    assert {r.status for r in first} == {TransferState.DONE}
    server = embedded_sftp.server
    assert server.bytes_read == big.size + small.size
    server.stats.reset()

    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(embedded_sftp.endpoint(), source, parse_s3_url(dest))
        if preload:
            await queue.destination.preload(bucket, [j.key for j in jobs])
        results = await queue.run(jobs)
        lookups = (queue.destination.list_requests, queue.destination.head_requests)

    assert [r.status for r in results] == [TransferState.SKIPPED] * 2, results
    assert server.bytes_read == 0  # not one byte read again
    if preload and policy is ConflictPolicy.SKIP_EXISTING:
        assert lookups == (1, 0)  # one listing answered for both files
    elif not preload:
        assert lookups == (0, 2)
    assert object_bytes(s3, bucket, "in/small.csv") == b"id\n1\n"
    assert open_uploads(s3, bucket) == []


async def test_a_key_taken_after_the_listing_is_still_not_overwritten(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """The listing said "free"; another writer took the key since: the conditional write
    keeps their object (the race guard stays)."""
    embedded_sftp.write_file("drop/a.csv", b"ours\n")
    options = TransferOptions(conflict=ConflictPolicy.SKIP_EXISTING)
    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(
            embedded_sftp.endpoint(), "/drop/", parse_s3_url(f"s3://{bucket}/in/")
        )
        await queue.destination.preload(bucket, [j.key for j in jobs] + ["in/zz"])
        s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"theirs\n")
        [result] = await queue.run(jobs)
    assert result.status is TransferState.SKIPPED
    assert object_bytes(s3, bucket, "in/a.csv") == b"theirs\n"
