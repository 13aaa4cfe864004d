"""Spreading the transfers' CPU-heavy steps over turns of the event loop.

Many small files keep ~32 transfers in flight, and one socket read can answer many of them
at once (one SSH connection multiplexes every SFTP request). All of those then take their
next step in the same loop iteration, and the heaviest one, a PutObject's start (botocore
serialises, resolves the endpoint and signs before the first byte goes out, ~3 ms), ran for
twenty or thirty files back to back: 60-120 ms in which no timer fired and no key was read
(measured: bench/many_files.py, ``cpu_by_step_ms``). A transfer asks :meth:`LoopShare.turn`
before such a step; once the loop thread has spent ``budget_seconds`` of CPU in the current
round, the rest wait for the next round, which starts after the loop has run its due timers
and I/O. The work is the same; it is only spread so that nothing else waits long for it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

#: Loop CPU a round may spend before the next heavy step waits for the next round. With
#: ~3 ms steps, 5 ms lets two or three through per round and bounds a round's share of a
#: stall to ~8 ms, whatever the number of transfers in flight (10 ms: 70 ms stalls at 10k
#: files under load; 5 ms: 40 ms at 2k, the same files/s).
ROUND_BUDGET_SECONDS = 0.005


class LoopShare:
    """Admits heavy steps while the current round of the loop is under its CPU budget."""

    def __init__(self, budget_seconds: float = ROUND_BUDGET_SECONDS) -> None:
        self.budget_seconds = budget_seconds
        self._round_began: float | None = None  # the loop thread's CPU time at its start
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._next_round: asyncio.TimerHandle | None = None
        #: Steps that had to wait for a later round (for tests and diagnostics).
        self.deferred = 0

    async def turn(self) -> None:
        """Return when this round of the loop still has room for one heavy step."""
        while not self._admits():
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            self.deferred += 1
            self._schedule_next_round()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                raise

    def _admits(self) -> bool:
        now = time.thread_time()
        if self._round_began is None:
            self._round_began = now
            self._schedule_next_round()
            return True
        return not self._waiting and now - self._round_began < self.budget_seconds

    def _schedule_next_round(self) -> None:
        if self._next_round is None:
            # A timer due now runs after the loop's select and after the timers that fell
            # due before it, so a round ends only once they have had their turn.
            self._next_round = asyncio.get_running_loop().call_later(0, self._start_round)

    def _start_round(self) -> None:
        self._next_round = None
        self._round_began = None
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:  # each checks the budget again when it runs
            if not waiter.done():
                waiter.set_result(None)
