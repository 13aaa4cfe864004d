"""Another writer shares the bucket: a failed check never deletes their object, and under
skip-existing their object is never overwritten, even when it appears mid-upload."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import VerificationFailed
from sftp_s3_tui.engine.events import EngineEvent, EventBus, PartChanged, PartState, TransferState
from sftp_s3_tui.engine.s3.operations import open_client
from sftp_s3_tui.engine.transfer.verify import Published, reject
from tests.servers import SftpServerInfo

from .helpers import MiB, copy, object_bytes, open_uploads

PART = 5 * MiB


async def test_a_failed_check_leaves_another_writers_object_in_place(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    ours = s3.put_object(Bucket=bucket, Key="k", Body=b"ours")
    theirs = s3.put_object(Bucket=bucket, Key="k", Body=b"theirs, written after ours")

    async with open_client(s3_endpoint) as client:
        with pytest.raises(VerificationFailed) as failed:
            await reject(client, bucket, "k", "size 4 ≠ 5", Published(ours["ETag"]))

    assert "left in place" in failed.value.hint and "another writer" in failed.value.hint
    assert object_bytes(s3, bucket, "k") == b"theirs, written after ours"
    assert theirs["ETag"] != ours["ETag"]


async def test_a_failed_check_removes_our_own_object(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    ours = s3.put_object(Bucket=bucket, Key="k", Body=b"ours")

    async with open_client(s3_endpoint) as client:
        with pytest.raises(VerificationFailed) as failed:
            await reject(client, bucket, "k", "size 4 ≠ 5", Published(ours["ETag"]))

    assert "removed" in failed.value.hint
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("size", [70_000, 3 * PART + 1], ids=["single", "multipart"])
async def test_skip_existing_never_overwrites_an_object_that_appears_mid_upload(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, size: int
) -> None:
    """The other writer lands its object while our parts are in flight. If-None-Match on the
    publishing request covers stores that honour it; a HEAD just before publishing covers the
    ones that ignore it. Either way the key keeps their bytes and no upload stays open."""
    remote = openssh_sftp.write_file("in/data.bin", size=size, seed=4)
    bus = EventBus()

    def other_writer(event: EngineEvent) -> None:
        uploading = isinstance(event, PartChanged) and event.state is PartState.UPLOADING
        if uploading and not s3.list_objects_v2(Bucket=bucket).get("KeyCount"):
            s3.put_object(Bucket=bucket, Key="data.bin", Body=b"the other writer's")

    bus.subscribe(other_writer)
    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, conflict=ConflictPolicy.SKIP_EXISTING),
        bus=bus,
    )

    assert result.status is TransferState.SKIPPED, result.message
    assert result.message == "the key already exists"
    assert object_bytes(s3, bucket, "data.bin") == b"the other writer's"
    assert open_uploads(s3, bucket) == []
