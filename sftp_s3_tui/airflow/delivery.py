"""What one Airflow delivery task does, without Airflow: S3 → SFTP on the engine's delivery
(:func:`~sftp_s3_tui.engine.transfer.delivery_run.deliver`), one result and one lineage row per
object, and the task's summary. The operator (:mod:`.delivery_operator`) is a shell over it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.events import Direction, EventBus
from ..engine.sftp.pool import SftpPool
from ..engine.transfer.buffers import BufferPool
from ..engine.transfer.delivery_result import DeliveryResult
from ..engine.transfer.delivery_run import deliver
from ..engine.units import format_size
from ..metrics import exporting
from ..observe.lineage import delivery_row
from ..requests.delivery import DeliveryRequest

log = logging.getLogger(__name__)


@dataclass
class DeliveryRun:
    """The results of one delivery task: counts, each object's record and lineage row."""

    request: DeliveryRequest
    on_row: Callable[[dict[str, Any]], None] | None = None  # the observers' (lineage, hooks)
    host_key: str | None = None  # the fingerprint the destination showed
    results: list[DeliveryResult] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __call__(self, result: DeliveryResult) -> None:
        self.results.append(result)
        if result.status == "failed":
            log.error("✗ %s: %s", result.source, result.message)
        elif result.status == "skipped":
            log.info("skipped %s → %s (%s)", result.source, result.remote_path, result.message)
        else:
            deleted = ", source deleted" if result.source_deleted else ""
            log.info(
                "delivered %s → %s: %s, verified by %s%s",
                result.source,
                result.remote_path,
                format_size(result.bytes),
                result.verified_by,
                deleted,
            )
        if self.on_row is not None:
            self.on_row(self.row(result))

    def row(self, result: DeliveryResult) -> dict[str, Any]:
        """The result as a lineage row (reversed datasets: the object in, the file out)."""
        return delivery_row(result, self.request.target.endpoint, self.host_key)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def summary(self) -> dict[str, Any]:
        """The task's XCom: counts, bytes and one record (source, path, status, verified
        by) per object."""
        return {
            "files": len(self.results),
            "delivered": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "bytes": sum(r.bytes for r in self.results if r.status == "done"),
            "seconds": round(time.monotonic() - self.started, 3),
            "objects": [r.as_json() for r in self.results],
        }

    def failure_message(self) -> str | None:
        """One line naming every object that was not delivered, or None."""
        failed = [r for r in self.results if r.status == "failed"]
        if not failed:
            return None
        lines = [f"{r.source}: {r.message}" for r in failed]
        return f"{len(failed)} of {len(self.results)} object(s) failed: " + "; ".join(lines)


async def deliver_for_task(
    run: DeliveryRun,
    *,
    push_gateway: str | None = None,
    metric_labels: Mapping[str, str] | None = None,
) -> DeliveryRun:
    """Deliver ``run.request``'s objects; raises the engine's error for what stops the whole
    task (a refused login, a missing bucket), leaves per-object failures in the results.
    With ``push_gateway``, the sampler the CLI and TUI use pushes the delivery's metrics
    (``direction="s3_to_sftp"``) during the run and once at its end, grouped by
    ``metric_labels``, as the upload task does (an unreachable gateway only warns)."""
    request = run.request
    bus = EventBus()
    buffers = BufferPool(request.options.memory_budget)
    async with (
        SftpPool() as sftp,
        exporting(
            bus,
            buffers,
            push_gateway_url=push_gateway,
            instance="airflow",
            labels=metric_labels,
            on_warning=lambda text: log.warning("metrics: %s", text),
            direction=Direction.S3_TO_SFTP,
        ),
    ):
        await sftp.client(request.target.endpoint)  # a refused login: one line, before S3
        run.host_key = await sftp.host_key_fingerprint(request.target.endpoint)
        await deliver(
            request.source,
            request.target,
            request.s3,
            request.options,
            run,
            sftp=sftp,
            bus=bus,
            buffers=buffers,
        )
    return run
