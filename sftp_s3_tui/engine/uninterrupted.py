"""Steps that must run to their end even when the transfer is cancelled meanwhile.

A request already sent to S3 (CreateMultipartUpload, an abort) takes effect whether or not
we wait for its answer: cancelling the wait only loses the answer (an upload id we then
cannot abort). A thread working on a pool buffer must not have the buffer released under
it. Such steps run in their own task; a cancel waits for that task, undoes what it made if
asked, and only then goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
