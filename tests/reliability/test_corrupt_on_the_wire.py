"""A byte flipped between the engine and a store that checks: refused, sent again, lands right.

The fault proxy flips one byte in a small file's PutObject body on its way to SeaweedFS (which
validates Content-MD5 and x-amz-checksum-*); moto would store the corrupt bytes, so this runs
on SeaweedFS only. A flipped *part* is covered on both stores by
``tests/engine/test_stores.py::test_a_byte_flipped_on_the_wire_is_refused_retried_and_lands_correct``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import TransferOptions
from sftp_s3_tui.engine.events import TransferState
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import S3Store, SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_object

OPTIONS = TransferOptions(part_size=5 * MiB, parts_in_flight=2, attempts=3, backoff_seconds=0.05)
SEAWEEDFS_ONLY = pytest.mark.parametrize("s3_store", ["seaweedfs"], indirect=True)


@SEAWEEDFS_ONLY
async def test_a_flipped_byte_in_a_small_put_is_refused_then_resent_and_the_object_is_right(
    embedded_sftp: SftpServerInfo, s3_store: S3Store, s3: Any, bucket: str
) -> None:
    remote = embedded_sftp.write_file("in/in-flight.bin", size=300_000, seed=14)
    with FaultProxy(s3_store.host, s3_store.port) as proxy:
        proxy.flip_byte(nth=1, match="PUT /" + bucket + "/in-flight.bin ")
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
