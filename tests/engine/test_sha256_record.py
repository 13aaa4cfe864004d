"""The sha256 recorded after a multipart upload lands on our object, never on another writer's.

A multipart object's sha256 is recorded after Complete and the check: as a tag (the default)
or, with ``sha256_metadata``, by copying the object onto itself with new metadata. If someone
puts an object at the key in between, their object must not get our sha256: a later run's
compare policy would skip the file on their object ("already has the same size and sha256"),
and a copy of their object carrying our sha256 passes the copy's check when it has our size,
so the file would be reported done and its source deleted. The other writer's object stays as
they wrote it; our transfer fails with one line (so no source action runs) or, where a real
version id names our object, our version is the one tagged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sftp_s3_tui.engine.config import ChecksumChoice, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.s3 import operations as s3_requests
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, object_bytes, open_uploads

PART = 5 * MiB
SIZE = 2 * PART + 3


def tags_of(s3: Any, bucket: str, key: str, **version: str) -> dict[str, str]:
    tags = s3.get_object_tagging(Bucket=bucket, Key=key, **version)["TagSet"]
    return {t["Key"]: t["Value"] for t in tags}


def object_bytes_of_version(s3: Any, bucket: str, key: str, version: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()


def others_put_right_before(
    monkeypatch: pytest.MonkeyPatch, name: str, s3: Any, bucket: str, key: str, body: bytes
) -> list[dict[str, Any]]:
    """Another writer's PutObject lands right before our request ``name`` (an
    ``operations`` function) reaches the store: the real requests, in that order. Their
    answers."""
    ours: Callable[..., Awaitable[Any]] = getattr(s3_requests, name)
    theirs: list[dict[str, Any]] = []

    async def theirs_first(*args: Any, **kwargs: Any) -> Any:
        if not theirs:
            theirs.append(await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=body))
        return await ours(*args, **kwargs)

    monkeypatch.setattr(s3_requests, name, theirs_first)
    return theirs


@pytest.mark.all_stores
async def test_the_sha256_tag_never_lands_on_an_object_put_over_ours(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unversioned bucket (no version id names our object): their object keeps no sha256 of
    ours, and our transfer fails with one line."""
    remote = openssh_sftp.write_file("in/data.bin", size=SIZE, seed=31)
    theirs = b"the other writer's data.bin\n" * 100
    put = others_put_right_before(monkeypatch, "put_tag", s3, bucket, "data.bin", theirs)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART),
    )

    assert put, "the other writer's object landed between our check and our tag"
    assert result.status is TransferState.FAILED, result.message
    assert f"s3://{bucket}/data.bin now holds someone else's object" in result.message
    assert "\n" not in result.message
    assert "left in place" in result.message
    assert object_bytes(s3, bucket, "data.bin") == theirs
    assert "sha256" not in tags_of(s3, bucket, "data.bin"), "our sha256 is not on their object"
    assert open_uploads(s3, bucket) == []


@pytest.mark.all_stores
async def test_in_a_versioned_bucket_the_sha256_tag_names_our_version(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real version id names our object: the tag goes on our version whatever is current,
    and their object (the current version) carries none of ours."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    remote = openssh_sftp.write_file("in/data.bin", size=SIZE, seed=32)
    theirs = b"the other writer's data.bin\n" * 100
    put = others_put_right_before(monkeypatch, "put_tag", s3, bucket, "data.bin", theirs)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART),
    )

    assert put, "the other writer's object landed between our check and our tag"
    assert result.status is TransferState.DONE, result.message
    assert object_bytes(s3, bucket, "data.bin") == theirs
    assert "sha256" not in tags_of(s3, bucket, "data.bin"), "our sha256 is not on their object"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="data.bin")["Versions"]
    [ours] = [v["VersionId"] for v in versions if v["VersionId"] != put[0]["VersionId"]]
    assert tags_of(s3, bucket, "data.bin", VersionId=ours) == {"sha256": remote.sha256}
    assert object_bytes_of_version(s3, bucket, "data.bin", ours) == remote.read_bytes()


# moto 5.2 ignores CopySourceIfMatch (it checks only copy-source-if-none-match), so there the
# copy of an object put over ours cannot be refused; AWS and SeaweedFS refuse it (412).
@pytest.mark.parametrize("s3_store", ["seaweedfs"], indirect=True)
async def test_sha256_metadata_is_never_copied_onto_an_object_put_over_ours(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Their object has our size and the upload used CRC32 (so the copy's check compares size
    and the sha256 in the metadata only): the copy is refused, their object keeps its own
    metadata, and our transfer fails with one line."""
    remote = openssh_sftp.write_file("in/data.bin", size=SIZE, seed=33)
    theirs = bytes(reversed(remote.read_bytes()))  # other bytes, the same size
    put = others_put_right_before(
        monkeypatch, "copy_object_onto_itself", s3, bucket, "data.bin", theirs
    )

    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(
            part_size=PART, sha256_metadata=True, checksum=ChecksumChoice.CRC32
        ),
    )

    assert put, "the other writer's object landed between our check and our copy"
    assert result.status is TransferState.FAILED, result.message
    assert f"s3://{bucket}/data.bin now holds someone else's object" in result.message
    assert "\n" not in result.message and "left in place" in result.message
    assert object_bytes(s3, bucket, "data.bin") == theirs
    head = s3.head_object(Bucket=bucket, Key="data.bin")
    assert "sha256" not in head.get("Metadata", {}), "our sha256 is not on their object"
    assert open_uploads(s3, bucket) == []
