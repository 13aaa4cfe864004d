"""The headless front of ``copy s3://… sftp://…``: runs a delivery and reports each object.

Kept apart from :mod:`.run` (the SFTP → S3 front) while delivery has its own, smaller
engine surface; they share the exit codes, the ``--json`` shape (one record a file, then
a summary) and the observers (:mod:`.observe`): one OpenLineage run per delivery with the
reversed datasets (``s3://bucket`` + key in, ``sftp://host:port`` + path out), the hooks
and ``--log-format json``. The engine tells each object on an event bus as an upload's
file: the same live progress block on stderr and the same metrics (``--push-gateway``,
``--metrics-port``; ``direction="s3_to_sftp"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from ..engine.errors import SourceNotFound
from ..engine.events import Direction, EventBus
from ..engine.nightly.manifest import Manifest, iso
from ..engine.plan.delivery import RefusedKey, plan_delivery
from ..engine.s3.operations import open_client
from ..engine.sftp.pool import Logins, SftpPool
from ..engine.transfer.buffers import BufferPool
from ..engine.transfer.delivery_result import INPLACE_RISK, DeliveryResult
from ..engine.transfer.delivery_run import deliver
from ..engine.units import format_size
from ..metrics import SnapshotMetrics, exporting
from ..observe.json_log import JsonLog
from ..observe.lineage import DELIVERY, delivery_row
from ..observe.session import ObservedRun, Observers
from ..paths import state_dir
from ..redaction import register_secret
from ..requests import EXIT_FAILED, EXIT_OK
from ..requests.delivery import DeliveryRequest
from ..tally import FileCounts
from .console import ConsoleProgress
from .heap import settle_heap

_MARKS = {"done": "✓", "skipped": "→", "failed": "✗"}


class DeliveryTally(FileCounts):
    """Counts of a run, and the results' lines as they arrive (nothing kept per file but
    the lineage rows the observers keep, bounded)."""

    def __init__(self, request: DeliveryRequest, observers: Observers | None = None) -> None:
        self.request = request
        self.observers = observers
        self.observed: ObservedRun | None = None
        self.host_key: str | None = None  # the fingerprint the destination showed
        self.started = time.monotonic()
        self.manifest: Manifest | None = None
        self.excluded_count = 0
        self.pending: list[asyncio.Future[None]] = []  # manifest rows of skips and failures
        #: The engine's events of the run (the progress block and the metrics read them).
        self.bus = EventBus()
        #: The run's metrics (exported with --push-gateway / --metrics-port).
        self.metrics = SnapshotMetrics(directions=(Direction.S3_TO_SFTP,))
        super().__init__()

    def exporting(self, buffers: BufferPool) -> contextlib.AbstractAsyncContextManager[object]:
        """The metrics around the run, fed by the engine's events (nothing without
        ``--push-gateway`` / ``--metrics-port``)."""
        return exporting(
            self.bus,
            buffers,
            push_gateway_url=self.request.push_gateway,
            metrics_port=self.request.metrics_port,
            on_warning=self.warn,
            metrics=self.metrics,
        )

    def progress(self) -> ConsoleProgress:
        """The live progress block on stderr (a terminal only; none with --json, -q or
        --log-format json); each object's line is this tally's own."""
        show = (
            not (self.request.quiet or self.request.json or self.json_log is not None)
            and sys.stderr.isatty()
        )
        return ConsoleProgress(self.bus, enabled=show, file_lines=False)

    def manifest_row(self, result: DeliveryResult) -> dict[str, Any]:
        """The ``--manifest`` row of one object (the observers' row, and when)."""
        return {
            **self.row(result),
            "reason": result.message or None,
            "published_by": result.published_by or None,
            "done_file": result.done_file or None,
            "finished": iso(time.time()),
        }

    async def delivered(self, result: DeliveryResult) -> None:
        """A file is in place: its row made durable before its source may be deleted."""
        if self.manifest is not None:
            planned = replace(result, source_deleted=self.request.options.delete_source)
            await self.manifest.write(self.manifest_row(planned))

    def excluded(self, key: str, why: str) -> None:
        """An object the filters leave out: named in a dry run's plan, else only counted."""
        self.excluded_count += 1
        if not self.request.dry_run:
            return
        source = f"s3://{self.request.source.bucket}/{key}"
        if self.request.json:
            record = {"source": source, "status": "excluded", "reason": why}
            print(json.dumps(record, ensure_ascii=False))
        elif not self.request.quiet:
            print(f"{source} excluded ({why})")

    def __call__(self, result: DeliveryResult) -> None:
        self.count(result.status, result.bytes)
        if self.manifest is not None and result.status != "done":
            # a delivered object's row was written (durably) before its source was touched
            self.pending.append(
                asyncio.ensure_future(self.manifest.write(self.manifest_row(result)))
            )
        if self.observed is not None:
            self.observed.row(self.row(result))
        if self.request.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
        if self.json_log is not None:
            failed = result.status == "failed"
            self.json_log.log(
                f"file.{result.status}",
                "error" if failed else "info",
                file=self.remote_url(result) if result.remote_path else None,
                key=result.source,
                error=result.message or None if failed else None,
                message=None if failed else result.message or None,
                bytes=result.bytes,
                verified_by=result.verified_by or None,
                source_deleted=result.source_deleted,
            )
        elif self.request.json:
            return  # the record on stdout says it all
        elif result.status == "failed":
            print(f"sftp-s3-tui: ✗ {result.source}: {result.message}", file=sys.stderr)
        elif not self.request.quiet:
            print(_line(result), file=sys.stderr)

    def warn(self, text: str) -> None:
        """One warning line (a JSON record under --log-format json)."""
        if self.json_log is not None:
            self.json_log.log("warning", "warning", message=text)
        else:
            print(f"sftp-s3-tui: warning: {text}", file=sys.stderr)

    @property
    def json_log(self) -> JsonLog | None:
        return self.observers.json_log if self.observers is not None else None

    def remote_url(self, result: DeliveryResult) -> str:
        return f"{self.request.target.endpoint.display}{result.remote_path}"

    def row(self, result: DeliveryResult) -> dict[str, Any]:
        """The result as the observers' row (what lineage's per-file facet is built from)."""
        return delivery_row(result, self.request.target.endpoint, self.host_key)


def _line(result: DeliveryResult) -> str:
    mark = _MARKS.get(result.status, "?")
    if result.status == "skipped":
        return f"{mark} {result.source} → {result.remote_path} skipped ({result.message})"
    deleted = ", source deleted" if result.source_deleted else ""
    done = f", {result.done_file} written" if result.done_file else ""
    note = f"; {result.message}" if result.message else ""
    return (
        f"{mark} {result.source} → {result.remote_path} ({format_size(result.bytes)}, "
        f"verified by {result.verified_by}{done}{deleted}){note}"
    )


def _run_summary(request: DeliveryRequest) -> dict[str, object]:
    """What a hook's ``/start`` carries: the command and where (no password, no key)."""
    return {
        "command": "copy",
        "direction": DELIVERY,
        "sources": [str(request.source)],
        "dest": request.target.display,
    }


def _observers(request: DeliveryRequest) -> Observers:
    """The delivery's lineage, hooks and JSON log (the same as a copy's; a dry run, which
    moves nothing, tells nobody)."""
    observers: Observers

    def warn(text: str) -> None:
        if observers.json_log is not None:
            observers.json_log.log("warning", "warning", message=text)
        else:
            print(f"sftp-s3-tui: warning: {text}", file=sys.stderr)

    observers = Observers(
        replace(request.observe, hook_url=None) if request.dry_run else request.observe,
        lineage=not request.dry_run,
        job_name=f"deliver:{request.target.endpoint.host}:{request.target.endpoint.port}"
        f"{request.target.path}",
        job_type="DELIVERY",
        on_warning=warn,
    )
    return observers


async def run_delivery(
    request: DeliveryRequest, *, sftp: SftpPool | None = None, logins: Logins | None = None
) -> int:
    """Run (or with ``--dry-run`` only plan) a delivery; the exit code. Lineage (START,
    then COMPLETE or FAIL), the hooks and the JSON log hear of it whatever the outcome.

    ``sftp`` and ``logins``: a pool whose login to the target started before this module
    was imported (:meth:`SftpPool.start_logins`); its error is the run's, as a login's."""
    settle_heap()  # what the imports built; again once connected
    register_secret(request.target.endpoint.password)
    register_secret(request.s3.secret_access_key)
    observers = _observers(request)
    tally = DeliveryTally(request, observers)
    tally.observed = observers.begin(_run_summary(request))
    tally.metrics.drops.run(tally.observed.run_id, "copy")
    code = EXIT_FAILED
    error: str | None = None
    try:
        code = await _deliver(request, tally, sftp, logins)
        return code
    except BaseException as exc:
        error = str(exc) if isinstance(exc, Exception) else "interrupted"
        raise
    finally:
        summary: dict[str, Any] = {
            **_run_summary(request),
            **tally.summary(time.monotonic() - tally.started),
        }
        del summary["summary"]
        if error is not None:
            summary["exit_code"] = EXIT_FAILED
        failed = error if error is not None else None
        if failed is None and code != EXIT_OK:
            failed = f"{tally.failed} of {tally.files} object(s) failed"
        observers.end(tally.observed, summary, ok=failed is None, error=failed)
        await observers.close()


async def _deliver(
    request: DeliveryRequest,
    tally: DeliveryTally,
    pool: SftpPool | None = None,
    logins: Logins | None = None,
) -> int:
    if request.dry_run:
        await _dry_run(request, tally)
    else:
        if request.options.inplace and not request.quiet:
            tally.warn(INPLACE_RISK)
        buffers = BufferPool(request.options.memory_budget)
        display = tally.progress()
        async with (
            pool or SftpPool() as sftp,
            _manifest(request) as manifest,
            tally.exporting(buffers),
        ):
            tally.manifest = manifest
            if logins is not None:
                await logins.wait()
            await sftp.client(request.target.endpoint)  # a refused login: one line, exit 4
            tally.host_key = await sftp.host_key_fingerprint(request.target.endpoint)
            settle_heap()
            try:
                with display:
                    await deliver(
                        request.source,
                        request.target,
                        request.s3,
                        request.options,
                        tally,
                        sftp=sftp,
                        on_delivered=tally.delivered,
                        on_excluded=tally.excluded,
                        bus=tally.bus,
                        buffers=buffers,
                    )
            finally:
                if tally.pending:
                    await asyncio.gather(*tally.pending)
    if tally.files == 0:
        if tally.excluded_count:
            hint = "check --include / --exclude / --filter"
            if request.options.min_age_seconds:
                hint += f" and --min-age ({request.options.min_age_seconds:g} s)"
            raise SourceNotFound(
                f"The filters leave out all {tally.excluded_count} object(s) under "
                f"{request.source}",
                hint,
            )
        raise SourceNotFound(f"No object under {request.source}", "check the bucket and prefix")
    summary = tally.summary(time.monotonic() - tally.started)
    if request.json:
        print(json.dumps(summary), flush=True)
    elif tally.json_log is None and not request.quiet:
        print(
            f"sftp-s3-tui: {tally.copied} delivered, {tally.skipped} skipped, "
            f"{tally.failed} failed ({format_size(tally.bytes)})",
            file=sys.stderr,
        )
    return EXIT_FAILED if tally.failed else EXIT_OK


async def _dry_run(request: DeliveryRequest, tally: DeliveryTally) -> None:
    """The plan only: each key and the path it would get (refused keys fail by name)."""
    async with open_client(request.s3) as s3:
        async for item in plan_delivery(
            s3,
            request.source,
            request.target,
            file_filter=request.options.file_filter,
            on_excluded=tally.excluded,
            min_age_seconds=request.options.min_age_seconds,
        ):
            if isinstance(item, RefusedKey):
                tally(DeliveryResult(item.bucket, item.key, "", "failed", message=str(item.error)))
                continue
            tally.files += 1
            record = {"source": f"s3://{item.bucket}/{item.key}", "path": item.remote_path}
            if request.json:
                print(json.dumps({**record, "status": "planned"}, ensure_ascii=False))
            else:
                print(f"{record['source']} → {record['path']}")


@contextlib.asynccontextmanager
async def _manifest(request: DeliveryRequest) -> AsyncIterator[Manifest | None]:
    """The run's ``--manifest`` (a local path or s3://), closed (merged) at the end."""
    if request.manifest is None:
        yield None
        return
    async with open_client(request.s3) as s3:
        manifest = await Manifest.open(request.manifest, s3=s3, spool_dir=state_dir() / "manifests")
        try:
            yield manifest
        finally:
            await manifest.close()
