"""The SSH connection misbehaves mid-file: cut once, cut every time, stalled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import TransferError
from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferState,
)
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.fault_proxy import DOWN, FaultProxy
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy

from .conftest import assert_nothing_written, assert_object

FAST_RETRIES = TransferOptions(
    part_size=5 * MiB, parts_in_flight=3, attempts=4, backoff_seconds=0.05
)


@pytest.mark.sftp_families
async def test_cut_mid_file_reconnects_and_finishes(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    remote = via_proxy.write_file("in/big.bin", size=22 * MiB + 3, seed=11)
    sshd_proxy.cut_after(9 * MiB, DOWN)
    bus = EventBus()
    retried: list[PartChanged] = []
    bus.subscribe(
        lambda e: (
            retried.append(e)
            if isinstance(e, PartChanged) and e.state is PartState.RETRIED
            else None
        )
    )

    [result] = await copy(
        via_proxy.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=FAST_RETRIES,
        bus=bus,
    )

    assert result.status is TransferState.DONE, result.message
    assert result.sha256 == remote.sha256
    assert sshd_proxy.cuts == 1 and sshd_proxy.connections >= 2
    assert retried and {e.side for e in retried} == {"sftp"}
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []


async def test_cut_every_time_fails_cleanly_and_aborts(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    remote = via_proxy.write_file("in/big.bin", size=16 * MiB, seed=12)
    # The first connection gets 7 MiB (the upload starts); every later one dies at 64 KiB.
    sshd_proxy.cut_after(7 * MiB, DOWN)
    bus = EventBus()
    started: list[object] = []
    bus.subscribe(lambda e: started.append(e) if isinstance(e, PartChanged) else None)

    async def cut_forever() -> None:
        await sshd_proxy.wait_for(lambda p: p.cuts >= 1)
        sshd_proxy.cut_after(64 * 1024, DOWN, repeat=True)

    arming = asyncio.create_task(cut_forever())
    began = time.monotonic()
    [result] = await copy(
        via_proxy.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=FAST_RETRIES,
        bus=bus,
    )
    await arming

    assert result.status is TransferState.FAILED
    assert "big.bin" in result.message
    assert sshd_proxy.cuts >= FAST_RETRIES.attempts
    assert time.monotonic() - began < 30
    assert_nothing_written(s3, bucket)


async def test_stall_longer_than_the_timeout_fails_without_hanging(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    remote = via_proxy.write_file("in/big.bin", size=16 * MiB, seed=13)
    endpoint = via_proxy.endpoint(request_timeout_seconds=1.0, connect_timeout_seconds=1.0)
    options = TransferOptions(
        part_size=5 * MiB, parts_in_flight=3, attempts=2, backoff_seconds=0.05
    )

    async def stall_midway() -> None:
        await sshd_proxy.wait_for(lambda p: p.bytes_down > 6 * MiB)
        sshd_proxy.stall()  # until the end of the test

    stalling = asyncio.create_task(stall_midway())
    began = time.monotonic()
    [result] = await copy(
        endpoint, [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=options
    )
    seconds = time.monotonic() - began
    await stalling

    assert result.status is TransferState.FAILED
    assert "Reading" in result.message and "big.bin" in result.message
    assert seconds < 20
    assert_nothing_written(s3, bucket)


@pytest.mark.sftp_families
async def test_stall_shorter_than_the_retries_recovers(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    remote = via_proxy.write_file("in/big.bin", size=12 * MiB + 5, seed=14)
    endpoint = via_proxy.endpoint(request_timeout_seconds=1.0, connect_timeout_seconds=5.0)

    async def stall_midway() -> None:
        await sshd_proxy.wait_for(lambda p: p.bytes_down > 3 * MiB)
        sshd_proxy.stall(2.5)

    stalling = asyncio.create_task(stall_midway())
    [result] = await copy(
        endpoint, [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=FAST_RETRIES
    )
    await stalling

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, "big.bin", remote.read_bytes())


async def test_stall_between_files_fails_the_next_file_without_hanging(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """The server stops answering right after the first file: opening the second one must
    time out like a read does, not wait for TCP keepalives."""
    first = via_proxy.write_file("in/1-first.csv", size=100_000, seed=15)
    via_proxy.write_file("in/2-second.csv", size=100_000, seed=16)
    endpoint = via_proxy.endpoint(request_timeout_seconds=1.0, connect_timeout_seconds=1.0)
    options = TransferOptions(files_in_flight=1, attempts=2, backoff_seconds=0.05)
    bus = EventBus()
    bus.subscribe(lambda e: sshd_proxy.stall() if isinstance(e, TransferFinished) else None)

    began = time.monotonic()
    results = await copy(
        endpoint,
        [via_proxy.remote_path("in/")],
        f"s3://{bucket}/",
        s3_endpoint,
        options=options,
        bus=bus,
    )
    seconds = time.monotonic() - began

    by_key = {r.key: r for r in results}
    assert by_key["1-first.csv"].status is TransferState.DONE
    assert by_key["2-second.csv"].status is TransferState.FAILED
    assert "timed out" in by_key["2-second.csv"].message
    assert seconds < 15
    assert_object(s3, bucket, "1-first.csv", first.read_bytes())
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["1-first.csv"]


async def test_stalled_listing_times_out(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    """Browsing (stat, listdir) on a connection that stopped answering fails in bounded time."""
    via_proxy.write_file("in/a.csv", b"a")
    endpoint = via_proxy.endpoint(request_timeout_seconds=1.0, connect_timeout_seconds=1.0)
    dest = parse_s3_url(f"s3://{bucket}/")
    async with TransferQueue(s3_endpoint) as queue:
        assert len(await queue.expand(endpoint, via_proxy.remote_path("in/"), dest)) == 1
        sshd_proxy.stall()
        began = time.monotonic()
        with pytest.raises(TransferError, match="timed out"):
            await queue.expand(endpoint, via_proxy.remote_path("in/"), dest)
        with pytest.raises(TransferError, match="timed out"):
            await queue.expand(endpoint, via_proxy.remote_path("in/a.csv"), dest)
        assert time.monotonic() - began < 10


async def test_one_drop_costs_one_reconnect_however_many_parts_were_reading(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """Four parts are mid-read when the connection dies: each fails, but the connection is
    reset once (its generation), not once per part under the others' feet. One connection
    per host: on a loaded box the proxy's RTT can pass the far-host mark, and a far file
    would open further connections that this count is not about."""
    remote = via_proxy.write_file("in/wide.bin", size=30 * MiB, seed=15)
    sshd_proxy.cut_after(7 * MiB, DOWN)
    options = TransferOptions(
        part_size=5 * MiB, parts_in_flight=6, attempts=4, backoff_seconds=0.05
    )

    [result] = await copy(
        via_proxy.endpoint(connections=1),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=options,
    )

    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    assert sshd_proxy.cuts == 1
    assert sshd_proxy.connections == 2  # the first, and exactly one replacement
    assert_object(s3, bucket, "wide.bin", remote.read_bytes())
