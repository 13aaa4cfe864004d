"""PutObject, UploadPart and small GetObjects through awscrt's S3 client
(``crt_data_plane``), on real stores: what lands or is read, what the store checks, and the
errors the engine reads, as on the botocore path."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.errors import S3Error, SourceChanged
from sftp_s3_tui.engine.s3 import crt_data_plane, operations
from sftp_s3_tui.engine.s3.checksums import ChecksumChoice, part_sums, request_fields
from sftp_s3_tui.engine.s3.operations import PreconditionFailed, open_client
from sftp_s3_tui.engine.s3.reader import listed_info, object_info, open_object
from tests.support.servers import S3Store
from tests.support.transfers import MiB


@pytest.fixture(autouse=True)
def _crt_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crt_data_plane.ENV, "all")


def _plane(client: Any) -> crt_data_plane.CrtDataPlane:
    plane = operations._plane(client)
    assert plane is not None
    return plane


def test_the_mode_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (
        ("0", set()),
        ("off", set()),
        ("put", {"PutObject"}),
        ("single", {"PutObject", "GetObject"}),
        ("", {"PutObject", "GetObject"}),  # the default: the objects of one request
        ("1", {"PutObject", "UploadPart", "GetObject"}),
        ("all", {"PutObject", "UploadPart", "GetObject"}),
    ):
        monkeypatch.setenv(crt_data_plane.ENV, value)
        assert crt_data_plane.selected() == expected, value


@pytest.mark.all_stores
async def test_a_put_and_a_part_go_through_the_crt_with_their_checksums(
    s3_store: S3Store, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    body = bytearray(os.urandom(70_000))
    part = bytearray(os.urandom(5 * MiB))
    algorithm = ChecksumChoice.CRC64NVME
    async with open_client(s3_endpoint) as client:
        sums = part_sums(
            algorithm, memoryview(body), md5=True, payload_sha256=operations.signs_payload(client)
        )
        answer = await operations.put_object(
            client,
            bucket,
            "dir/a b+c.bin",
            body,
            payload_sha256=sums.payload_sha256,
            Metadata={"sha256": hashlib.sha256(body).hexdigest()},
            IfNoneMatch="*",
            **request_fields(algorithm, sums),
        )
        assert _plane(client)._crt is not None  # the CRT sent it, not botocore
        assert answer["ETag"].strip('"') == hashlib.md5(body).hexdigest()
        upload_id = await operations.create_upload(client, bucket, "big.bin")
        psums = part_sums(
            algorithm, memoryview(part), md5=True, payload_sha256=operations.signs_payload(client)
        )
        uploaded = await operations.upload_part(
            client,
            bucket,
            "big.bin",
            upload_id,
            1,
            part,
            payload_sha256=psums.payload_sha256,
            **request_fields(algorithm, psums),
        )
        assert uploaded["ETag"].strip('"') == hashlib.md5(part).hexdigest()
        await operations.complete_upload(
            client, bucket, "big.bin", upload_id, [{"PartNumber": 1, "ETag": uploaded["ETag"]}]
        )
    stored = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert stored["Body"].read() == bytes(body)
    assert stored["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == bytes(part)


@pytest.mark.all_stores
async def test_an_existing_key_under_if_none_match_is_a_precondition_failure(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    body = bytearray(b"x" * 1000)
    async with open_client(s3_endpoint) as client:
        await operations.put_object(client, bucket, "k", body, IfNoneMatch="*")
        with pytest.raises(PreconditionFailed):
            await operations.put_object(client, bucket, "k", body, IfNoneMatch="*")
        assert _plane(client)._crt is not None


@pytest.mark.parametrize("s3_store", ["seaweedfs"], indirect=True)
async def test_a_wrong_content_md5_is_refused_and_retryable(
    s3_store: S3Store, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """SeaweedFS checks Content-MD5 as AWS does: bytes other than the ones hashed never land."""
    body = bytearray(os.urandom(4096))
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    async with open_client(s3_endpoint) as client:
        with pytest.raises(S3Error) as refused:
            await operations.put_object(client, bucket, "k", body, ContentMD5=wrong)
        assert _plane(client)._crt is not None
    assert refused.value.retryable
    assert "BadDigest" in str(refused.value) or "InvalidDigest" in str(refused.value)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.all_stores
async def test_a_cancelled_put_lets_go_of_the_buffer_and_the_client_goes_on(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    body = bytearray(os.urandom(16 * MiB))
    async with open_client(s3_endpoint) as client:
        task = asyncio.ensure_future(operations.put_object(client, bucket, "cancelled", body))
        while _plane(client)._crt is None and not task.done():
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        body[:] = b"\0" * len(body)  # the pool would reuse it now: the CRT no longer reads it
        await operations.put_object(client, bucket, "after", bytearray(b"ok"))
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"ok"


async def test_an_unreachable_endpoint_is_the_botocore_path_s_message(bucket: str) -> None:
    endpoint = S3Endpoint(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
        region="us-east-1",
        path_style=True,
        max_attempts=1,
    )
    async with open_client(endpoint) as client:
        with pytest.raises(S3Error) as failed:
            await operations.put_object(client, bucket, "k", bytearray(b"x"))
    assert "cannot reach the S3 endpoint" in str(failed.value)


async def test_behind_an_http_proxy_every_request_stays_on_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore honours HTTPS_PROXY; the CRT's S3 client here takes no proxy."""
    endpoint = S3Endpoint(
        endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    async with open_client(endpoint) as client:
        assert operations._plane(client) is None
    monkeypatch.delenv("HTTPS_PROXY")
    async with open_client(endpoint) as client:
        assert operations._plane(client) is not None


@pytest.mark.all_stores
async def test_a_small_object_is_read_by_the_crt_into_its_buffer_and_described(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = os.urandom(70_001)
    s3.put_object(Bucket=bucket, Key="in/a b+c.csv", Body=data, ChecksumAlgorithm="CRC64NVME")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="in/")["Contents"][0]
    info = listed_info(
        bucket, listed["Key"], listed["ETag"], listed["Size"], listed["LastModified"].timestamp()
    )
    buffer = bytearray(len(data))
    async with (
        open_client(s3_endpoint) as client,
        open_object(client, info, one_buffer=True) as body,
    ):
        await body.fill(memoryview(buffer))
        assert _plane(client)._crt is not None  # the CRT fetched it, not botocore
    assert bytes(buffer) == data
    head = s3.head_object(Bucket=bucket, Key="in/a b+c.csv", ChecksumMode="ENABLED")
    assert body.described == object_info(bucket, "in/a b+c.csv", head)
    assert body.described is not None and body.described.crc64nvme  # the GET answered it


@pytest.mark.all_stores
async def test_a_small_object_replaced_since_its_listing_is_a_source_change(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"first\n")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"second\n")
    info = listed_info(bucket, "feed.csv", listed["ETag"], 6, 0.0)
    async with (
        open_client(s3_endpoint) as client,
        open_object(client, info, one_buffer=True) as body,
    ):
        with pytest.raises(SourceChanged):
            await body.fill(memoryview(bytearray(6)))
        assert _plane(client)._crt is not None


async def test_a_version_is_read_as_asked(s3_endpoint: S3Endpoint, s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="v.csv", Body=b"one\n")
    s3.put_object(Bucket=bucket, Key="v.csv", Body=b"two\n")
    info = dataclasses.replace(
        listed_info(bucket, "v.csv", first["ETag"], 4, 0.0), version_id=first["VersionId"]
    )
    buffer = bytearray(4)
    async with (
        open_client(s3_endpoint) as client,
        open_object(client, info, one_buffer=True) as body,
    ):
        await body.fill(memoryview(buffer))
    assert bytes(buffer) == b"one\n"
    assert body.described is not None and body.described.version_id == first["VersionId"]
