"""One background lane for blocking notifications (OpenLineage's HTTP client, hook calls):
sent in order, off the event loop, and never able to fail or stall the copy beyond
:meth:`Dispatcher.close`'s bounded wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: How long closing waits for what is still queued (a dead endpoint must not hold the exit).
CLOSE_TIMEOUT_SECONDS = 30.0


class Dispatcher:
    """Runs queued blocking calls one after another in a worker thread, in order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Callable[[], None] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def send(self, call: Callable[[], None]) -> None:
        """Queue ``call``; it runs after everything queued before it."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        self._queue.put_nowait(call)

    async def _work(self) -> None:
        while True:
            call = await self._queue.get()
            if call is None:
                return
            try:
                await asyncio.to_thread(call)
            except Exception:  # a notifier's bug stays a log line
                log.exception("a notification failed")

    async def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Send what is queued (waiting at most ``timeout`` seconds), then stop."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(worker), timeout)
        except TimeoutError:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
