"""A user copies files of every awkward size from a real SFTP server into S3."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferState,
)
from tests.support.servers import SftpServerInfo
from tests.support.transfers import (
    MiB,
    copy,
    keys,
    object_bytes,
    open_uploads,
    sha256,
    stored_sha256,
)

PART = 5 * MiB
SIZES = {
    "empty.bin": 0,
    "one-byte.bin": 1,
    "exactly-one-part.bin": PART,
    "one-part-plus-one.bin": PART + 1,
    "multi-part.bin": 3 * PART + 12345,
}


@pytest.mark.all_stores
@pytest.mark.sftp_families
@pytest.mark.parametrize("name", list(SIZES))
async def test_sizes_land_byte_exact_with_sha256(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, name: str
) -> None:
    remote = sftp_server.write_file(f"in/{name}", size=SIZES[name], seed=len(name))
    options = TransferOptions(part_size=PART, parts_in_flight=3)

    [result] = await copy(
        sftp_server.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/landing/",
        s3_endpoint,
        options=options,
    )

    assert result.status is TransferState.DONE, result.message
    body = object_bytes(s3, bucket, f"landing/{name}")
    assert body == remote.read_bytes()
    assert result.sha256 == sha256(body) == remote.sha256
    assert stored_sha256(s3, bucket, f"landing/{name}") == remote.sha256
    assert result.parts == max(1, -(-SIZES[name] // PART)) if SIZES[name] > PART else 1
    assert open_uploads(s3, bucket) == []


@pytest.mark.all_stores
async def test_utf8_and_spaces_keep_their_names(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    files = [
        sftp_server.write_file("drop/orders 2026-11.csv", b"id,total\n1,2\n"),
        sftp_server.write_file("drop/ünïcode name.parquet", size=70_000, seed=3),
    ]

    results = await copy(
        sftp_server.endpoint(), [sftp_server.remote_path("drop/")], f"s3://{bucket}/x/", s3_endpoint
    )

    assert {r.status for r in results} == {TransferState.DONE}
    assert keys(s3, bucket) == ["x/orders 2026-11.csv", "x/ünïcode name.parquet"]
    for remote in files:
        assert (
            object_bytes(s3, bucket, f"x/{remote.remote_path.rsplit('/', 1)[1]}")
            == remote.read_bytes()
        )


@pytest.mark.all_stores
async def test_nfc_and_nfd_names_land_side_by_side_byte_for_byte(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``café.csv`` composed (NFC) and decomposed (NFD, as macOS writes it) are two files on
    the server: each lands at a key spelled exactly as its name, with its own bytes."""
    nfc = unicodedata.normalize("NFC", "café.csv")
    nfd = unicodedata.normalize("NFD", "café.csv")
    assert nfc.encode() != nfd.encode()
    openssh_sftp.write_file(f"drop/{nfc}", b"composed\n")
    openssh_sftp.write_file(f"drop/{nfd}", b"decomposed\n")

    results = await copy(
        openssh_sftp.endpoint(), [openssh_sftp.remote_path("drop/")], f"s3://{bucket}/", s3_endpoint
    )

    assert [r.status for r in results] == [TransferState.DONE] * 2, [r.message for r in results]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(k.encode() for k in listed) == sorted([nfc.encode(), nfd.encode()])
    assert object_bytes(s3, bucket, nfc) == b"composed\n"
    assert object_bytes(s3, bucket, nfd) == b"decomposed\n"


async def test_folder_copies_keep_the_relative_layout(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    sftp_server.write_file("exports/a.csv", b"a")
    sftp_server.write_file("exports/logs/2026-11/b.log", b"bb")
    sftp_server.write_file("exports/logs/c.log", b"ccc")

    results = await copy(
        sftp_server.endpoint(),
        [sftp_server.remote_path("exports")],
        f"s3://{bucket}/landing/",
        s3_endpoint,
    )

    assert len(results) == 3
    assert keys(s3, bucket) == [
        "landing/exports/a.csv",
        "landing/exports/logs/2026-11/b.log",
        "landing/exports/logs/c.log",
    ]


async def test_glob_selects_matching_files(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for name in ("a.csv", "b.csv", "c.txt"):
        sftp_server.write_file(f"in/{name}", name.encode())

    await copy(
        sftp_server.endpoint(),
        [sftp_server.remote_path("in/*.csv")],
        f"s3://{bucket}/g/",
        s3_endpoint,
    )

    assert keys(s3, bucket) == ["g/a.csv", "g/b.csv"]


async def test_exact_key_destination(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = sftp_server.write_file("in/report.csv", b"x,y\n")

    await copy(
        sftp_server.endpoint(), [remote.remote_path], f"s3://{bucket}/renamed.csv", s3_endpoint
    )

    assert keys(s3, bucket) == ["renamed.csv"]


@pytest.mark.all_stores
async def test_cancelled_transfer_leaves_nothing_behind(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    from sftp_s3_tui.engine.addresses import parse_s3_url
    from sftp_s3_tui.engine.transfer.queue import TransferQueue

    remote = sftp_server.write_file("in/big.bin", size=12 * PART, seed=9)
    bus = EventBus()
    options = TransferOptions(part_size=PART, parts_in_flight=2)
    async with TransferQueue(s3_endpoint, options, bus=bus) as queue:
        jobs = await queue.expand(
            sftp_server.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )

        def cancel_after_first_part(event: object) -> None:
            if isinstance(event, PartChanged) and event.state is PartState.DONE:
                queue.cancel(event.transfer_id)

        bus.subscribe(cancel_after_first_part)
        [result] = await queue.run(jobs)

    assert result.status is TransferState.CANCELLED
    assert keys(s3, bucket) == []
    assert open_uploads(s3, bucket) == []


async def test_memory_stays_within_parts_in_flight(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    from sftp_s3_tui.engine.addresses import parse_s3_url
    from sftp_s3_tui.engine.transfer.queue import TransferQueue

    remote = embedded_sftp.write_file("in/big.bin", size=20 * PART, seed=4)
    options = TransferOptions(part_size=PART, parts_in_flight=3)
    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(
            embedded_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        [result] = await queue.run(jobs)
        peak = queue.buffers.peak_bytes_in_use

    assert result.status is TransferState.DONE
    assert peak <= 3 * PART
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()


@pytest.mark.all_stores
async def test_sha256_metadata_on_multipart_objects_when_asked(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = embedded_sftp.write_file("in/big.bin", size=2 * PART + 1, seed=6)
    plain = TransferOptions(part_size=PART)
    asked = TransferOptions(part_size=PART, sha256_metadata=True)

    await copy(
        embedded_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/t/",
        s3_endpoint,
        options=plain,
    )
    await copy(
        embedded_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/m/",
        s3_endpoint,
        options=asked,
    )

    tagged = s3.get_object_tagging(Bucket=bucket, Key="t/big.bin")["TagSet"]
    assert {"Key": "sha256", "Value": remote.sha256} in tagged
    assert "sha256" not in s3.head_object(Bucket=bucket, Key="t/big.bin")["Metadata"]
    assert s3.head_object(Bucket=bucket, Key="m/big.bin")["Metadata"]["sha256"] == remote.sha256
    assert object_bytes(s3, bucket, "m/big.bin") == remote.read_bytes()
