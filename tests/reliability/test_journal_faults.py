"""The resume journal when S3 refuses things: no abort right, no ListParts right, the same
bucket/key on another store. The record of an upload still open is never lost, and a record
never traps a file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EventBus, TransferNotice, TransferState
from sftp_s3_tui.engine.resume.in_s3 import record_key
from sftp_s3_tui.engine.resume.journal import Journal, endpoint_identity
from sftp_s3_tui.engine.resume.stale_uploads import abort_stale, list_stale
from sftp_s3_tui.engine.s3.operations import open_client
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_object
from .s3faults import FaultyS3Server

OPTIONS = TransferOptions(
    part_size=5 * MiB, parts_in_flight=2, sftp_concurrency=1, attempts=2, backoff_seconds=0.05
)
SIZE = 31 * MiB  # 7 parts


def deny(s3_faults: FaultyS3Server, operation: str, **rule: Any) -> None:
    s3_faults.fail(operation, 403, code="AccessDenied", message="Access Denied", **rule)


def open_uploads(s3: Any, bucket: str) -> set[str]:
    return {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []}


async def check_store(
    server: SftpServerInfo, endpoint: S3Endpoint, bucket: str, options: TransferOptions
) -> None:
    """Copy a small file first, so the session's one store check (a probe that uploads parts
    of its own) is done before the faults count UploadPart requests."""
    small = server.write_file("warm/first.csv", b"first\n")
    [result] = await copy(
        server.endpoint(), [small.remote_path], f"s3://{bucket}/warm/", endpoint, options=options
    )
    assert result.status is TransferState.DONE, result.message


async def leave_an_open_upload(
    server: SftpServerInfo,
    remote: str,
    endpoint: S3Endpoint,
    s3_faults: FaultyS3Server,
    bucket: str,
    journal: Journal,
    options: TransferOptions = OPTIONS,
) -> str:
    """A run whose part 4 is refused and whose abort is refused too: the upload stays open,
    with its record. Returns the upload id."""
    await check_store(server, endpoint, bucket, options)
    deny(s3_faults, "UploadPart", after=3, times=None)
    deny(s3_faults, "AbortMultipartUpload", times=None)
    [failed] = await copy(
        server.endpoint(), [remote], f"s3://{bucket}/", endpoint, options=options, journal=journal
    )
    s3_faults.clear()
    assert failed.status is TransferState.FAILED
    [entry] = journal.entries()
    assert entry.parts, "the parts that landed are journaled"
    return entry.upload_id


async def test_the_same_key_on_another_store_neither_resumes_nor_replaces_the_record(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """A file left half uploaded on store A, then copied to the same bucket/key on store B
    (AWS and a MinIO, two profiles): B's run starts its own upload and leaves A's record, so
    the next run to A continues where it stopped and nothing is orphaned."""
    remote = openssh_sftp.write_file("in/big.bin", size=SIZE, seed=41)
    journal = Journal(tmp_path / "journal")
    on_a = await leave_an_open_upload(
        openssh_sftp, remote.remote_path, faulty_endpoint, s3_faults, bucket, journal
    )

    with EmbeddedS3Server() as store_b:  # its own process: another store, same bucket name
        b_client = store_b.client()
        b_client.create_bucket(Bucket=bucket)
        [on_b] = await copy(
            openssh_sftp.endpoint(),
            [remote.remote_path],
            f"s3://{bucket}/",
            store_b.endpoint(),
            options=OPTIONS,
            journal=journal,
        )
        assert on_b.status is TransferState.DONE, on_b.message
        assert on_b.resumed_parts == 0
        assert_object(b_client, bucket, "big.bin", remote.read_bytes())
        assert (b_client.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []

    a_store = endpoint_identity(faulty_endpoint.endpoint_url)
    assert [e.upload_id for e in journal.entries()] == [on_a]
    assert [e.upload_id for e in journal.entries(endpoint=a_store)] == [on_a]
    assert open_uploads(s3, bucket) == {on_a}

    [resumed] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=OPTIONS,
        journal=journal,
    )
    assert resumed.status is TransferState.DONE, resumed.message
    assert resumed.resumed_parts >= 2  # parts 1 and 2 surely landed before part 4 was refused
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert open_uploads(s3, bucket) == set()
    assert journal.entries() == []


async def test_without_the_listparts_right_a_leftover_record_restarts_from_zero(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """A leftover record used to fail the file on every run when the credentials may not
    ListParts; now the run says why and starts afresh, aborting the old upload."""
    remote = openssh_sftp.write_file("in/big.bin", size=SIZE, seed=42)
    journal = Journal(tmp_path / "journal")
    old = await leave_an_open_upload(
        openssh_sftp, remote.remote_path, faulty_endpoint, s3_faults, bucket, journal
    )
    deny(s3_faults, "ListParts", times=None)
    notices: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda e: notices.append(e.message) if isinstance(e, TransferNotice) else None)

    for _ in range(2):  # and again: the record does not trap the file
        [result] = await copy(
            openssh_sftp.endpoint(),
            [remote.remote_path],
            f"s3://{bucket}/",
            faulty_endpoint,
            options=OPTIONS,
            journal=journal,
            bus=bus,
        )
        assert result.status is TransferState.DONE, result.message

    assert any(
        "cannot be continued" in n and "access denied" in n and "restarting from zero" in n
        for n in notices
    ), notices
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert old not in open_uploads(s3, bucket) and open_uploads(s3, bucket) == set()
    assert journal.entries() == []


async def test_a_changed_source_whose_old_upload_cannot_be_aborted_keeps_its_record(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The source changed, so the run starts anew; the old upload cannot be aborted, so its
    record must stay (it used to be overwritten by the new upload's, orphaning the old one)."""
    remote = openssh_sftp.write_file("in/big.bin", size=SIZE, seed=43)
    journal = Journal(tmp_path / "journal")
    old = await leave_an_open_upload(
        openssh_sftp, remote.remote_path, faulty_endpoint, s3_faults, bucket, journal
    )
    changed = openssh_sftp.write_file("in/big.bin", size=SIZE + 1, seed=44)
    deny(s3_faults, "AbortMultipartUpload", times=None)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [changed.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=OPTIONS,
        journal=journal,
    )

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, "big.bin", changed.read_bytes())
    assert open_uploads(s3, bucket) == {old}
    [kept] = journal.entries()
    assert kept.upload_id == old and kept.kept
    assert journal.resumable(endpoint_identity(faulty_endpoint.endpoint_url)) == []

    # `cleanup` finds it as ours, aborts it and drops the record
    s3_faults.clear()
    async with open_client(faulty_endpoint) as client:
        stale = await list_stale(client, bucket, "", datetime.now(UTC), journal)
        assert [(u.upload_id, u.journaled) for u in stale] == [(old, True)]
        await abort_stale(client, bucket, stale, journal)
    assert open_uploads(s3, bucket) == set()
    assert journal.entries() == []


async def test_a_retry_on_another_machine_continues_the_upload_from_its_state_in_s3(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """An Airflow task fails on worker A; its retry runs on worker B, whose disk has no
    journal. With resume_in_s3 the state kept beside the object lets B continue the upload."""
    remote = openssh_sftp.write_file("in/big.bin", size=SIZE, seed=45)
    options = replace(OPTIONS, resume_in_s3=True)
    worker_a = Journal(tmp_path / "worker-a" / "journal")
    worker_b = Journal(tmp_path / "worker-b" / "journal")
    upload = await leave_an_open_upload(
        openssh_sftp, remote.remote_path, faulty_endpoint, s3_faults, bucket, worker_a, options
    )
    keys_then = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys_then == {"warm/first.csv", record_key("big.bin")}  # beside the object-to-be

    notices: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda e: notices.append(e.message) if isinstance(e, TransferNotice) else None)
    [retried] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=options,
        journal=worker_b,
        bus=bus,
    )

    assert retried.status is TransferState.DONE, retried.message
    assert retried.resumed_parts >= 2  # parts 1 and 2 surely landed before part 4 was refused
    assert "found the resume state of an earlier run in S3" in notices
    assert s3_faults.requests.count("CreateMultipartUpload") == 0  # the same upload continued
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert open_uploads(s3, bucket) == set() and upload not in open_uploads(s3, bucket)
    keys_now = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys_now == ["big.bin", "warm/first.csv"]  # the state went with the upload
    assert worker_b.entries() == []
