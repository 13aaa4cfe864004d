"""What became of one delivered object (:class:`DeliveryResult`) and how a delivery run's
objects are told on a bus as transfers (:class:`DeliveryEvents`): the fronts, the metrics
and lineage read these, apart from the object's story in :mod:`.delivery`."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import Direction, EventBus, TransferQueued, TransferResult, TransferState
from ..plan.delivery import DeliveryJob
from .delivery_stream import Progress

_STATES = {
    "done": TransferState.DONE,
    "skipped": TransferState.SKIPPED,
    "failed": TransferState.FAILED,
}


#: What --inplace risks, said once per run by the fronts.
INPLACE_RISK = (
    "--inplace writes straight to the final name: a partner polling the folder may pick up "
    "a partial file, and a failed delivery removes it (a file it replaced is lost)"
)


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one object: ``done``, ``skipped`` or ``failed``, and why."""

    bucket: str
    key: str
    remote_path: str
    status: str
    bytes: int = 0
    verified_by: str = ""
    message: str = ""
    source_deleted: bool = False
    etag: str = ""  # of the object read (what lineage and a manifest name it by)
    version_id: str | None = None
    published_by: str = ""  # posix-rename, rename, rename aside, in place
    done_file: str = ""  # the marker written after the file was in place

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def transfer_result(self, seconds: float) -> TransferResult:
        """The result as an upload's (what a front's row, the sampler and the progress
        block read from :class:`TransferFinished`)."""
        status = _STATES.get(self.status, TransferState.CANCELLED)
        message = self.message
        if status is TransferState.DONE:  # with what was resumed or cleaned up on the way
            said = f"→ {self.remote_path} (verified by {self.verified_by})"
            message = f"{said}; {self.message}" if self.message else said
        elif status is TransferState.SKIPPED:
            message = f"{self.remote_path}: {self.message}"
        return TransferResult(
            source=self.source,
            bucket=self.bucket,
            key=self.key,
            bytes=self.bytes,
            seconds=seconds,
            parts=0,
            sha256=None,
            status=status,
            message=message,
            verified_by=self.verified_by,
        )

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "source": self.source,
            "path": self.remote_path,
            "status": self.status,
            "bytes": self.bytes,
        }
        if self.verified_by:
            record["verified_by"] = self.verified_by
        if self.message:
            record["message"] = self.message
        if self.source_deleted:
            record["source_deleted"] = True
        if self.published_by:
            record["published_by"] = self.published_by
        if self.done_file:
            record["done_file"] = self.done_file
        return record


class DeliveryEvents:
    """A delivery run's objects told on a bus as an upload queue tells its files: each one
    queued under a transfer id of its own (``new_id``: the TUI shares the queue's ids), then
    its :class:`Progress` (running, plan, parts, end). The metrics and the CLI's progress
    block read them (``direction`` ``s3_to_sftp``)."""

    def __init__(self, bus: EventBus, new_id: Callable[[], int] | None = None) -> None:
        self.bus = bus
        self._ids = itertools.count(1)
        self.new_id: Callable[[], int] = new_id or (lambda: next(self._ids))

    def queued(self, job: DeliveryJob) -> int:
        """A row for ``job`` (its listed size; an exact key's is known once described)."""
        transfer_id = self.new_id()
        self.bus.emit(
            TransferQueued(
                transfer_id=transfer_id,
                source=f"s3://{job.bucket}/{job.key}",
                bucket=job.bucket,
                key=job.key,
                size=job.size,
                direction=Direction.S3_TO_SFTP,
            )
        )
        return transfer_id

    def progress(self, transfer_id: int) -> Progress:
        return Progress(self.bus, transfer_id)

    def refused(self, result: DeliveryResult) -> None:
        """A key refused by name (or otherwise failed before it could start): queued and
        failed at once, so it counts as the other failures do."""
        transfer_id = self.queued(DeliveryJob(result.bucket, result.key, ""))
        self.progress(transfer_id).finished(result.transfer_result(0.0))
