"""Regression: a part waiting for its turn is released when another part fails (soak hang)."""

from __future__ import annotations

import asyncio

import pytest

from sftp_s3_tui.engine.transfer.parts import Turnstile


async def test_a_waiting_part_is_released_when_the_turnstile_breaks() -> None:
    """Even if the waiter's own cancellation was lost, breaking the turnstile frees it."""
    turn = Turnstile(1)
    waiter = asyncio.create_task(turn.wait(3))
    await asyncio.sleep(0)
    assert not waiter.done()

    turn.break_()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 1)
    with pytest.raises(asyncio.CancelledError):
        await turn.wait(5)


async def test_turns_come_in_part_order() -> None:
    turn = Turnstile(1)
    order: list[int] = []

    async def part(number: int) -> None:
        await turn.wait(number)
        order.append(number)
        await turn.advance()

    await asyncio.wait_for(asyncio.gather(*(part(n) for n in (4, 2, 3, 1))), 1)
    assert order == [1, 2, 3, 4]
