"""A bucket in another region than the endpoint rules assumed: the CRT data plane hands the
request to botocore (which follows S3's redirect), and keeps that bucket on botocore."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.s3 import crt_data_plane, operations
from sftp_s3_tui.engine.s3.operations import open_client
from tests.reliability.s3faults import FaultyS3Server


@pytest.mark.parametrize("code", ["AuthorizationHeaderMalformed", "PermanentRedirect"])
async def test_a_region_error_from_the_crt_goes_to_botocore(
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
) -> None:
    monkeypatch.setenv(crt_data_plane.ENV, "put")
    status = 400 if code == "AuthorizationHeaderMalformed" else 301
    rule = s3_faults.fail("PutObject", status, code=code, times=1)
    async with open_client(faulty_endpoint) as client:
        await operations.put_object(client, bucket, "k", bytearray(b"region"))
        plane = operations._plane(client)
        assert plane is not None and plane._crt is not None  # the CRT tried first
        assert plane._routes[bucket] is None  # and the bucket stays with botocore
        await operations.put_object(client, bucket, "k2", bytearray(b"again"))
    assert rule.fired == 1
    assert s3_faults.requests.count("PutObject") == 3
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"region"
