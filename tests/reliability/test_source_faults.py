"""The source file changes under the transfer: grows, shrinks, is rewritten or deleted.

A throttled proxy in front of sshd makes the timing deterministic: the change happens while
the transfer is provably mid-file (the proxy's byte count says how far it got).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.fault_proxy import DOWN, FaultProxy
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_nothing_written, assert_object

OPTIONS = TransferOptions(part_size=5 * MiB, parts_in_flight=2, attempts=3, backoff_seconds=0.05)
RATE = 6 * MiB  # bytes/s through the proxy: a 12 MiB file takes ~2 s


async def _copy_changing(
    server: SftpServerInfo,
    proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    bucket: str,
    remote_path: str,
    at_bytes: int,
    change: Any,
) -> Any:
    """Copy ``remote_path`` through a throttled proxy and ``change()`` it mid-read."""
    proxy.throttle(RATE, DOWN)

    async def change_midway() -> None:
        await proxy.wait_for(lambda p: p.bytes_down > at_bytes)
        change()

    changing = asyncio.create_task(change_midway())
    [result] = await copy(
        server.endpoint(), [remote_path], f"s3://{bucket}/", s3_endpoint, options=OPTIONS
    )
    await changing
    return result


@pytest.mark.sftp_families
async def test_source_growing_during_the_read_is_detected_and_not_published(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = via_proxy.write_file("in/growing.log", size=12 * MiB, seed=31)

    def grow() -> None:
        with remote.local_path.open("ab") as f:
            f.write(b"late line\n" * 1000)

    result = await _copy_changing(
        via_proxy, sshd_proxy, s3_endpoint, bucket, remote.remote_path, 3 * MiB, grow
    )

    assert result.status is TransferState.FAILED
    assert (
        "changed while it was read" in result.message and "nothing was published" in result.message
    )
    assert_nothing_written(s3, bucket)


async def test_source_shrinking_during_the_read_is_detected_and_not_published(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = via_proxy.write_file("in/shrinking.bin", size=12 * MiB, seed=32)

    def shrink() -> None:
        os.truncate(remote.local_path, 4 * MiB)

    result = await _copy_changing(
        via_proxy, sshd_proxy, s3_endpoint, bucket, remote.remote_path, 2 * MiB, shrink
    )

    assert result.status is TransferState.FAILED
    assert "shrank" in result.message or "changed while it was read" in result.message
    assert "nothing was published" in result.message
    assert_nothing_written(s3, bucket)


async def test_source_rewritten_in_place_is_detected_by_its_mtime(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = via_proxy.write_file("in/rewritten.bin", size=12 * MiB, seed=33)

    def rewrite_same_size() -> None:
        with remote.local_path.open("r+b") as f:
            f.write(b"X" * MiB)
        stat = remote.local_path.stat()
        os.utime(remote.local_path, (stat.st_atime, stat.st_mtime + 60))

    result = await _copy_changing(
        via_proxy, sshd_proxy, s3_endpoint, bucket, remote.remote_path, 7 * MiB, rewrite_same_size
    )

    assert result.status is TransferState.FAILED
    assert "changed while it was read" in result.message
    assert_nothing_written(s3, bucket)


async def test_small_file_growing_during_its_read_lands_as_read_again(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A one-part file is read by its listed size without a stat first; when it changed, that
    read is dropped and the file read again from a stat: the object is the grown file, never
    the read that was torn by the change."""
    remote = via_proxy.write_file("in/small.csv", size=4 * MiB, seed=34)

    def grow() -> None:
        with remote.local_path.open("ab") as f:
            f.write(b"9,9\n")

    result = await _copy_changing(
        via_proxy, sshd_proxy, s3_endpoint, bucket, remote.remote_path, MiB, grow
    )

    assert result.status is TransferState.DONE, result.message
    assert result.bytes == 4 * MiB + 4
    assert_object(s3, bucket, "small.csv", remote.read_bytes())


async def test_small_file_still_growing_when_read_again_is_not_published(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """The read again from a stat is checked as every read is: a file still being written
    fails with why, and nothing is published."""
    remote = via_proxy.write_file("in/small.csv", size=4 * MiB, seed=38)
    sshd_proxy.throttle(RATE, DOWN)

    async def grow_twice() -> None:
        for at_bytes in (MiB, 6 * MiB):  # in the first read, then in the second one

            def past(proxy: FaultProxy, at: int = at_bytes) -> bool:
                return proxy.bytes_down > at

            await sshd_proxy.wait_for(past)
            with remote.local_path.open("ab") as f:
                f.write(b"9,9\n")

    growing = asyncio.create_task(grow_twice())
    [result] = await copy(
        via_proxy.endpoint(), [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=OPTIONS
    )
    await asyncio.wait_for(growing, 30)

    assert result.status is TransferState.FAILED
    assert "changed while it was read" in result.message
    assert_nothing_written(s3, bucket)


async def test_file_changed_after_its_listing_is_copied_as_it_is_now(
    via_proxy: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """The job's listed size is out of date by the time it runs: the object is the file as
    it is now (read again from a stat), not the listed length of it."""
    remote = via_proxy.write_file("in/late.csv", size=100_000, seed=39)
    async with TransferQueue(s3_endpoint, OPTIONS) as queue:
        jobs = await queue.expand(
            via_proxy.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        remote.local_path.write_bytes(b"rewritten after the listing\n" * 5000)
        [result] = await queue.run(jobs)

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, "late.csv", remote.read_bytes())


async def test_skip_decided_from_an_old_listing_is_checked_by_a_stat(
    via_proxy: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """if-different skips a file whose listed size and mtime the object recorded; a file
    rewritten since that listing (same size, newer mtime) is copied, not skipped."""
    options = replace(OPTIONS, conflict=ConflictPolicy.IF_DIFFERENT)
    remote = via_proxy.write_file("in/daily.csv", size=100_000, seed=40, mtime=time.time() - 3600)
    dest = parse_s3_url(f"s3://{bucket}/")
    async with TransferQueue(s3_endpoint, options) as queue:
        listed = await queue.expand(via_proxy.endpoint(), remote.remote_path, dest)
        [first] = await queue.run(listed)
    assert first.status is TransferState.DONE, first.message
    async with TransferQueue(s3_endpoint, options) as queue:
        listed = await queue.expand(via_proxy.endpoint(), remote.remote_path, dest)
        remote.local_path.write_bytes(b"X" * 100_000)  # same size, mtime now
        [again] = await queue.run(listed)

    assert again.status is TransferState.DONE, again.message
    assert_object(s3, bucket, "daily.csv", b"X" * 100_000)


async def test_source_deleted_mid_transfer_lands_whole_from_the_open_handle(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """POSIX keeps an unlinked file readable through an open handle: the object is the
    complete file as it was opened, never a truncated one."""
    remote = via_proxy.write_file("in/deleted.bin", size=12 * MiB, seed=35)
    original = remote.read_bytes()

    result = await _copy_changing(
        via_proxy,
        sshd_proxy,
        s3_endpoint,
        bucket,
        remote.remote_path,
        3 * MiB,
        remote.local_path.unlink,
    )

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, "deleted.bin", original)


async def test_source_deleted_then_connection_lost_fails_as_not_found(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """After a reconnect the file cannot be reopened: a clear failure, nothing published."""
    remote = via_proxy.write_file("in/deleted.bin", size=12 * MiB, seed=36)

    def delete_and_cut() -> None:
        remote.local_path.unlink()
        sshd_proxy.reset_all()

    result = await _copy_changing(
        via_proxy, sshd_proxy, s3_endpoint, bucket, remote.remote_path, 3 * MiB, delete_and_cut
    )

    assert result.status is TransferState.FAILED
    assert "does not exist on the SFTP server" in result.message
    assert_nothing_written(s3, bucket)


async def test_empty_file_lands_as_an_empty_object(
    via_proxy: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = via_proxy.write_file("in/empty.csv", b"")

    [result] = await copy(
        via_proxy.endpoint(), [remote.remote_path], f"s3://{bucket}/", s3_endpoint
    )

    assert result.status is TransferState.DONE, result.message
    assert result.bytes == 0 and result.parts == 1
    assert_object(s3, bucket, "empty.csv", b"")
