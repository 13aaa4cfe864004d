"""The buffer pool: reuse of part buffers, the budget, and a cache that stays small."""

from __future__ import annotations

import asyncio

from sftp_s3_tui.engine.transfer.buffers import BufferPool

MiB = 1 << 20


async def test_a_released_part_buffer_is_reused_not_reallocated() -> None:
    pool = BufferPool(64 * MiB)
    first = await pool.acquire(8 * MiB)
    pool.release(first)
    again = await pool.acquire(8 * MiB)
    assert again is first
    assert pool.bytes_in_use == 8 * MiB and pool.cached_bytes == 0


async def test_thousands_of_distinct_sizes_leave_a_bounded_cache() -> None:
    """A folder of small files of every size: the cache keeps a few recent sizes, not all of
    them (it used to keep every size and scan them all on each release)."""
    pool = BufferPool(512 * MiB, cached_sizes=4, min_cached_size=256 * 1024)
    part = await pool.acquire(8 * MiB)
    pool.release(part)
    for n in range(20_000):
        pool.release(await pool.acquire(300_000 + n))  # every size once
        if n % 1000 == 0:  # the part size keeps coming back, as a big file's parts do
            pool.release(await pool.acquire(8 * MiB))
    assert len(pool._cached) <= 4
    assert pool.cached_bytes <= 4 * 8 * MiB
    assert pool.bytes_in_use == 0


async def test_small_buffers_are_not_cached() -> None:
    pool = BufferPool(64 * MiB)
    for size in range(1000, 2000):
        pool.release(await pool.acquire(size))
    assert pool.cached_bytes == 0


async def test_cached_plus_in_use_stays_within_the_budget_and_waiters_are_served() -> None:
    pool = BufferPool(16 * MiB)
    a = await pool.acquire(8 * MiB)
    b = await pool.acquire(8 * MiB)
    waiting = asyncio.ensure_future(pool.acquire(12 * MiB))
    await asyncio.sleep(0)
    assert not waiting.done()
    pool.release(a)
    await asyncio.sleep(0)
    assert not waiting.done()  # 8 MiB in use + 12 MiB would exceed 16 MiB
    pool.release(b)
    big = await asyncio.wait_for(waiting, 10)
    assert len(big) == 12 * MiB
    assert pool.bytes_in_use + pool.cached_bytes <= pool.budget
    pool.release(big)
    assert pool.bytes_in_use == 0 and pool.cached_bytes <= pool.budget
