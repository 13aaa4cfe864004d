"""The soak's engine process: runs one copy per JSON line on stdin, answers on stdout.

It runs apart from the test process (which hosts moto, the fault proxies and the faulty S3),
so its RSS is the engine's own. Each answer carries the results and the RSS after the copy.
A request with ``cancel_after_seconds`` cancels every transfer that long after the run starts
(the path Ctrl-C, SIGTERM and quitting the TUI take).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import gc
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import psutil

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
from sftp_s3_tui.engine.errors import TransferError
from sftp_s3_tui.engine.resume.journal import Journal
from sftp_s3_tui.engine.transfer.queue import TransferQueue

WATCHDOG_SECONDS = 90.0


def rss_bytes() -> int:
    """RSS of live memory: after a GC and glibc's malloc_trim (freed arenas returned)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


def _unpickle(text: str) -> Any:
    """A config object the test process sent (pickled: enums and nested options survive)."""
    return pickle.loads(base64.b64decode(text))


async def run_one(request: dict[str, Any]) -> dict[str, Any]:
    sftp: SftpEndpoint = _unpickle(request["sftp"])
    s3: S3Endpoint = _unpickle(request["s3"])
    options: TransferOptions = _unpickle(request["options"])
    journal = Journal(Path(request["journal"]))
    try:
        async with TransferQueue(s3, options, journal=journal) as queue:
            jobs = await queue.expand(sftp, request["source"], parse_s3_url(request["dest"]))
            cancel_after = request.get("cancel_after_seconds")
            if cancel_after is None:
                results = await queue.run(jobs)
            else:  # an interrupt during upload start: Ctrl-C / SIGTERM / quit take this path
                running = asyncio.create_task(queue.run(jobs))
                await asyncio.sleep(float(cancel_after))
                queue.cancel_all()
                results = await running
    except TransferError as exc:
        return {"error": str(exc), "rss": rss_bytes()}
    return {"results": [r.as_json() for r in results], "rss": rss_bytes()}


async def watchdog(seconds: float) -> None:
    """If a copy takes longer than ``seconds``, print every task's stack (a hang's cause)."""
    await asyncio.sleep(seconds)
    print(f"soak worker: a copy runs for over {seconds:.0f} s; tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=20, file=sys.stderr)
    sys.stderr.flush()


async def main() -> None:
    for line in sys.stdin:
        dog = asyncio.create_task(watchdog(WATCHDOG_SECONDS))
        answer = await run_one(json.loads(line))
        dog.cancel()
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
