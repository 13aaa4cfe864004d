"""A user picks a checksum (or leaves ``auto``) and learns what each object was verified by."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from sftp_s3_tui.engine.config import ChecksumChoice, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import (
    EngineEvent,
    EventBus,
    StoreChecked,
    TransferNotice,
    TransferState,
)
from sftp_s3_tui.engine.s3.checksums import (
    SESSION_PROBES,
    probe,
)
from sftp_s3_tui.engine.s3.operations import open_client
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, object_bytes, open_uploads, stored_sha256

PART = 5 * MiB
# moto computes a multipart object's CRC32C with the optional `crc32c` package, else (as here)
# with CRC32: a store that answers wrong values, for real.
MOTO_CRC32C_IS_CRC32 = importlib.util.find_spec("crc32c") is None


def _recording() -> tuple[EventBus, list[EngineEvent]]:
    bus, seen = EventBus(), list[EngineEvent]()
    bus.subscribe(seen.append)
    return bus, seen


@pytest.mark.parametrize(
    "choice",
    [c for c in ChecksumChoice if not (MOTO_CRC32C_IS_CRC32 and c is ChecksumChoice.CRC32C)],
)
async def test_every_checksum_choice_lands_and_says_what_it_verified(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    choice: ChecksumChoice,
) -> None:
    """moto keeps whatever checksum it is sent without checking it (the probe finds that out),
    so the honest claim on moto is the ETag against the MD5 computed here — or the size alone
    with ``none``, which also says so in a notice."""
    small = openssh_sftp.write_file("in/small.csv", size=70_000, seed=1)
    big = openssh_sftp.write_file("in/big.bin", size=2 * PART + 7, seed=2)
    bus, seen = _recording()

    results = await copy(
        openssh_sftp.endpoint(),
        [small.remote_path, big.remote_path],
        f"s3://{bucket}/{choice}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, checksum=choice),
        bus=bus,
    )

    for result, remote in zip(results, (small, big), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert object_bytes(s3, bucket, result.key) == remote.read_bytes()
        assert result.sha256 == remote.sha256 == stored_sha256(s3, bucket, result.key)
        expected = "size-only" if choice is ChecksumChoice.NONE else "md5-etag"
        assert result.verified_by == expected
        assert result.as_json()["verified_by"] == expected
    notices = [e.message for e in seen if isinstance(e, TransferNotice)]
    if choice is ChecksumChoice.NONE:
        assert any("--checksum none" in n and "size only" in n for n in notices)
    assert open_uploads(s3, bucket) == []


async def test_the_store_is_checked_once_and_the_record_is_reused(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    files = [openssh_sftp.write_file(f"in/f{n}.bin", size=PART + n, seed=n) for n in range(4)]
    bus, seen = _recording()
    options = TransferOptions(part_size=PART)

    for _ in range(2):  # two queues of one session (the TUI runs one per copy)
        results = await copy(
            openssh_sftp.endpoint(),
            [f.remote_path for f in files],
            f"s3://{bucket}/",
            s3_endpoint,
            options=options,
            bus=bus,
        )
        assert {r.status for r in results} == {TransferState.DONE}

    checked = [e for e in seen if isinstance(e, StoreChecked)]
    assert len(checked) == 1
    record = checked[0].capabilities
    assert record in SESSION_PROBES.known()
    assert record.bucket == bucket and record.algorithm is ChecksumChoice.CRC64NVME
    assert record.endpoint == s3_endpoint.display
    # what moto does: keeps and echoes a checksum without checking it, checks no MD5 either
    assert (record.checksum_checked, record.md5_checked, record.etag_is_md5) == (
        False,
        False,
        True,
    )
    assert "CRC64NVME not checked" in record.summary()
    assert open_uploads(s3, bucket) == []


async def test_the_probe_publishes_nothing_and_leaves_no_upload(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    async with open_client(s3_endpoint) as client:
        for choice in ChecksumChoice:
            record = await probe(client, s3_endpoint.display, bucket, "landing/x.bin", choice)
            assert record.algorithm is (
                ChecksumChoice.CRC64NVME if choice is ChecksumChoice.AUTO else choice
            )

    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert open_uploads(s3, bucket) == []


async def test_sha256_metadata_records_the_stream_hash_on_the_object(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/big.bin", size=2 * PART + 3, seed=9)

    [result] = await copy(
        openssh_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, sha256_metadata=True),
    )

    assert result.status is TransferState.DONE, result.message
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["Metadata"]["sha256"] == remote.sha256 == result.sha256
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()
    assert result.verified_by == "md5-etag"
    assert open_uploads(s3, bucket) == []


@pytest.mark.skipif(not MOTO_CRC32C_IS_CRC32, reason="this moto computes CRC32C right")
async def test_a_store_that_computes_crc32c_wrongly_is_named_with_the_flag_that_works(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """Asked for CRC32C, moto stores the parts' CRC32 as the object's CRC32C. The bytes are
    right (the ETag says so), but a reader checking that CRC32C would refuse the object, so it
    is not left behind, and the one line says what the store does and which flag works."""
    small = openssh_sftp.write_file("in/small.csv", size=70_000, seed=1)
    big = openssh_sftp.write_file("in/big.bin", size=2 * PART + 7, seed=2)

    small_result, big_result = await copy(
        openssh_sftp.endpoint(),
        [small.remote_path, big.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=TransferOptions(part_size=PART, checksum=ChecksumChoice.CRC32C),
    )

    assert small_result.status is TransferState.DONE, small_result.message
    assert small_result.verified_by == "md5-etag"
    assert big_result.status is TransferState.FAILED
    assert "computes CRC32C differently" in big_result.message
    assert "--checksum md5 (or auto)" in big_result.message
    assert "\n" not in big_result.message
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["small.csv"]
    assert open_uploads(s3, bucket) == []
