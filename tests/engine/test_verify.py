"""Another writer shares the bucket: a failed check never deletes their object, and under
skip-existing their object is never overwritten, even when it appears mid-upload."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import VerificationFailed
from sftp_s3_tui.engine.events import EngineEvent, EventBus, PartChanged, PartState, TransferState
from sftp_s3_tui.engine.s3 import operations as s3_requests
from sftp_s3_tui.engine.s3.operations import open_client
from sftp_s3_tui.engine.transfer.verify import Published, reject
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, object_bytes, open_uploads

PART = 5 * MiB


@pytest.mark.all_stores
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


@pytest.mark.all_stores
async def test_a_failed_check_removes_our_own_object(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    ours = s3.put_object(Bucket=bucket, Key="k", Body=b"ours")

    async with open_client(s3_endpoint) as client:
        with pytest.raises(VerificationFailed) as failed:
            await reject(client, bucket, "k", "size 4 ≠ 5", Published(ours["ETag"]))

    assert "removed" in failed.value.hint
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


@pytest.mark.all_stores
async def test_the_null_version_id_is_no_proof_that_the_object_is_ours(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """An unversioned (or versioning-suspended) bucket names every new object "null": moto
    answers Complete so. ``DELETE ?versionId=null`` would remove whoever's object is current."""
    ours = s3.put_object(Bucket=bucket, Key="k", Body=b"ours")
    s3.put_object(Bucket=bucket, Key="k", Body=b"theirs, written after ours")

    async with open_client(s3_endpoint) as client:
        with pytest.raises(VerificationFailed) as failed:
            await reject(client, bucket, "k", "size 4 ≠ 26", Published(ours["ETag"], "null"))

    assert "left in place" in failed.value.hint
    assert object_bytes(s3, bucket, "k") == b"theirs, written after ours"


def others_put_right_after_our_complete(
    monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str, key: str, body: bytes
) -> list[dict[str, Any]]:
    """Another writer's PutObject lands right after our CompleteMultipartUpload took effect,
    before our HEAD (the real requests, to the real store, in that order). Their answers."""
    complete: Callable[..., Awaitable[dict[str, Any]]] = s3_requests.complete_upload
    theirs: list[dict[str, Any]] = []

    async def then_theirs(*args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = await complete(*args, **kwargs)
        if not theirs:
            theirs.append(await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=body))
        return answer

    monkeypatch.setattr(s3_requests, "complete_upload", then_theirs)
    return theirs


@pytest.mark.all_stores
@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
async def test_an_object_put_over_ours_while_our_upload_completes_is_never_deleted(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    versioned: bool,
) -> None:
    """Their object stays, byte for byte, as the key's current object; our transfer fails
    with one line and leaves no upload. In a versioned bucket our own version (a real id)
    is removed; elsewhere nothing is deleted."""
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    remote = openssh_sftp.write_file("in/data.bin", size=2 * PART + 3, seed=5)
    theirs = b"the other writer's data.bin\n" * 100
    put = others_put_right_after_our_complete(monkeypatch, s3, bucket, "data.bin", theirs)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART),
    )

    assert put, "the other writer's object landed between our Complete and our HEAD"
    assert result.status is TransferState.FAILED
    assert f"s3://{bucket}/data.bin now holds someone else's object" in result.message
    assert "\n" not in result.message
    assert object_bytes(s3, bucket, "data.bin") == theirs
    assert open_uploads(s3, bucket) == []
    if versioned:
        versions = s3.list_object_versions(Bucket=bucket, Prefix="data.bin").get("Versions", [])
        assert [v["VersionId"] for v in versions] == [put[0]["VersionId"]], "ours was removed"


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
