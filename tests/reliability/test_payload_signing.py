"""The signed body SHA-256 on plain-http stores: kept where the store checks it, dropped
(``UNSIGNED-PAYLOAD``) where the probe shows the store ignores it — moto and SeaweedFS do —
and every object still lands verified by its checksum, Content-MD5 or ETag."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EngineEvent, EventBus, StoreChecked, TransferState
from sftp_s3_tui.engine.s3.checksums import StoreCapabilities
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_object
from .s3faults import FaultyS3Server

PART = 5 * MiB
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


async def _copy_two(
    server: SftpServerInfo, endpoint: S3Endpoint, bucket: str, s3: Any
) -> StoreCapabilities:
    """A one-part file (PutObject) and a three-part one (UploadPart), landed exact."""
    small = server.write_file("in/small.csv", size=70_000, seed=5)
    big = server.write_file("in/big.bin", size=2 * PART + 11, seed=6)
    bus, seen = EventBus(), list[EngineEvent]()
    bus.subscribe(seen.append)

    results = await copy(
        server.endpoint(),
        [small.remote_path, big.remote_path],
        f"s3://{bucket}/",
        endpoint,
        options=TransferOptions(part_size=PART, files_in_flight=1),
        bus=bus,
    )

    for result, remote in zip(results, (small, big), strict=True):
        assert result.status is TransferState.DONE, result.message
        assert_object(s3, bucket, result.key, remote.read_bytes())
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
    [checked] = [e for e in seen if isinstance(e, StoreChecked)]
    return checked.capabilities


@pytest.mark.all_stores
async def test_a_store_ignoring_the_body_hash_gets_unsigned_payloads(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """moto and SeaweedFS take a part signed with a wrong body SHA-256: hashing each body
    for them protects nothing, so the probe says so and the copy stops paying for it."""
    record = await _copy_two(openssh_sftp, s3_endpoint, bucket, s3)

    assert record.payload_signed is False
    assert "payload SHA-256 not checked" in record.findings[0]
    assert "bodies go UNSIGNED-PAYLOAD" in record.summary()


async def test_what_each_put_signs_follows_the_probe(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """Read off the wire (the faulty store notes each PUT's ``x-amz-content-sha256``): the
    probe's one wrong hash and one UNSIGNED-PAYLOAD, then every data PUT unsigned."""
    record = await _copy_two(openssh_sftp, faulty_endpoint, bucket, s3)

    sent = [value for _, _, value in s3_faults.payload_sha256s]
    assert record.payload_signed is False
    assert sent.count("0" * 64) == 1  # the probe's wrong hash, stored by moto
    assert sent.count("UNSIGNED-PAYLOAD") == 1 + 4  # the probe's, then every data PUT
    assert _data_puts(s3_faults, bucket) == ["UNSIGNED-PAYLOAD"] * 4


@pytest.mark.parametrize("check", ["check", "strict"])
async def test_a_store_checking_the_body_hash_keeps_it_signed(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    check: Any,
) -> None:
    """A store that refuses a wrong body SHA-256 (as AWS does) keeps every body signed by its
    SHA-256; the probe's wrong hash was refused, so nothing of it was stored."""
    s3_faults.payload_hashes(check)

    record = await _copy_two(openssh_sftp, faulty_endpoint, bucket, s3)

    assert record.payload_signed is True
    assert "payload SHA-256 checked" in record.findings[0]
    assert "UNSIGNED-PAYLOAD" not in record.summary()
    data_puts = _data_puts(s3_faults, bucket)
    assert all(HEX_SHA256.fullmatch(v) for v in data_puts), data_puts
    assert "0" * 64 not in data_puts


def _data_puts(store: FaultyS3Server, bucket: str) -> list[str]:
    """The ``x-amz-content-sha256`` of the copied files' PutObject and three UploadParts
    (the last four PUTs at their keys: the probe's parts go to the first file's key)."""
    files = (f"/{bucket}/small.csv", f"/{bucket}/big.bin")
    puts = [
        value
        for operation, path, value in store.payload_sha256s
        if operation in ("PutObject", "UploadPart") and path in files
    ]
    assert len(puts) >= 4, puts
    return puts[-4:]
