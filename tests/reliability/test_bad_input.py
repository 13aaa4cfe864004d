"""Bad names and sizes: refused (or made safe) with a message, and nothing half-written."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import MAX_KEY_BYTES, parse_s3_url
from sftp_s3_tui.engine.config import MAX_PARTS, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.engine.events import (
    EngineEvent,
    EventBus,
    TransferNotice,
    TransferStarted,
    TransferState,
)
from sftp_s3_tui.engine.plan.sources import part_count, part_size_for
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_nothing_written, assert_object

GiB = 1 << 30


def test_control_character_in_a_remote_name_fails_that_file_alone(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/good.csv", b"ok\n")
    openssh_sftp.write_file("drop/bell\x07name.csv", b"ding\n")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 1
    assert "control character" in done.stderr and "'\\x07'" in done.stderr
    assert_object(s3, bucket, "in/good.csv", b"ok\n")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["in/good.csv"]
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []


BAD_KEYS = [
    ("a/../etc/passwd", "'..' segment"),
    ("../x.csv", "'..' segment"),
    ("a\x01b.csv", "control character"),
    ("x/\x7f.csv", "control character"),
    ("k" * (MAX_KEY_BYTES + 1), f"at most {MAX_KEY_BYTES} bytes"),
    ("é" * (MAX_KEY_BYTES // 2) + "x", f"at most {MAX_KEY_BYTES} bytes"),
]


@pytest.mark.parametrize(("dest", "message"), BAD_KEYS)
def test_bad_destination_keys_are_refused_when_parsed(dest: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_s3_url(f"s3://bucket-x/{dest}")


@pytest.mark.parametrize(("dest", "message"), [BAD_KEYS[0]], ids=["dotdot"])
def test_bad_destination_keys_are_refused_by_the_cli(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    dest: str,
    message: str,
) -> None:
    openssh_sftp.write_file("in/a.csv", b"a\n")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        f"s3://{bucket}/{dest}",
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_written(s3, bucket)


async def test_leading_slashes_and_dot_segments_are_dropped(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/a.csv", b"a\n")

    [result] = await copy(
        openssh_sftp.endpoint(), [remote.remote_path], f"s3://{bucket}//./x//y/", s3_endpoint
    )

    assert result.status is TransferState.DONE, result.message
    assert result.key == "x/y/a.csv"
    assert_object(s3, bucket, "x/y/a.csv", b"a\n")


@pytest.mark.all_stores
async def test_a_key_of_exactly_1024_bytes_lands(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/a.csv", b"a\n")
    prefix = ("p" * 200 + "/") * 4  # folders, since one file name is at most 255 bytes
    key = prefix + "é" * ((MAX_KEY_BYTES - len(prefix) - len("a.csv")) // 2)
    key += "k" * (MAX_KEY_BYTES - len(key.encode()) - len("a.csv")) + "a.csv"
    assert len(key.encode()) == MAX_KEY_BYTES

    [result] = await copy(
        openssh_sftp.endpoint(), [remote.remote_path], f"s3://{bucket}/{key}", s3_endpoint
    )

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, key, b"a\n")


def test_part_size_is_raised_to_stay_within_10000_parts() -> None:
    five = 5 * MiB
    assert part_size_for(MAX_PARTS * five, five) == five
    assert part_size_for(MAX_PARTS * five + 1, five) == 6 * MiB
    assert part_size_for(1 << 40, 8 * MiB) == 105 * MiB  # 1 TiB
    assert part_size_for(5 * (1 << 40), five) == 525 * MiB  # 5 TiB, S3's largest object
    assert part_size_for(10, 1) == five  # clamped up to S3's minimum
    assert part_size_for(10, 6 * GiB) == 5 * GiB  # and down to its maximum
    for size in (MAX_PARTS * five - 1, 48 * GiB + 7, 700 * GiB + 12345, (5 << 40) - 1):
        part = part_size_for(size, five)
        assert part % MiB == 0 and part_count(size, part) <= MAX_PARTS
    with pytest.raises(UsageError, match="5 TiB"):
        part_size_for(MAX_PARTS * 5 * GiB + 1, five)


async def test_a_file_over_10000_parts_starts_with_a_raised_part_size(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A sparse 48.8 GiB file on the real sshd: the plan and the notice, then a cancel."""
    size = MAX_PARTS * 5 * MiB + 1
    path = openssh_sftp.root / "in" / "huge.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    bus = EventBus()
    seen: list[EngineEvent] = []
    started = asyncio.Event()

    def on_event(event: EngineEvent) -> None:
        seen.append(event)
        if isinstance(event, TransferStarted):
            started.set()

    bus.subscribe(on_event)
    options = TransferOptions(part_size=5 * MiB, parts_in_flight=2)
    async with TransferQueue(s3_endpoint, options, bus=bus) as queue:
        jobs = await queue.expand(
            openssh_sftp.endpoint(),
            openssh_sftp.remote_path("in/huge.bin"),
            parse_s3_url(f"s3://{bucket}/"),
        )
        [transfer] = queue.submit(jobs)
        await asyncio.wait_for(started.wait(), 30)
        queue.cancel(transfer.id)
        [result] = await queue.join()

    [plan] = [e for e in seen if isinstance(e, TransferStarted)]
    notices = [e.message for e in seen if isinstance(e, TransferNotice)]
    assert plan.part_size == 6 * MiB and plan.part_count == part_count(size, 6 * MiB) <= MAX_PARTS
    assert "part size raised to 6 MiB to stay within 10,000 parts" in notices
    assert result.status is TransferState.CANCELLED
    assert_nothing_written(s3, bucket)
    os.unlink(path)
