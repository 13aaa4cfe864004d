"""Typed events the engine emits; the UI and the metrics sampler consume them.

The engine never calls into a consumer's objects: it emits frozen dataclasses on an
:class:`EventBus`, and each subscriber turns them into what it needs (Textual messages,
sampler counters, a progress bar).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .plan.preview import PlannedFile
    from .s3.checksums import StoreCapabilities
    from .sftp.server_profile import ServerProfile


class TransferState(StrEnum):
    """Where a transfer is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


class Direction(StrEnum):
    """Which way a transfer moves bytes: the metrics' ``direction`` label."""

    SFTP_TO_S3 = "sftp_to_s3"
    S3_TO_SFTP = "s3_to_sftp"


_FINISHED = frozenset(
    {TransferState.DONE, TransferState.FAILED, TransferState.SKIPPED, TransferState.CANCELLED}
)


class PartState(StrEnum):
    """One part's state, as the chunk map shows it."""

    WAITING = "waiting"
    READING = "reading"
    UPLOADING = "uploading"
    DONE = "done"
    RETRIED = "retried"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What happened to one file; the shape of ``copy --json`` output."""

    source: str
    bucket: str
    key: str
    bytes: int
    seconds: float
    parts: int
    sha256: str | None
    status: TransferState
    message: str = ""
    resumed_parts: int = 0
    # What the object in S3 was compared by: crc64nvme-full-object, crc32c-composite,
    # md5-etag, size-only, or none (nothing compared).
    verified_by: str = ""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "source": self.source,
            "bucket": self.bucket,
            "key": self.key,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "parts": self.parts,
            "sha256": self.sha256,
            "status": self.status.value,
        }
        if self.message:
            out["message"] = self.message
        if self.resumed_parts:
            out["resumed_parts"] = self.resumed_parts
        if self.verified_by:
            out["verified_by"] = self.verified_by
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEvent:
    """Base of every event; ``at`` is a ``time.monotonic()`` stamp."""

    transfer_id: int
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferQueued(EngineEvent):
    source: str
    bucket: str
    key: str
    size: int
    #: Which way its bytes go (the sampler splits its totals by it).
    direction: Direction = Direction.SFTP_TO_S3


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStarted(EngineEvent):
    """The transfer has its plan: ``part_count`` parts of ``part_size`` bytes."""

    size: int
    part_size: int
    part_count: int
    multipart: bool
    resumed_parts: tuple[int, ...] = ()
    #: Which way its bytes go (told again: a late subscriber may not have seen it queued).
    direction: Direction = Direction.SFTP_TO_S3


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStateChanged(EngineEvent):
    state: TransferState


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferNotice(EngineEvent):
    """Something the user should know that is not a failure (a restart, a raised part size)."""

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreChecked(EngineEvent):
    """The first transfer to a store and bucket probed what checksums it honours."""

    capabilities: StoreCapabilities


@dataclass(frozen=True, slots=True, kw_only=True)
class PartChanged(EngineEvent):
    """A part moved to ``state``; ``size`` is its byte count, ``seconds`` the step's duration.

    READING: the part's SFTP read began. UPLOADING: it was read (``seconds`` = read time) and
    waits for or is in its upload. DONE: S3 accepted it (``seconds`` = upload time). A
    delivery (S3 → SFTP) tells the same steps the other way: READING its ranged GET,
    UPLOADING read from S3, DONE written to the SFTP server.
    RETRIED: a read or upload attempt failed and will be tried again (``side`` says which).
    """

    part_number: int
    state: PartState
    size: int
    seconds: float = 0.0
    side: Literal["sftp", "s3", ""] = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferChecking(EngineEvent):
    """A check after the bytes are written that takes a while, and how far it is, so a
    long one shows as moving instead of looking like a hang: a delivery's
    ``--verify-readback`` reads the temporary file back over SFTP (``check`` "reading
    back"), ``bytes_done`` of ``size`` so far (0 at its start, ``size`` at its end)."""

    check: str
    bytes_done: int
    size: int

    @property
    def fraction(self) -> float:
        """Share done, 0..1 (1 for an empty file)."""
        return min(1.0, self.bytes_done / self.size) if self.size > 0 else 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFinished(EngineEvent):
    result: TransferResult


@dataclass(frozen=True, slots=True, kw_only=True)
class SftpLinkMeasured(EngineEvent):
    """An SFTP host's measured round trip and the read ceiling it implies (per host,
    ``transfer_id`` 0): one connection moves at most its window per round trip, so
    ``ceiling_bytes_per_second = window_bytes × connections ÷ rtt_seconds``."""

    host: str
    rtt_seconds: float
    window_bytes: int
    connections: int
    ceiling_bytes_per_second: float
    #: What the server grants (read size, sessions, extensions): None before it is known.
    server: ServerProfile | None = None


EventHandler = Callable[[EngineEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSelected(EngineEvent):
    """A nightly run chose its files and starts copying them now (or, for a dry run,
    planning them); ``transfer_id`` 0. ``files`` are ready (``bytes`` in all), ``waiting``
    holds each file the readiness gate holds back (source, why), ``excluded`` counts the
    files the filters left out."""

    dest: str
    files: int
    bytes: int
    waiting: tuple[tuple[str, str], ...] = ()
    excluded: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FilePlanned(EngineEvent):
    """A dry run decided what it would do with one file (``transfer_id`` 0)."""

    planned: PlannedFile


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestKept(EngineEvent):
    """A run's manifest could not be uploaded when it closed (``transfer_id`` 0): its rows
    are kept in the local spool ``path``, and the next run with the same ``target`` merges
    them."""

    path: str
    target: str
    error: str


class EventBus:
    """Synchronous fan-out of engine events to subscribers (cheap handlers only)."""

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Add ``handler``; returns a function that removes it."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def emit(self, event: EngineEvent) -> None:
        for handler in tuple(self._handlers):
            handler(event)
