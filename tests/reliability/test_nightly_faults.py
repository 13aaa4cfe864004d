"""The verified move under faults: a file whose upload fails keeps its source (and its row
says why); the others of the same run are archived."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from tests.support.nightly import manifest_rows, nightly
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, open_uploads

from .conftest import assert_object
from .s3faults import FaultyS3Server

PART = 5 * MiB


async def test_failed_upload_keeps_its_source_others_move(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    small = openssh_sftp.write_file("drop/small.csv", b"id\n1\n")
    big = openssh_sftp.write_file("drop/big.bin", size=2 * PART + 1, seed=9)
    small_bytes = small.read_bytes()
    s3_faults.fail("CompleteMultipartUpload", 500, times=None)  # big.bin never completes

    report = await nightly(
        openssh_sftp,
        openssh_sftp.remote_path("drop/"),
        f"s3://{bucket}/in/",
        faulty_endpoint,
        options=TransferOptions(part_size=PART, attempts=2, backoff_seconds=0.01),
        action=SourceAction(move_to=openssh_sftp.remote_path("processed")),
        manifest=tmp_path / "run.jsonl",
    )

    status = {r.key: r.status for r in report.results}
    assert status == {"in/big.bin": TransferState.FAILED, "in/small.csv": TransferState.DONE}
    assert big.local_path.exists()  # failed: never moved
    assert not small.local_path.exists()
    assert (openssh_sftp.root / "processed" / "small.csv").read_bytes() == small_bytes
    assert_object(s3, bucket, "in/small.csv", small_bytes)
    assert open_uploads(s3, bucket) == []
    outcome = {o.path: o for o in report.outcomes}
    assert outcome[big.remote_path].action == "kept"
    assert outcome[big.remote_path].reason == "the transfer failed"
    rows = {r.get("key"): r for r in manifest_rows(tmp_path / "run.jsonl") if r["kind"] == "file"}
    assert rows["in/big.bin"]["status"] == "failed" and rows["in/big.bin"]["reason"]
    assert rows["in/big.bin"]["sha256"] is None and rows["in/big.bin"]["bytes"] == 0


async def test_skip_existing_without_list_permission_decides_by_head(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """An IAM user without s3:ListBucket: the listing is refused, so each key is decided by
    a HEAD; the rerun still copies what is new and skips what is there."""
    from sftp_s3_tui.engine.addresses import parse_s3_url
    from sftp_s3_tui.engine.config import ConflictPolicy
    from sftp_s3_tui.engine.transfer.queue import TransferQueue

    openssh_sftp.write_file("drop/new.csv", b"new\n")
    openssh_sftp.write_file("drop/kept.csv", b"ours\n")
    s3.put_object(Bucket=bucket, Key="in/kept.csv", Body=b"theirs\n")
    s3_faults.fail("GET bucket", 403, code="AccessDenied", times=None)
    options = TransferOptions(conflict=ConflictPolicy.SKIP_EXISTING)

    async with TransferQueue(faulty_endpoint, options) as queue:
        jobs = await queue.expand(
            openssh_sftp.endpoint(),
            openssh_sftp.remote_path("drop/"),
            parse_s3_url(f"s3://{bucket}/in/"),
        )
        await queue.destination.preload(bucket, [j.key for j in jobs])
        results = await queue.run(jobs)

    status = {r.key: r.status for r in results}
    assert status == {"in/kept.csv": TransferState.SKIPPED, "in/new.csv": TransferState.DONE}
    assert queue.destination.head_requests >= 2  # decided by HEAD, the listing refused
    assert s3.get_object(Bucket=bucket, Key="in/kept.csv")["Body"].read() == b"theirs\n"
    assert s3.get_object(Bucket=bucket, Key="in/new.csv")["Body"].read() == b"new\n"
