"""Continuing a delivery a killed run left: its record says which temporary file and how far
it was written (with the CRC64NVME of that prefix); the prefix is read back and checked before
it is trusted, else the file is removed and the delivery starts over, saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import MiB
from ..errors import DestinationRefused, TransferError
from ..resume.delivery_record import DeliveryRecord, DeliveryState
from ..s3.reader import ObjectInfo
from ..sftp.writer import RemoteWriter
from .buffers import BufferPool
from .delivery_stream import Digest

#: The kept prefix's read back as a row and the progress block name it
#: (``TransferChecking.check``): a big prefix takes a while before any byte is sent.
CHECKING_KEPT = "checking the kept part"


async def verified_prefix(
    writer: RemoteWriter,
    info: ObjectInfo,
    left: DeliveryState,
    buffers: BufferPool,
    *,
    sha256: bool = False,
    whole_sha256: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> Digest | None:
    """The digest of the left temporary file's first ``left.written`` bytes, read back over
    SFTP, when they hash to the CRC64NVME the record holds; None when they do not (or the
    file is shorter): then the delivery starts over.

    ``sha256`` (``--verify-readback``): the prefix's SHA-256 too, taken from these bytes read
    back, since a resume does not read the prefix from S3 again. It stands for the bytes
    read from S3 only because the same bytes matched the CRC64NVME the killed run recorded
    of what it read from S3 (and the whole object's CRC64NVME, prefix included, is checked
    against the store's at the end); the final read back then shows the prefix is still
    those bytes once the rest is written. ``whole_sha256``: the same, as the start of the
    whole file's SHA-256 (``--verify-server-hash``). ``on_progress`` hears the bytes read
    back so far: 0 first, then after each chunk."""
    digest = Digest(info, [(0, left.written)], sha256=sha256, whole_sha256=whole_sha256)
    chunk = min(8 * MiB, max(1, left.written))
    offset = 0
    buffer = await buffers.acquire(chunk)  # the budget counts the chunk read back
    try:
        if on_progress is not None:
            on_progress(0)
        async for data in writer.read_back(left.temp_path, left.written, chunk):
            digest.update(0, memoryview(data))
            offset += len(data)
            if on_progress is not None:
                on_progress(offset)
    finally:
        buffers.release(buffer)
    if offset != left.written or digest.crc != left.crc64nvme:
        return None
    return digest


async def clear_left(
    writer: RemoteWriter, record: DeliveryRecord, left: DeliveryState, why: str = ""
) -> str:
    """Remove the temporary file a killed run left (its record says which); what was done."""
    if not await writer.remove_left(left.temp_path):
        raise DestinationRefused(
            f"{left.temp_path}, left by an interrupted run, could not be removed",
            "remove it by hand; nothing new was written",
        )
    record.forget()
    said = f"the temporary file {left.temp_path} of an interrupted run was removed"
    return f"{said} ({why}; started over)" if why else said


async def resumable(
    writer: RemoteWriter,
    info: ObjectInfo,
    left: DeliveryState,
    buffers: BufferPool,
    inplace: bool,
    *,
    sha256: bool = False,
    whole_sha256: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Digest | None, str]:
    """(the digest of the left file's verified prefix, "") when the delivery can continue
    from it; (None, why not) when it must start over (``on_progress``: as
    :func:`verified_prefix`'s)."""
    if inplace or left.inplace:
        return None, "--inplace does not resume"
    if (left.etag, left.version_id, left.size) != (info.etag, info.version_id, info.size):
        now = info.version_id or info.etag
        return None, f"the object changed since (it was {left.version_id or left.etag}, now {now})"
    if left.written <= 0:
        return None, "none of it was recorded as written"
    try:
        digest = await verified_prefix(
            writer,
            info,
            left,
            buffers,
            sha256=sha256,
            whole_sha256=whole_sha256,
            on_progress=on_progress,
        )
    except TransferError as exc:
        return None, f"it could not be read back: {exc.message}"
    if digest is None:
        return None, f"its first {left.written} bytes did not match the record"
    return digest, ""


#: A delivery in progress records how far it got at most this often (a few hundred bytes of
#: local disk, fsync'd, whatever the speed).
CHECKPOINT_SECONDS = 1.0


class Checkpoints:
    """The frontier's listener: records ``(written, crc)`` at most every CHECKPOINT_SECONDS;
    :meth:`flush` records the last one heard (a pause: the next attempt goes on from it)."""

    def __init__(self, record: DeliveryRecord, state: DeliveryState) -> None:
        self.record = record
        self.current = state
        self._heard = (state.written, state.crc64nvme)
        self._last = time.monotonic()

    def __call__(self, end: int, crc: int) -> None:
        self._heard = (end, crc)
        now = time.monotonic()
        if now - self._last >= CHECKPOINT_SECONDS:
            self.flush()
            self._last = now

    def flush(self) -> None:
        end, crc = self._heard
        if end > self.current.written:
            self.current = self.record.checkpoint(self.current, end, crc)


def checkpoints(record: DeliveryRecord, state: DeliveryState) -> Checkpoints:
    """The frontier's listener for ``record`` (see :class:`Checkpoints`)."""
    return Checkpoints(record, state)
