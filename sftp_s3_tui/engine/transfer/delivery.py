"""Delivering objects to an SFTP destination (S3 → SFTP): one object, and many in a run.

One object's story (:func:`deliver_object`): describe it (size, ETag, stored checksum,
LastModified) → apply the conflict policy to the final name → create
``.NAME.<token>.partial`` beside it → ranged GETs (If-Match the ETag) fill pool buffers
that go straight into pipelined SFTP writes at their offsets, several parts at once → the
bytes read checked against the object's checksum (CRC64NVME, else the ETag's MD5), the
written size against a final fstat, the mtime set to LastModified → rename into place →
only then, if asked, the object deleted. Any failure, cancel or Ctrl-C removes the
temporary file; nothing is ever written under the final name but a whole, checked file.
Nothing touches local disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..addresses import S3Location
from ..aio import run_to_end
from ..config import ConflictPolicy, MiB, S3Endpoint
from ..digest import b64, crc64nvme
from ..errors import TransferError, VerificationFailed
from ..events import EventBus, PartChanged, PartState, TransferStarted
from ..plan.delivery import DeliveryJob, DeliveryTarget, RefusedKey, plan_delivery
from ..s3.operations import S3Client, delete_object, open_client
from ..s3.reader import ObjectInfo, describe_object, read_range_into
from ..sftp.pool import SftpPool
from ..sftp.writer import RemoteWriter, supports_posix_rename
from .buffers import BufferPool

#: Parts at least this big are hashed in a thread (the loop keeps serving the writes).
_HASH_OFF_LOOP = 1 * MiB


@dataclass(frozen=True)
class DeliveryOptions:
    """Tunables of a delivery run.

    The default conflict policy is ``skip-existing``: a partner may already have picked up
    (or be reading) the file at the final name, so it is never replaced unless asked;
    ``overwrite`` / ``if-newer`` / ``if-different`` replace it atomically with
    ``posix-rename@openssh.com`` only (one line where the server does not offer it).
    """

    part_size: int = 8 * MiB
    parts_in_flight: int = 8  # per object: buffers held at once (ranged GETs + writes)
    files_in_flight: int = 4
    memory_budget: int = 512 * MiB
    conflict: ConflictPolicy = ConflictPolicy.SKIP_EXISTING
    delete_source: bool = False
    sftp_block_size: int = 0  # 0: what the server's limits allow
    sftp_requests: int = 0  # 0: asyncssh's default (128 writes in flight)


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

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

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
        return record


class _Digest:
    """The checks of the bytes read, fed in byte order: CRC64NVME always, MD5 when the
    object's ETag is one (only then can it be compared)."""

    def __init__(self, info: ObjectInfo) -> None:
        self.crc = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if info.single_part_md5 else None

    def update(self, data: memoryview) -> None:
        self.crc = crc64nvme(data, self.crc)
        if self.md5 is not None:
            self.md5.update(data)

    def check(self, info: ObjectInfo) -> str:
        """What the bytes were verified by; :class:`VerificationFailed` on a mismatch."""
        if info.crc64nvme:
            read = b64(self.crc, 8)
            if read != info.crc64nvme:
                raise VerificationFailed(
                    f"The bytes read have CRC64NVME {read}, the store holds {info.crc64nvme}",
                    "nothing was left at the final name; run the copy again",
                )
            return "crc64nvme"
        if info.single_part_md5 is not None and self.md5 is not None:
            if self.md5.digest() != info.single_part_md5:
                raise VerificationFailed(
                    f"The bytes read do not match the ETag's MD5 {info.etag}",
                    "nothing was left at the final name; run the copy again",
                )
            return "md5"
        return ""  # a multipart object without a full-object checksum: size only


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group (a real error before cancels)."""
    errors = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)]
    first = errors[0] if errors else group.exceptions[0]
    if isinstance(first, BaseExceptionGroup):
        return _first_error(first)
    return first


async def _stream(
    s3: S3Client,
    info: ObjectInfo,
    writer: RemoteWriter,
    buffers: BufferPool,
    options: DeliveryOptions,
    progress: _Progress | None = None,
) -> _Digest:
    """Ranged GETs into pool buffers → writes at offsets; the digest fed in byte order.

    Parts start in order, at most ``parts_in_flight`` at once; each waits for the part
    before it to be hashed (never for its write), so reads and writes overlap freely while
    the digest sees the bytes in order.
    """
    digest = _Digest(info)
    part_size = max(1, options.part_size)
    slots = asyncio.Semaphore(max(1, options.parts_in_flight))

    async def part(offset: int, length: int, before: asyncio.Event, hashed: asyncio.Event) -> None:
        number = offset // part_size + 1
        try:
            buffer = await buffers.acquire(length)
            try:
                view = memoryview(buffer)
                if progress is not None:
                    progress.part(number, PartState.READING, length)
                await read_range_into(s3, info, offset, view)
                if progress is not None:
                    progress.part(number, PartState.UPLOADING, length)
                await before.wait()
                if length >= _HASH_OFF_LOOP:
                    await run_to_end(asyncio.to_thread(digest.update, view))
                else:
                    digest.update(view)
                hashed.set()
                await writer.write_at(offset, view)
                if progress is not None:
                    progress.part(number, PartState.DONE, length)
            finally:
                buffers.release(buffer)
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            before = asyncio.Event()
            before.set()
            for offset in range(0, info.size, part_size):
                await slots.acquire()
                hashed = asyncio.Event()
                length = min(part_size, info.size - offset)
                group.create_task(part(offset, length, before, hashed))
                before = hashed
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return digest


@dataclass
class _Progress:
    """One delivery's events on a bus (a front showing it as a row: chunk map, rates)."""

    bus: EventBus
    transfer_id: int
    _since: dict[int, float] = field(default_factory=dict)

    def started(self, size: int, part_size: int) -> None:
        parts = -(-size // part_size)
        self.bus.emit(
            TransferStarted(
                transfer_id=self.transfer_id,
                size=size,
                part_size=part_size,
                part_count=parts,
                multipart=parts > 1,
            )
        )

    def part(self, number: int, state: PartState, size: int) -> None:
        """READING: its GET began; UPLOADING: read, on its way to the SFTP write; DONE:
        written (each step's seconds, as the upload's events carry them)."""
        now = time.monotonic()
        seconds = now - self._since.get(number, now)
        self._since[number] = now
        if state is PartState.DONE:
            del self._since[number]
        self.bus.emit(
            PartChanged(
                transfer_id=self.transfer_id,
                part_number=number,
                state=state,
                size=size,
                seconds=seconds,
            )
        )


async def _conflict(
    writer: RemoteWriter, info: ObjectInfo, policy: ConflictPolicy
) -> tuple[bool, str]:
    """(replace?, why skipped) for the final name under ``policy``; ``""``: go ahead."""
    existing = await writer.exists(writer.final_path)
    if existing is None:
        # Nothing there: a plain rename, which refuses a file that appears meanwhile —
        # unless the policy allows replacing and the server can do so atomically.
        return policy is not ConflictPolicy.SKIP_EXISTING and supports_posix_rename(
            writer.client
        ), ""
    if policy is ConflictPolicy.SKIP_EXISTING:
        return False, "exists"
    mtime = float(existing.mtime or 0)
    if policy is ConflictPolicy.IF_NEWER and mtime >= int(info.last_modified):
        return False, "not newer"
    if (
        policy is ConflictPolicy.IF_DIFFERENT
        and existing.size == info.size
        and int(mtime) == int(info.last_modified)
    ):
        return False, "same size and time"
    return True, ""


async def deliver_object(
    job: DeliveryJob,
    *,
    s3: S3Client,
    sftp: SftpPool,
    target: DeliveryTarget,
    buffers: BufferPool,
    options: DeliveryOptions,
    bus: EventBus | None = None,
    transfer_id: int = 0,
) -> DeliveryResult:
    """Deliver one object (see the module's story); a failure is a result, never raised
    (a cancel is raised, after the temporary file is removed). With a ``bus``, its start
    and its parts are told there as transfer ``transfer_id``'s (the TUI's rows)."""
    progress = _Progress(bus, transfer_id) if bus is not None else None
    info: ObjectInfo | None = None
    writer = RemoteWriter(
        sftp,
        target.endpoint,
        job.remote_path,
        block_size=options.sftp_block_size,
        requests=options.sftp_requests,
    )
    try:
        info = await describe_object(s3, job.bucket, job.key)
        await writer.connect()
        replace, skipped = await _conflict(writer, info, options.conflict)
        if skipped:
            return DeliveryResult(
                job.bucket, job.key, job.remote_path, "skipped", info.size, message=skipped
            )
        await writer.open()
        if progress is not None:
            progress.started(info.size, max(1, options.part_size))
        digest = await _stream(s3, info, writer, buffers, options, progress)
        checked = digest.check(info)
        written = await writer.finish(mtime=info.last_modified)
        if written != info.size:
            raise VerificationFailed(
                f"{writer.temp_path} holds {written} bytes, {info.url} has {info.size}",
                "nothing was left at the final name; run the copy again",
            )
        try:
            await writer.publish(replace=replace)
        except TransferError:
            if not replace and await writer.exists(job.remote_path) is not None:
                # skip-existing lost a race: a file appeared at the final name meanwhile
                await run_to_end(writer.discard())
                return DeliveryResult(
                    job.bucket, job.key, job.remote_path, "skipped", info.size, message="exists"
                )
            raise
        verified_by = f"{checked}+size" if checked else "size"
        deleted = False
        if options.delete_source:
            await delete_object(s3, job.bucket, job.key)
            deleted = True
        return DeliveryResult(
            job.bucket,
            job.key,
            job.remote_path,
            "done",
            info.size,
            verified_by=verified_by,
            source_deleted=deleted,
            etag=info.etag,
            version_id=info.version_id,
        )
    except TransferError as exc:
        left = await run_to_end(writer.discard())
        message = str(exc)
        if not left:
            message += f" (the temporary file {writer.temp_path} could not be removed)"
        size = info.size if info is not None else 0
        return DeliveryResult(job.bucket, job.key, job.remote_path, "failed", size, message=message)
    except BaseException:  # cancelled, Ctrl-C: the temporary file must not outlive us
        await run_to_end(writer.discard())
        raise
    finally:
        writer.release()


async def deliver(
    source: S3Location,
    target: DeliveryTarget,
    s3_endpoint: S3Endpoint,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    *,
    sftp: SftpPool | None = None,
) -> None:
    """Deliver every object of ``source`` into ``target``, ``files_in_flight`` at once,
    under one memory budget; each result is handed to ``on_result`` as it is known."""
    buffers = BufferPool(options.memory_budget)
    async with open_client(s3_endpoint) as s3, sftp or SftpPool() as pool:
        slots = asyncio.Semaphore(max(1, options.files_in_flight))

        async def one(job: DeliveryJob) -> None:
            try:
                on_result(
                    await deliver_object(
                        job, s3=s3, sftp=pool, target=target, buffers=buffers, options=options
                    )
                )
            finally:
                slots.release()

        try:
            async with asyncio.TaskGroup() as group:
                async for job in planned(s3, source, target, on_result):
                    await slots.acquire()
                    group.create_task(one(job))
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None


async def planned(
    s3: S3Client,
    source: S3Location,
    target: DeliveryTarget,
    on_refused: Callable[[DeliveryResult], None],
) -> AsyncIterator[DeliveryJob]:
    """The plan's jobs; a refused key becomes a failed result naming it."""
    async for item in plan_delivery(s3, source, target):
        if isinstance(item, RefusedKey):
            on_refused(DeliveryResult(item.bucket, item.key, "", "failed", message=str(item.error)))
        else:
            yield item
