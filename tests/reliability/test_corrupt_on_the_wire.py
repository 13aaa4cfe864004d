"""A byte flipped between the engine and a store that checks: refused, sent again, lands right.

The fault proxy flips one byte in one request body on its way to SeaweedFS (which validates
Content-MD5 and x-amz-checksum-*); moto would store the corrupt bytes, so these run on
SeaweedFS only.
"""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import TransferOptions
from sftp_s3_tui.engine.events import TransferState
from tests.engine.helpers import MiB, copy
from tests.servers import S3Store, SftpServerInfo

from .conftest import assert_object
from .proxy import FaultProxy

OPTIONS = TransferOptions(part_size=5 * MiB, parts_in_flight=2, attempts=3, backoff_seconds=0.05)
SEAWEEDFS_ONLY = pytest.mark.parametrize("s3_store", ["seaweedfs"], indirect=True)


@SEAWEEDFS_ONLY
@pytest.mark.parametrize(
    ("size", "request_line"),
    [(11 * MiB + 5, "partNumber=2"), (300_000, "/in-flight.bin")],
    ids=["a-part", "a-small-put"],
)
async def test_a_flipped_byte_is_refused_then_resent_and_the_object_is_right(
    embedded_sftp: SftpServerInfo,
    s3_store: S3Store,
    s3: Any,
    bucket: str,
    size: int,
    request_line: str,
) -> None:
    remote = embedded_sftp.write_file("in/in-flight.bin", size=size, seed=14)
    with FaultProxy(s3_store.host, s3_store.port) as proxy:
        proxy.flip_byte(nth=1, match=request_line)
        [result] = await copy(
            embedded_sftp.endpoint(),
            [remote.remote_path],
            f"s3://{bucket}/",
            s3_store.endpoint(endpoint_url=proxy.url),
            options=OPTIONS,
        )
        flips = proxy.flips

    assert flips == 1, "the corrupt body did go out"
    assert result.status is TransferState.DONE, result.message
    assert result.verified_by != "size-only"
    assert_object(s3, bucket, "in-flight.bin", remote.read_bytes())
    assert s3_store.open_uploads() == []
