"""Stores that refuse, ignore or misreport ``x-amz-checksum-*``: ``auto`` finds out before the
first part and the files land verified by what is left; an explicit choice fails in one line."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import ChecksumChoice, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    StoreChecked,
    TransferState,
)
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_nothing_written, assert_object
from .s3faults import FaultyS3Server

PART = 5 * MiB
STORES = [
    pytest.param("refuse", 400, "refused", id="refuses-400"),
    pytest.param("refuse", 501, "refused", id="refuses-501"),
    pytest.param("ignore", 400, "ignores it", id="ignores"),
    pytest.param("disagree", 400, "disagrees", id="disagrees"),
]


@pytest.mark.parametrize(("behaviour", "status", "finding"), STORES)
async def test_auto_learns_the_store_before_the_first_part_and_lands_by_md5(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    behaviour: Any,
    status: int,
    finding: str,
) -> None:
    s3_faults.checksums(behaviour, status=status)
    small = openssh_sftp.write_file("in/small.csv", size=70_000, seed=1)
    big = openssh_sftp.write_file("in/big.bin", size=3 * PART + 9, seed=2)
    bus, seen = EventBus(), list[EngineEvent]()
    bus.subscribe(seen.append)

    results = await copy(
        openssh_sftp.endpoint(),
        [small.remote_path, big.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=TransferOptions(part_size=PART, files_in_flight=1),
        bus=bus,
    )

    [checked] = [e for e in seen if isinstance(e, StoreChecked)]
    parts = [e for e in seen if isinstance(e, PartChanged)]
    assert seen.index(checked) < seen.index(parts[0]), "the store is known before any part"
    record = checked.capabilities
    assert record.algorithm is ChecksumChoice.MD5
    assert len(record.findings) == 4
    assert all(finding in line for line in record.findings[:3])
    assert not [e for e in parts if e.state in (PartState.RETRIED, PartState.FAILED)]
    for result, remote in zip(results, (small, big), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert result.verified_by == "md5-etag"
        assert_object(s3, bucket, result.key, remote.read_bytes())
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []


@pytest.mark.parametrize(("behaviour", "status", "finding"), STORES)
async def test_an_explicit_checksum_the_store_cannot_take_fails_in_one_line(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    behaviour: Any,
    status: int,
    finding: str,
) -> None:
    s3_faults.checksums(behaviour, status=status)
    big = openssh_sftp.write_file("in/big.bin", size=2 * PART + 9, seed=3)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [big.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=TransferOptions(part_size=PART, checksum=ChecksumChoice.CRC64NVME),
    )

    assert result.status is TransferState.FAILED
    assert "cannot take CRC64NVME checksums" in result.message and finding in result.message
    assert "--checksum auto" in result.message and "\n" not in result.message
    assert_nothing_written(s3, bucket)
