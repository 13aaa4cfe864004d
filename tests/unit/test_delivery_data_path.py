"""The delivery data path's pure decisions: write block size, GET segments, combined CRC,
which stored checksum is the check."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import os
import zlib
from datetime import UTC, datetime

import pytest

from sftp_s3_tui.engine.config import MiB
from sftp_s3_tui.engine.digest import crc64nvme
from sftp_s3_tui.engine.errors import VerificationFailed
from sftp_s3_tui.engine.s3.reader import ObjectInfo, object_info
from sftp_s3_tui.engine.sftp.server_profile import (
    RFC_WRITE_BYTES,
    WIDE_WRITE_BYTES,
    ServerProfile,
)
from sftp_s3_tui.engine.transfer.delivery_stream import Digest as _Digest
from sftp_s3_tui.engine.transfer.delivery_stream import segments_of as _segments


def _info(size: int, *, md5: bytes | None = None, crc: str | None = None) -> ObjectInfo:
    return ObjectInfo("b", "k", size, '"etag"', 0.0, crc64nvme=crc, single_part_md5=md5)


def test_writes_use_the_advertised_size_else_what_the_family_takes() -> None:
    assert ServerProfile(advertised_write_bytes=261120).write_bytes == 261120
    assert ServerProfile(banner="SSH-2.0-mod_sftp").write_bytes == WIDE_WRITE_BYTES
    assert ServerProfile(banner="SSH-2.0-dropbear_2022.83").write_bytes == WIDE_WRITE_BYTES
    assert ServerProfile(banner="SSH-2.0-SomeAppliance").write_bytes == RFC_WRITE_BYTES
    probed = ServerProfile(banner="SSH-2.0-SomeAppliance", largest_full_read_bytes=256 * 1024)
    assert probed.write_bytes == WIDE_WRITE_BYTES


def test_an_md5_checked_object_is_one_get_and_a_crc_checked_one_several() -> None:
    part = 8 * MiB
    assert _segments(_info(0, md5=b"x" * 16), part) == []
    assert _segments(_info(512 * MiB, md5=b"x" * 16), part) == [(0, 512 * MiB)]
    assert _segments(_info(100 * MiB, crc="AAAAAAAAAAA="), part) == [(0, 100 * MiB)]
    segments = _segments(_info(512 * MiB + 5, crc="AAAAAAAAAAA="), part)
    assert len(segments) == 4
    assert segments[0][0] == 0 and segments[-1][1] == 512 * MiB + 5
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segments))
    assert all(start % part == 0 for start, _ in segments)


def test_segment_crcs_combine_to_the_whole_objects() -> None:
    data = os.urandom(3 * 1024 + 17)
    segments = [(0, 1000), (1000, 2500), (2500, len(data))]
    whole = base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()
    checks = _Digest(_info(len(data), crc=whole), segments)
    for index, (start, end) in reversed(list(enumerate(segments))):  # any order across
        checks.update(index, memoryview(data[start:end]))
    assert checks.check(_info(len(data), crc=whole)) == "crc64nvme"


def test_one_segment_also_checks_the_etags_md5() -> None:
    data = b"delivered bytes" * 100
    info = _info(len(data), md5=hashlib.md5(data).digest())
    checks = _Digest(info, [(0, len(data))])
    checks.update(0, memoryview(data))
    assert checks.check(info) == "md5"


def test_a_stored_crc32c_or_crc32_is_the_check_instead_of_the_md5() -> None:
    data = b"delivered bytes" * 1000
    md5 = hashlib.md5(data).digest()
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    stored = dataclasses.replace(_info(len(data), md5=md5), crc32=crc32)
    checks = _Digest(stored, [(0, len(data))])
    checks.update(0, memoryview(data[:100]))
    checks.update(0, memoryview(data[100:]))
    assert checks.md5 is None  # the CRC32 stands for it: no MD5 of every byte
    assert checks.check(stored) == "crc32"
    wrong = dataclasses.replace(stored, crc32="AAAAAA==")
    with pytest.raises(VerificationFailed, match="CRC32"):
        checks.check(wrong)


def test_a_composite_checksum_is_not_taken_for_the_objects() -> None:
    head = {
        "ETag": '"0123456789abcdef0123456789abcdef-3"',
        "ContentLength": 10,
        "LastModified": datetime.now(UTC),
        "ChecksumCRC32": "AAAAAA==-3",  # a checksum of the parts' checksums
    }
    info = object_info("b", "k", head)
    assert info.crc32 is None and info.ordered_check == ""


def test_a_listed_object_takes_its_check_from_the_get_answer() -> None:
    """No HEAD: the listing's ETag suggests MD5, the GET's answer (``described``, known
    before the first bytes are hashed) says the store holds a CRC32: no MD5 is computed."""
    data = os.urandom(5000)
    listed = _info(len(data), md5=hashlib.md5(data).digest())
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    checks = _Digest(listed, [(0, len(data))])
    checks.described = dataclasses.replace(listed, crc32=crc32)
    checks.update(0, memoryview(data))
    assert checks.md5 is None
    assert checks.check(checks.described) == "crc32"
