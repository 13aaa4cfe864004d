"""The misbehaving stores the checksum strategy is tested against behave as they claim.

These drive the stores with boto3 directly; the engine's behaviour against them belongs to
the checksum-strategy tests.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from awscrt import checksums
from botocore.exceptions import ClientError, FlexibleChecksumError

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.support.servers import S3Store

from .s3faults import FaultyS3Server

DATA = b"partner export 2026-12\n" * 50_000  # ~1.1 MiB
PART = 5 * 1024 * 1024


def crc64nvme_b64(data: bytes) -> str:
    return base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()


def faulty_client(faulty: FaultyS3Server, moto: EmbeddedS3Server) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = faulty.endpoint(moto)
    return boto3.client(
        "s3",
        endpoint_url=faulty.endpoint_url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def full_object_upload(client: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    """A two-part FULL_OBJECT CRC64NVME multipart upload, as the engine does it."""
    parts = [body[:PART], body[PART:]]
    upload = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT"
    )
    done = []
    for number, part in enumerate(parts, start=1):
        answer = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=part,
            ChecksumCRC64NVME=crc64nvme_b64(part),
        )
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    completed: dict[str, Any] = client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": done},
        ChecksumCRC64NVME=crc64nvme_b64(body),
        ChecksumType="FULL_OBJECT",
    )
    return completed


@pytest.mark.parametrize(
    ("status", "code"), [(400, "InvalidArgument"), (501, "NotImplemented")], ids=["400", "501"]
)
def test_a_store_refusing_the_checksum_header_answers_at_the_first_request(
    s3_faults: FaultyS3Server,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    status: int,
    code: str,
) -> None:
    mode = s3_faults.checksums("refuse", algorithms=["crc64nvme"], status=status)
    client = faulty_client(s3_faults, moto_server)

    with pytest.raises(ClientError) as refused:
        client.put_object(
            Bucket=bucket, Key="a.csv", Body=DATA, ChecksumCRC64NVME=crc64nvme_b64(DATA)
        )
    with pytest.raises(ClientError) as refused_upload:
        client.create_multipart_upload(Bucket=bucket, Key="b.csv", ChecksumAlgorithm="CRC64NVME")

    for error in (refused.value, refused_upload.value):
        assert error.response["Error"]["Code"] == code
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert mode is not None and mode.hits == 2
    client.put_object(Bucket=bucket, Key="a.csv", Body=DATA, ChecksumAlgorithm="CRC32")
    assert s3.get_object(Bucket=bucket, Key="a.csv")["Body"].read() == DATA
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_store_ignoring_checksums_echoes_nothing_and_heads_nothing(
    s3_faults: FaultyS3Server, moto_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3_faults.checksums("ignore")
    client = faulty_client(s3_faults, moto_server)
    body = DATA * 5  # two parts

    put = client.put_object(Bucket=bucket, Key="small.csv", Body=DATA, ChecksumAlgorithm="CRC32")
    completed = full_object_upload(client, bucket, "big.csv", body)
    heads = [
        client.head_object(Bucket=bucket, Key=k, ChecksumMode="ENABLED")
        for k in ("small.csv", "big.csv")
    ]

    for answer in (put, completed, *heads):
        assert not [k for k in answer if k.startswith("Checksum")], answer
        assert not [
            h for h in answer["ResponseMetadata"]["HTTPHeaders"] if h.startswith("x-amz-checksum")
        ]
    assert s3.get_object(Bucket=bucket, Key="big.csv")["Body"].read() == body


def test_a_store_disagreeing_on_checksums_keeps_the_bytes_but_not_our_values(
    s3_faults: FaultyS3Server, moto_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3_faults.checksums("disagree", algorithms=["crc64nvme"])
    client = faulty_client(s3_faults, moto_server)
    body = DATA * 5

    full_object_upload(client, bucket, "big.csv", body)  # moto echoes no checksum on Complete
    head = client.head_object(Bucket=bucket, Key="big.csv", ChecksumMode="ENABLED")

    ours = crc64nvme_b64(body)
    assert head["ChecksumCRC64NVME"] != ours and len(head["ChecksumCRC64NVME"]) == len(ours)
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert (
        s3.head_object(Bucket=bucket, Key="big.csv", ChecksumMode="ENABLED")["ChecksumCRC64NVME"]
        == ours
    ), "moto itself stored the right value"
    assert s3.get_object(Bucket=bucket, Key="big.csv")["Body"].read() == body


@pytest.mark.parametrize("s3_store", ["moto_without_awscrt"], indirect=True)
def test_moto_without_awscrt_answers_crc64nvme_with_a_crc32(
    s3_store: S3Store, s3: Any, bucket: str
) -> None:
    import zlib

    body = DATA * 5
    full_object_upload(s3, bucket, "big.csv", body)

    head = s3.head_object(Bucket=bucket, Key="big.csv", ChecksumMode="ENABLED")

    crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC64NVME"] == crc32 != crc64nvme_b64(body)
    with pytest.raises(FlexibleChecksumError):  # what a validating GET then says
        s3.get_object(Bucket=bucket, Key="big.csv")["Body"].read()
