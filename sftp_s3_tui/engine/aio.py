"""asyncio helpers the engine shares: steps that must run to their end, spreading CPU-heavy
steps over turns of the event loop, and waiting for a set of background tasks.

**Run to the end.** Steps that must run to their end even when the transfer is cancelled meanwhile.

A request already sent to S3 (CreateMultipartUpload, an abort) takes effect whether or not
we wait for its answer: cancelling the wait only loses the answer (an upload id we then
cannot abort). A thread working on a pool buffer must not have the buffer released under
it. Such steps run in their own task; a cancel waits for that task, undoes what it made if
asked, and only then goes on.

**Share the loop.** Spreading the transfers' CPU-heavy steps over turns of the event loop.

Many small files keep ~32 transfers in flight, and one socket read can answer many of them
at once (one SSH connection multiplexes every SFTP request). All of those then take their
next step in the same loop iteration, and the heaviest one, a PutObject's start (botocore
serialises, resolves the endpoint and signs before the first byte goes out, ~3 ms), ran for
twenty or thirty files back to back: 60-120 ms in which no timer fired and no key was read
(measured: bench/many_files.py, ``cpu_by_step_ms``). A transfer asks :meth:`LoopShare.turn`
before such a step; once ``budget_seconds`` have passed in the current round, the rest wait
for the next round, which starts after the loop has run its due timers and I/O. The work is
the same; it is only spread so that nothing else waits long for it.

Only a front that draws on the loop asks for this (the TUI: keys, timers, repaints). A
headless run has nothing else on its loop to keep waiting briefly, and there the share
cost more than it gave: each deferred step added a future, a timer and a turn of the
loop, and split the writes :mod:`.sftp.coalesced_writes` gathers per turn. Without it a
2,000-file copy spent 14 % less CPU per file (1.29 against 1.50 ms, 5 pairs), so a
:class:`LoopShare` without a budget admits every step at once.

A round's time is wall time (``perf_counter``), not the thread's CPU time: that is what a
waiting timer feels (a preempted loop counts too), and ``thread_time`` is a system call that
took ~5 % of the CPU of a copy of many small files here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

#: Time a round may spend before the next heavy step waits for the next round. With
#: ~3 ms steps, 5 ms lets two or three through per round and bounds a round's share of a
#: stall to ~8 ms, whatever the number of transfers in flight (10 ms: 70 ms stalls at 10k
#: files under load; 5 ms: 40 ms at 2k, the same files/s).
ROUND_BUDGET_SECONDS = 0.005


class LoopShare:
    """Admits heavy steps while the current round of the loop is under its time budget.

    Waiting steps form one line and are woken one at a time, each as the one before it has
    run: waking the whole line every round woke ~30 transfers to admit two or three (the
    rest only queued again), ~5 % of the CPU of a copy of many small files.
    """

    def __init__(self, budget_seconds: float | None = ROUND_BUDGET_SECONDS) -> None:
        #: None: no budget, every step goes at once (a headless run).
        self.budget_seconds = budget_seconds
        self._round_began: float | None = None  # perf_counter() at its start
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._next_round: asyncio.TimerHandle | None = None
        self._passing = False  # the head of the line is being woken
        #: Steps that had to wait for a later round (for tests and diagnostics).
        self.deferred = 0

    async def turn(self) -> None:
        """Return when this round of the loop still has room for one heavy step."""
        if self.budget_seconds is None:
            return
        if not self._waiting and not self._passing and self._under_budget():
            return
        self.deferred += 1
        head = False  # a step woken and sent back keeps its place at the head of the line
        while True:
            waiter = asyncio.get_running_loop().create_future()
            if head:
                self._waiting.appendleft(waiter)
            else:
                self._waiting.append(waiter)
            self._schedule_next_round()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                else:  # woken, then cancelled before it ran: the next one goes instead
                    self._pass_on()
                raise
            self._passing = False
            if self._under_budget():
                if self._waiting:  # the next one looks once this step has run
                    self._passing = True
                    asyncio.get_running_loop().call_soon(self._pass_on)
                return
            head = True

    def _under_budget(self) -> bool:
        now = time.perf_counter()
        if self._round_began is None:
            self._round_began = now
            self._schedule_next_round()
            return True
        assert self.budget_seconds is not None  # turn() admits at once without one
        return now - self._round_began < self.budget_seconds

    def _schedule_next_round(self) -> None:
        if self._next_round is None:
            # A timer due now runs after the loop's select and after the timers that fell
            # due before it, so a round ends only once they have had their turn.
            self._next_round = asyncio.get_running_loop().call_later(0, self._start_round)

    def _start_round(self) -> None:
        self._next_round = None
        self._round_began = None
        if not self._passing:
            self._pass_on()

    def _pass_on(self) -> None:
        """Wake the first step still waiting in line."""
        self._passing = False
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._passing = True
                waiter.set_result(None)
                return


T = TypeVar("T")


async def run_to_end(step: Awaitable[T], *, undo: Callable[[T], Awaitable[Any]] | None = None) -> T:
    """Await ``step`` to its end; a cancel meanwhile is raised once it has ended, after
    ``undo(result)`` (itself run to its end) if the step succeeded."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
        if undo is not None and not task.cancelled() and task.exception() is None:
            await run_to_end(undo(task.result()))
        raise


async def wait_all(tasks: set[asyncio.Task[Any]], *, return_exceptions: bool = False) -> None:
    """Wait until ``tasks`` is empty: a set the tasks leave by their own done callbacks and
    that may gain tasks meanwhile.

    Each round's tasks are also removed here. From Python 3.12 a gather of tasks that are all
    done completes without yielding to the loop, so the done callbacks that empty the set
    never ran and ``while tasks: await gather(*tasks)`` spun at 100 % CPU for ever.
    """
    while tasks:
        batch = list(tasks)
        await asyncio.gather(*batch, return_exceptions=return_exceptions)
        tasks.difference_update(batch)
