"""A front's pause of one delivery (``DeliveryControl.keep_partial``): the cancel keeps the
temporary file with its record, the next ``deliver_object`` resumes it from the read-back
prefix, and ``discard_kept`` removes it when the user gives up (real SFTP server behind a
throttling proxy, moto)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.events import EngineEvent, EventBus, TransferChecking, TransferStarted
from sftp_s3_tui.engine.plan.delivery import DeliveryJob, DeliveryTarget
from sftp_s3_tui.engine.s3.operations import open_client
from sftp_s3_tui.engine.sftp.pool import SftpPool
from sftp_s3_tui.engine.transfer.buffers import BufferPool
from sftp_s3_tui.engine.transfer.delivery import (
    DeliveryControl,
    DeliveryOptions,
    deliver_object,
    discard_kept,
)
from tests.support.fault_proxy import FaultProxy, proxied
from tests.support.servers import SftpServerInfo


@pytest.fixture
async def slow(
    embedded_sftp: SftpServerInfo, tmp_path: Path
) -> AsyncIterator[tuple[SftpServerInfo, FaultProxy]]:
    """The embedded server behind a proxy forwarding writes at 4 MiB/s."""
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(4 * MiB, "up")
        yield server, proxy


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


async def _until(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Let the loop run until ``condition()`` holds (the server runs on this loop too)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)  # a poll of a condition, not a wait for time
    assert condition(), what


async def test_a_paused_delivery_keeps_its_file_resumes_from_it_or_is_discarded(
    slow: tuple[SftpServerInfo, FaultProxy],
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    server, proxy = slow
    data = os.urandom(48 * MiB + 3)
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=data)
    records = tmp_path / "records"
    options = DeliveryOptions(record_dir=records)
    target = DeliveryTarget(server.endpoint(), server.remote_path("") + "/", is_folder=True)
    job = DeliveryJob(bucket, "out/big.bin", server.remote_path("big.bin"))

    async with SftpPool() as sftp, open_client(s3_endpoint) as client:
        buffers = BufferPool(options.memory_budget)

        async def attempt(control: DeliveryControl, bus: EventBus | None = None) -> Any:
            return await deliver_object(
                job,
                s3=client,
                sftp=sftp,
                target=target,
                buffers=buffers,
                options=options,
                control=control,
                bus=bus,
                transfer_id=1,
            )

        async def pause() -> dict[str, Any]:
            """Start an attempt, pause it once its record says some of it is written."""
            control = DeliveryControl()
            task = asyncio.create_task(attempt(control))
            await _until(lambda: any(r["written"] > 0 for r in _records(records)), "a checkpoint")
            control.keep_partial = True
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert control.kept
            (record,) = _records(records)
            kept = server.root / record["temp_path"].rsplit("/", 1)[-1]
            assert kept.stat().st_size >= record["written"] > 0
            return record

        # paused, then resumed: only the rest crosses the link, the file lands whole
        record = await pause()
        proxy.throttle(None, "up")
        proxy.reset_counters()
        bus, told = EventBus(), list[EngineEvent]()
        bus.subscribe(told.append)
        result = await attempt(DeliveryControl(), bus)
        assert result.status == "done", result
        assert f"resumed {record['temp_path']} from byte" in result.message
        # the kept part's read back told how far it was, before any byte was sent
        checks = [e for e in told if isinstance(e, TransferChecking)]
        assert {e.check for e in checks} == {"checking the kept part"}
        assert [checks[0].bytes_done, checks[-1].bytes_done] == [0, record["written"]]
        assert checks[-1].size == record["written"]
        started = next(i for i, e in enumerate(told) if isinstance(e, TransferStarted))
        assert told.index(checks[-1]) < started
        assert proxy.bytes_up < len(data)
        assert (server.root / "big.bin").read_bytes() == data
        assert _records(records) == [] and list(records.iterdir()) == []

        # paused, then given up: the kept file goes with its record
        (server.root / "big.bin").unlink()
        proxy.throttle(4 * MiB, "up")
        await pause()
        assert await discard_kept(job, sftp=sftp, target=target, options=options)
        assert sorted(os.listdir(server.root)) == []
        assert list(records.iterdir()) == []

        # without a record a pause is a plain cancel: a file nothing names is never kept
        control = DeliveryControl(keep_partial=True)
        unrecorded = replace(options, record_dir=None)
        task = asyncio.create_task(
            deliver_object(
                job,
                s3=client,
                sftp=sftp,
                target=target,
                buffers=buffers,
                options=unrecorded,
                control=control,
            )
        )
        await _until(lambda: any(n.startswith(".big.bin") for n in os.listdir(server.root)), "")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not control.kept
        assert sorted(os.listdir(server.root)) == []
