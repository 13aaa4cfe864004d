"""The global pool of part buffers: the engine's one memory control."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

from ..errors import UsageError
from ..units import format_size


class BufferPool:
    """Hands out ``bytearray`` part buffers while their total stays within ``budget`` bytes.

    A transfer takes a buffer before it reads a part and gives it back once the part is
    uploaded, so peak memory is about the budget whatever the file sizes or queue length.
    Released buffers are kept for reuse (no re-allocation on the hot path), for the
    ``cached_sizes`` sizes released most recently: the full-part size stays hot while the odd
    sizes of small files and last parts pass through, so the cache never fills with buffers
    nobody asks for again (with 100k small files of distinct sizes it would otherwise grow to
    the whole budget). Buffers under ``min_cached_size`` are not kept: allocating them is
    cheap. When room is needed the least recently released size is dropped first; every
    step is O(1) whatever the number of distinct sizes seen. Waiters are served first come,
    first served, so a large part is not starved by a stream of small ones.
    """

    def __init__(
        self, budget: int, *, cached_sizes: int = 4, min_cached_size: int = 256 * 1024
    ) -> None:
        self.budget = budget
        self.bytes_in_use = 0
        self.peak_bytes_in_use = 0
        self.cached_sizes = cached_sizes
        self.min_cached_size = min_cached_size
        # size → free buffers of that size; least recently released size first
        self._cached: OrderedDict[int, list[bytearray]] = OrderedDict()
        self._cached_bytes = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int) -> bytearray:
        """Wait until ``size`` bytes fit in the budget, then return a buffer of that size."""
        if size > self.budget:
            raise UsageError(
                f"A part of {format_size(size)} does not fit the memory budget of "
                f"{format_size(self.budget)}",
                "raise --memory or lower --part-size",
            )
        if self._waiters or self.bytes_in_use + size > self.budget:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (size, future)
            self._waiters.append(entry)
            try:
                await future
            except BaseException:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                elif future.done() and not future.cancelled():
                    self.bytes_in_use -= size  # granted just as we were cancelled
                    self._wake()
                raise
        else:
            self.bytes_in_use += size
        self.peak_bytes_in_use = max(self.peak_bytes_in_use, self.bytes_in_use)
        return self._take(size)

    def release(self, buffer: bytearray) -> None:
        """Return a buffer to the pool and wake whoever it now fits."""
        size = len(buffer)
        self.bytes_in_use -= size
        if size >= self.min_cached_size and self.cached_sizes > 0:
            cached = self._cached.get(size)
            if cached is None:
                cached = self._cached[size] = []
                if len(self._cached) > self.cached_sizes:
                    self._drop_size(next(iter(self._cached)))
            else:
                self._cached.move_to_end(size)
            cached.append(buffer)
            self._cached_bytes += size
        self._trim()
        self._wake()

    @property
    def cached_bytes(self) -> int:
        """Bytes held in free buffers kept for reuse."""
        return self._cached_bytes

    def _take(self, size: int) -> bytearray:
        cached = self._cached.get(size)
        if cached:
            self._cached_bytes -= size
            buffer = cached.pop()
            if not cached:
                del self._cached[size]
            return buffer
        return bytearray(size)

    def _drop_size(self, size: int) -> None:
        self._cached_bytes -= size * len(self._cached.pop(size))

    def _trim(self) -> None:
        """Drop cached buffers, least recently released size first, so cached + in use stays
        within the budget."""
        while self._cached_bytes + self.bytes_in_use > self.budget:
            size, cached = next(iter(self._cached.items()))
            cached.pop()
            self._cached_bytes -= size
            if not cached:
                del self._cached[size]

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if future.cancelled():
                self._waiters.popleft()
                continue
            if self.bytes_in_use + size > self.budget:
                break
            self._waiters.popleft()
            self.bytes_in_use += size
            future.set_result(None)
        self._trim()
