"""The same copy against each real store: what lands, and what each object was verified by."""

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
    TransferNotice,
    TransferState,
)
from sftp_s3_tui.engine.s3.checksums import SESSION_PROBES
from sftp_s3_tui.engine.s3.operations import open_client
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import S3Store, SftpServerInfo
from tests.support.transfers import MiB, copy, object_bytes, stored_sha256

PART = 5 * MiB


def _recording() -> tuple[EventBus, list[EngineEvent]]:
    bus, seen = EventBus(), list[EngineEvent]()
    bus.subscribe(seen.append)
    return bus, seen


@pytest.mark.all_stores
async def test_files_land_verified_by_the_strongest_check_the_store_makes(
    openssh_sftp: SftpServerInfo, s3_store: S3Store, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """SeaweedFS refuses a wrong CRC64NVME, so its stored value proves the bytes; moto keeps
    whatever it is sent, so there the ETag (the MD5 of what it stored) is the proof."""
    small = openssh_sftp.write_file("in/small.csv", size=70_000, seed=1)
    big = openssh_sftp.write_file("in/big.bin", size=3 * PART + 11, seed=2)
    bus, seen = _recording()

    results = await copy(
        openssh_sftp.endpoint(),
        [small.remote_path, big.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART),
        bus=bus,
    )

    [checked] = [e.capabilities for e in seen if isinstance(e, StoreChecked)]
    assert checked.algorithm is ChecksumChoice.CRC64NVME
    assert checked.checksum_checked is s3_store.validates_checksums
    assert checked.md5_checked is s3_store.validates_checksums
    expected = "crc64nvme-full-object" if s3_store.validates_checksums else "md5-etag"
    for result, remote in zip(results, (small, big), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert result.verified_by == expected
        assert object_bytes(s3, bucket, result.key) == remote.read_bytes()
        assert result.sha256 == remote.sha256 == stored_sha256(s3, bucket, result.key)
    assert s3_store.open_uploads() == []


@pytest.mark.all_stores
async def test_a_byte_flipped_on_the_wire_is_refused_retried_and_lands_correct(
    openssh_sftp: SftpServerInfo, s3_store: S3Store, s3: Any, bucket: str
) -> None:
    """SeaweedFS refuses the corrupt part (BadDigest); moto stores it, and its ETag — the MD5
    of what it got — differs from ours. Either way the part is sent again and the object is
    right."""
    remote = openssh_sftp.write_file("in/big.bin", size=3 * PART + 5, seed=3)
    with FaultProxy(s3_store.host, s3_store.port) as proxy:
        endpoint = s3_store.endpoint(endpoint_url=proxy.url)
        async with open_client(endpoint) as client:  # the session's store check, done
            await SESSION_PROBES.capabilities(
                client, endpoint.display, bucket, "probe", ChecksumChoice.AUTO
            )
        proxy.flip_byte(nth=1, match="partNumber=2")
        bus, seen = _recording()

        [result] = await copy(
            openssh_sftp.endpoint(),
            [remote.remote_path],
            f"s3://{bucket}/",
            endpoint,
            options=TransferOptions(part_size=PART, backoff_seconds=0.05),
            bus=bus,
        )
        flips = proxy.flips

    assert flips == 1
    retried = [e for e in seen if isinstance(e, PartChanged) and e.state is PartState.RETRIED]
    assert [(e.part_number, e.side) for e in retried] == [(2, "s3")]
    assert result.status is TransferState.DONE, result.message
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()
    assert result.sha256 == remote.sha256
    assert s3_store.open_uploads() == []


@pytest.mark.parametrize("s3_store", ["moto_without_awscrt"], indirect=True)
async def test_a_store_answering_wrong_crc64nvme_costs_auto_one_file_sent_again(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """moto without awscrt echoes a part's CRC64NVME but gives the completed object a CRC32
    under that name; nothing short of completing an object shows it. ``auto`` then sends that
    one file again with MD5 alone, and every later file goes with MD5 from the start."""
    first = openssh_sftp.write_file("in/a.bin", size=3 * PART + 1, seed=4)
    second = openssh_sftp.write_file("in/b.bin", size=2 * PART + 1, seed=5)
    bus, seen = _recording()

    results = await copy(
        openssh_sftp.endpoint(),
        [first.remote_path, second.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, files_in_flight=1),
        bus=bus,
    )

    notices = [e.message for e in seen if isinstance(e, TransferNotice)]
    again = [n for n in notices if "sending it again with md5" in n]
    assert len(again) == 1 and "computes CRC64NVME differently" in again[0]
    for result, remote in zip(results, (first, second), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert result.verified_by == "md5-etag"
        assert object_bytes(s3, bucket, result.key) == remote.read_bytes()
    [record] = [r for r in SESSION_PROBES.known() if r.bucket == bucket]
    assert record.algorithm is ChecksumChoice.MD5
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []


@pytest.mark.parametrize("s3_store", ["moto_without_awscrt"], indirect=True)
async def test_asking_for_crc64nvme_on_a_store_that_gets_it_wrong_fails_with_the_flag(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    big = openssh_sftp.write_file("in/big.bin", size=3 * PART + 1, seed=5)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [big.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, checksum=ChecksumChoice.CRC64NVME),
    )

    assert result.status is TransferState.FAILED
    assert "computes CRC64NVME differently" in result.message
    assert "--checksum md5 (or auto)" in result.message and "\n" not in result.message
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
