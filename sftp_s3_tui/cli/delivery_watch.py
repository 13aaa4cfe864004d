"""The headless front of ``watch s3://bucket/prefix/ sftp://host/path/``: polls the prefix
and delivers each new object version once (see :mod:`..engine.nightly.delivery_watch`).

It reports as ``copy s3://… sftp://…`` does (:class:`.delivery.DeliveryTally`: a line or a
``--json`` record per object, ``--manifest`` rows, lineage rows, hooks, ``--log-format
json``, the metrics), with one observed run per poll as the SFTP → S3 watch has, and a
``--json`` heartbeat per poll so a supervisor sees it alive. A drop expectation
(``--expect``) counts the objects delivered into the partner's folder (its key's base name
against the pattern), as the SFTP → S3 watch counts the files that landed in S3: what an
on-call person is asked is whether the partner has the files by the deadline, so an object
that appeared but cannot be delivered leaves the drop short. It is checked after each poll
as there: a deadline passed unmet fires the late hook once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..engine.events import Direction
from ..engine.nightly.delivery_watch import (
    DeliveryPollReport,
    DeliveryWatcher,
    DeliveryWatchHooks,
)
from ..engine.nightly.watch import WatchState
from ..engine.s3.operations import check_bucket, open_client
from ..engine.sftp.pool import SftpPool
from ..engine.transfer.buffers import BufferPool
from ..engine.transfer.delivery_result import INPLACE_RISK, DeliveryResult
from ..paths import state_dir
from ..redaction import register_secret
from ..requests import EXIT_FAILED, EXIT_OK
from ..requests.delivery import DeliveryRequest
from .delivery import DeliveryTally, _manifest, _observers, _run_summary
from .drops import WatchDrops
from .heap import settle_heap


def _say(request: DeliveryRequest, tally: DeliveryTally, text: str) -> None:
    """A progress line on stderr (none with -q or --log-format json)."""
    if not request.quiet and tally.json_log is None:
        print(f"sftp-s3-tui: {text}", file=sys.stderr)


async def run_delivery_watch(
    request: DeliveryRequest,
    stop: asyncio.Event,
    *,
    max_polls: int | None = None,
    clock: Callable[[], datetime] | None = None,
    after_poll: Callable[[DeliveryPollReport], None] | None = None,
) -> int:
    """Poll ``request.source`` every ``request.watch_every_seconds`` until ``stop``; exit 0
    when stopped (an object's failure is retried at the next poll), 1 when the manifest
    lacks rows.

    Drop expectations are checked after each poll against ``clock`` (tests pass theirs);
    ``after_poll`` is told each poll's report once that is done."""
    register_secret(request.target.endpoint.password)
    register_secret(request.s3.secret_access_key)
    observers = _observers(request)
    if clock is not None:
        observers.clock = clock
    tally = DeliveryTally(request, observers)
    drops = WatchDrops(
        observers,
        tally.metrics.drops,
        Direction.S3_TO_SFTP,
        json_records=request.json,
        warn=tally.warn,
    )
    summary = {**_run_summary(request), "command": "watch"}
    every = request.watch_every_seconds or 60.0
    poll_started = [time.monotonic()]

    def poll_start(number: int) -> None:
        poll_started[0] = time.monotonic()
        tally.observed = observers.begin({**summary, "poll": number})
        tally.metrics.drops.run(tally.observed.run_id, "watch")

    def on_result(result: DeliveryResult) -> None:
        if result.status == "done":  # in the partner's folder: what a drop counts
            observers.file_landed(result.key)  # matched by its base name
        tally(result)

    def on_poll(poll: DeliveryPollReport) -> None:
        for error in poll.errors:
            tally.warn(error)
        tally.pending = [f for f in tally.pending if not f.done()]
        manifest = tally.manifest
        if manifest is not None and manifest.failure and not stop.is_set():
            _say(request, tally, f"the watch stops: {manifest.failure}")
            stop.set()  # rows cannot be written: every later object would lack one
        record: dict[str, Any] = {
            "poll": poll.number,
            "listed": poll.listed,
            "copied": poll.delivered,
            "skipped": poll.skipped,
            "failed": poll.failed,
            "already_there": poll.already_there,
        }
        if tally.observed is not None:
            failed = f"{poll.failed} object(s) failed" if poll.failed else None
            observers.end(
                tally.observed,
                {
                    **summary,
                    **record,
                    "bytes": poll.bytes,
                    "seconds": round(time.monotonic() - poll_started[0], 3),
                    "errors": poll.errors,
                },
                ok=not poll.failed and not poll.errors,
                error=failed or ("; ".join(poll.errors) or None),
            )
            tally.observed = None
        drops.after_poll()
        if after_poll is not None:
            after_poll(poll)
        if request.json:  # a heartbeat per poll
            print(json.dumps(record), flush=True)

    if request.options.inplace and not request.quiet:
        tally.warn(INPLACE_RISK)
    polls = 0
    state = WatchState.for_watch(
        state_dir() / "watch", [str(request.source)], request.target.display
    )
    buffers = BufferPool(request.options.memory_budget)  # one budget for the whole watch
    try:
        async with (
            SftpPool() as sftp,
            open_client(request.s3) as s3,
            _manifest(request) as manifest,
            tally.exporting(buffers),
        ):
            tally.manifest = manifest
            await check_bucket(s3, request.source.bucket)  # a wrong bucket: one line
            await sftp.client(request.target.endpoint)  # a refused login: one line
            tally.host_key = await sftp.host_key_fingerprint(request.target.endpoint)
            settle_heap()  # the imports and the login live as long as the watch
            _say(
                request,
                tally,
                f"watching {request.source} every {every:g} s into {request.target.display}; "
                f"state in {state.path}",
            )
            watcher = DeliveryWatcher(
                request.source,
                request.target,
                request.options,
                s3=s3,
                sftp=sftp,
                state=state,
                every_seconds=every,
                hooks=DeliveryWatchHooks(
                    on_poll_start=poll_start,
                    on_result=on_result,
                    on_delivered=tally.delivered,
                    on_excluded=tally.excluded,
                    on_poll=on_poll,
                ),
                bus=tally.bus,
                buffers=buffers,
            )
            try:
                polls = await watcher.run(stop, max_polls=max_polls)
            finally:
                if tally.pending:
                    await asyncio.gather(*tally.pending)
    finally:
        state.close()  # the next watch of this prefix into this folder may start
        await observers.close()
    _say(
        request,
        tally,
        f"stopped after {polls} poll(s); {len(state)} object version(s) delivered in total",
    )
    manifest = tally.manifest
    if manifest is not None and (manifest.failure or manifest.upload_error):
        return EXIT_FAILED  # a manifest that lacks rows is a failed run
    return EXIT_OK
