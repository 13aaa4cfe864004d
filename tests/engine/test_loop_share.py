"""Heavy steps of many transfers at once are spread over the loop's rounds (LoopShare)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sftp_s3_tui.engine.aio import LoopShare
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.s3.operations import open_client, put_object

STEP_SECONDS = 0.003  # a PutObject's start on the loop, as measured


def _busy(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU (what a botocore request's start does)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def _longest_wait_of_a_timer(work: list[Any]) -> float:
    """Run ``work`` and, beside it, a 1 ms timer; the most loop CPU the timer waited for."""
    longest = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest
        loop = asyncio.get_running_loop()
        while not done.is_set():
            began, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.001)
            late = loop.time() - began - 0.001
            longest = max(longest, min(late, time.thread_time() - cpu))

    probe = asyncio.create_task(ticker())
    await asyncio.sleep(0.005)  # the ticker is waiting when the burst comes
    await asyncio.gather(*work)
    done.set()
    await probe
    return longest


async def test_forty_transfers_starting_their_requests_at_once_leave_room_for_a_timer() -> None:
    share = LoopShare(budget_seconds=0.01)
    finished = 0

    async def transfer() -> None:
        nonlocal finished
        await share.turn()
        _busy(STEP_SECONDS)
        finished += 1

    waited = await _longest_wait_of_a_timer([transfer() for _ in range(40)])

    assert finished == 40
    assert share.deferred > 0
    # 40 x 3 ms back to back would hold the loop 120 ms; a round admits ~10 ms of them.
    assert waited < 0.045, f"the timer waited {waited * 1000:.0f} ms of loop CPU"


async def test_without_the_share_the_same_burst_holds_the_loop() -> None:
    async def transfer() -> None:
        await asyncio.sleep(0)
        _busy(STEP_SECONDS)

    waited = await _longest_wait_of_a_timer([transfer() for _ in range(40)])

    assert waited > 0.1  # what the share is for: the whole burst in one turn of the loop


async def test_a_share_without_a_budget_admits_every_step_without_waiting() -> None:
    share = LoopShare(budget_seconds=None)  # a headless run's: nothing else on the loop
    for _ in range(40):
        step = share.turn()
        with pytest.raises(StopIteration):  # returned at once: no future, no loop turn
            step.send(None)
        _busy(STEP_SECONDS)
    assert share.deferred == 0


async def test_a_transfer_cancelled_while_it_waits_for_a_round_leaves_the_line() -> None:
    share = LoopShare(budget_seconds=0.0)  # only the first step of a round goes through
    await share.turn()
    waiting = asyncio.create_task(share.turn())
    await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.01)
    await asyncio.wait_for(share.turn(), 1)  # the next round admits the next one


async def test_puts_to_many_keys_of_a_bucket_resolve_its_endpoint_once(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    async with open_client(s3_endpoint) as client:
        resolve = client._ruleset_resolver._provider.resolve_endpoint
        await put_object(client, bucket, "warm/first.csv", bytearray(b"a,b\n"))
        misses = resolve.cache_info().misses
        for n in range(20):
            await put_object(client, bucket, f"many/f{n:02}.csv", bytearray(b"row\n"))
        assert resolve.cache_info().misses == misses
        listed = await client.list_objects_v2(Bucket=bucket, Prefix="many/")
    assert len(listed["Contents"]) == 20
