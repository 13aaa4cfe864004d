"""Checksum arithmetic against S3's definitions, with no store: ETags, composites, CRC combining."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sftp_s3_tui.engine.config import ChecksumChoice
from sftp_s3_tui.engine.s3.checksums import (
    checksum_of,
    combined_crc,
    composite,
    multipart_etag,
    part_sums,
)
from sftp_s3_tui.engine.transfer.parts import hash_whole_file


def test_local_multipart_etag_and_composite_match_what_s3_defines() -> None:
    parts = [b"a" * 10, b"b" * 20, b"c"]
    md5s = [hashlib.md5(p).digest() for p in parts]
    assert multipart_etag(md5s) == hashlib.md5(b"".join(md5s)).hexdigest() + "-3"
    sums = [part_sums(ChecksumChoice.SHA256, p) for p in parts]
    digests = [s.checksum for s in sums if s.checksum is not None]
    assert composite(ChecksumChoice.SHA256, digests) == (
        base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode() + "-3"
    )
    assert part_sums(ChecksumChoice.NONE, parts[0]).md5 is None


@pytest.mark.parametrize("choice", [ChecksumChoice.CRC32, ChecksumChoice.CRC32C])
def test_the_whole_objects_crc_is_combined_from_the_parts(choice: ChecksumChoice) -> None:
    data = bytes(range(256)) * 1000 + b"tail"
    step = 10_000
    raw = [checksum_of(choice, data[o : o + step]) for o in range(0, len(data), step)]
    assert (
        combined_crc(choice, raw, step, len(data))
        == base64.b64encode(checksum_of(choice, data)).decode()
    )


@pytest.mark.parametrize("signature", [True, False, "UNSIGNED-PAYLOAD"])
@pytest.mark.parametrize("size", [0, 65536, (1 << 20) + 3])  # on the loop, and in a thread
async def test_a_one_part_files_sums_and_sha256_come_from_one_pass(
    signature: bool | str, size: int
) -> None:
    body = bytearray(hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]
    sums, sha256 = await hash_whole_file(
        ChecksumChoice.CRC64NVME, memoryview(body), True, signature
    )
    assert sha256 == hashlib.sha256(body).hexdigest()
    assert sums == part_sums(
        ChecksumChoice.CRC64NVME, memoryview(body), md5=True, payload_sha256=signature
    )
    assert sums.payload_sha256 == (sha256 if signature is True else (signature or None))
