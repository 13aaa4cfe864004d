"""The headless front of ``copy s3://… sftp://…``: runs a delivery and reports each object.

Kept apart from :mod:`.headless` (the SFTP → S3 front) while delivery has its own, smaller
engine surface; they share the exit codes and the ``--json`` shape (one record a file, then
a summary).
"""

from __future__ import annotations

import json
import sys
import time

from .engine.errors import SourceNotFound
from .engine.plan.delivery import RefusedKey, plan_delivery
from .engine.s3.operations import open_client
from .engine.sftp.pool import SftpPool
from .engine.transfer.delivery import DeliveryResult, deliver
from .engine.units import format_size
from .requests import EXIT_FAILED, EXIT_OK, DeliveryRequest

_MARKS = {"done": "✓", "skipped": "→", "failed": "✗"}


class DeliveryTally:
    """Counts of a run, and the results' lines as they arrive (nothing kept per file)."""

    def __init__(self, request: DeliveryRequest) -> None:
        self.request = request
        self.files = self.copied = self.skipped = self.failed = self.bytes = 0

    def __call__(self, result: DeliveryResult) -> None:
        self.files += 1
        if result.status == "done":
            self.copied += 1
            self.bytes += result.bytes
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        if self.request.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
        elif result.status == "failed":
            print(f"sftp-s3-tui: ✗ {result.source}: {result.message}", file=sys.stderr)
        elif not self.request.quiet:
            print(_line(result), file=sys.stderr)

    def summary(self, seconds: float) -> dict[str, object]:
        return {
            "summary": True,
            "files": self.files,
            "copied": self.copied,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(seconds, 3),
            "exit_code": EXIT_FAILED if self.failed else EXIT_OK,
        }


def _line(result: DeliveryResult) -> str:
    mark = _MARKS.get(result.status, "?")
    if result.status == "skipped":
        return f"{mark} {result.source} → {result.remote_path} skipped ({result.message})"
    deleted = ", source deleted" if result.source_deleted else ""
    return (
        f"{mark} {result.source} → {result.remote_path} ({format_size(result.bytes)}, "
        f"verified by {result.verified_by}{deleted})"
    )


async def run_delivery(request: DeliveryRequest) -> int:
    """Run (or with ``--dry-run`` only plan) a delivery; the exit code."""
    started = time.monotonic()
    tally = DeliveryTally(request)
    if request.dry_run:
        await _dry_run(request, tally)
    else:
        async with SftpPool() as sftp:
            await sftp.client(request.target.endpoint)  # a refused login: one line, exit 4
            await deliver(
                request.source, request.target, request.s3, request.options, tally, sftp=sftp
            )
    if tally.files == 0:
        raise SourceNotFound(f"No object under {request.source}", "check the bucket and prefix")
    summary = tally.summary(time.monotonic() - started)
    if request.json:
        print(json.dumps(summary), flush=True)
    elif not request.quiet:
        print(
            f"sftp-s3-tui: {tally.copied} delivered, {tally.skipped} skipped, "
            f"{tally.failed} failed ({format_size(tally.bytes)})",
            file=sys.stderr,
        )
    return EXIT_FAILED if tally.failed else EXIT_OK


async def _dry_run(request: DeliveryRequest, tally: DeliveryTally) -> None:
    """The plan only: each key and the path it would get (refused keys fail by name)."""
    async with open_client(request.s3) as s3:
        async for item in plan_delivery(s3, request.source, request.target):
            if isinstance(item, RefusedKey):
                tally(DeliveryResult(item.bucket, item.key, "", "failed", message=str(item.error)))
                continue
            tally.files += 1
            record = {"source": f"s3://{item.bucket}/{item.key}", "path": item.remote_path}
            if request.json:
                print(json.dumps({**record, "status": "planned"}, ensure_ascii=False))
            else:
                print(f"{record['source']} → {record['path']}")
