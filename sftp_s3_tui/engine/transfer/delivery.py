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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..addresses import S3Location
from ..aio import run_to_end
from ..config import ConflictPolicy, MiB, S3Endpoint
from ..digest import b64, crc64nvme, crc64nvme_combine
from ..errors import TransferError, VerificationFailed
from ..plan.delivery import DeliveryJob, DeliveryTarget, RefusedKey, plan_delivery
from ..s3.operations import S3Client, delete_object, open_client
from ..s3.reader import ObjectInfo, describe_object, open_range
from ..sftp.pool import SftpPool
from ..sftp.writer import RemoteWriter, supports_posix_rename
from .buffers import BufferPool

#: Parts at least this big are hashed in a thread (the loop keeps serving the writes).
_HASH_OFF_LOOP = 1 * MiB
#: Each GET stream of one object covers at least this much (a GET costs a round trip and,
#: in moto, a copy of the whole object), and one object is read by at most
#: ``_MAX_STREAMS`` GETs at once.
_STREAM_MIN = 64 * MiB
_MAX_STREAMS = 4


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
    files_in_flight: int = 16  # small objects are round trips: many at once (4: -30%)
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
    """The checks of the bytes read: CRC64NVME always, MD5 when the object's ETag is one
    (only then can it be compared).

    The object may be read as several consecutive segments at once: each segment's bytes
    are fed in order to its own CRC, and the CRCs are combined at the end. MD5 cannot be
    combined, so an object checked by MD5 is read as one segment.
    """

    def __init__(self, info: ObjectInfo, segments: list[tuple[int, int]]) -> None:
        self.segments = segments
        self.crcs = [0] * len(segments)
        self.md5 = hashlib.md5(usedforsecurity=False) if info.single_part_md5 else None
        assert self.md5 is None or len(segments) <= 1, "MD5 needs the bytes in one order"

    def update(self, segment: int, data: memoryview) -> None:
        self.crcs[segment] = crc64nvme(data, self.crcs[segment])
        if self.md5 is not None:
            self.md5.update(data)

    @property
    def crc(self) -> int:
        if not self.crcs:
            return 0  # an empty object
        crc = self.crcs[0]
        for (start, end), more in zip(self.segments[1:], self.crcs[1:], strict=True):
            crc = crc64nvme_combine(crc, more, end - start)
        return crc

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


def _segments(info: ObjectInfo, part_size: int) -> list[tuple[int, int]]:
    """The object's byte ranges ``[start, end)`` read by one GET each, at once.

    One GET for most objects (its parts are read one after another from the same body, so
    only the first byte waits a round trip); a big object whose check is the CRC64NVME (or
    none) gets up to ``_MAX_STREAMS`` GETs of at least ``_STREAM_MIN`` each, on part
    boundaries, for a store that sends each connection at a capped rate.
    """
    if info.size == 0:
        return []
    count = 1
    if info.single_part_md5 is None or info.crc64nvme:
        count = max(1, min(_MAX_STREAMS, info.size // _STREAM_MIN))
    parts = -(-info.size // part_size)
    per_stream = -(-parts // count) * part_size
    return [
        (start, min(info.size, start + per_stream)) for start in range(0, info.size, per_stream)
    ]


async def _stream(
    s3: S3Client,
    info: ObjectInfo,
    writer: RemoteWriter,
    buffers: BufferPool,
    options: DeliveryOptions,
) -> _Digest:
    """Ranged GETs fill pool buffers part by part → writes at offsets; each segment's digest
    fed in byte order.

    The temporary file is created while the first part is read. Each segment (see
    :func:`_segments`) is one GET whose body fills part after part, at
    most ``parts_in_flight`` parts of the object held at once. A filled part is written at
    its offset at once (the write never waits for the digest; the temporary file is only
    renamed once the digest matched) while it is hashed after the part before it; its
    buffer goes back to the pool when both are done. So reading, hashing and writing
    overlap freely.
    """
    part_size = max(1, options.part_size)
    segments = _segments(info, part_size)
    checks = _Digest(info, segments)
    slots = asyncio.Semaphore(max(1, options.parts_in_flight))
    opened = asyncio.Event()

    async def open_file() -> None:
        # to its end even when a failed GET cancels the rest: a file the server created
        # must be known (``writer.created``) to be removed
        await run_to_end(writer.open())
        opened.set()

    async def write(offset: int, view: memoryview) -> None:
        await opened.wait()
        await writer.write_at(offset, view)

    async def digest(segment: int, view: memoryview, before: asyncio.Event) -> None:
        await before.wait()
        if len(view) >= _HASH_OFF_LOOP:
            await run_to_end(asyncio.to_thread(checks.update, segment, view))
        else:
            checks.update(segment, view)

    async def part(
        segment: int,
        offset: int,
        buffer: bytearray,
        before: asyncio.Event,
        hashed: asyncio.Event,
    ) -> None:
        try:
            view = memoryview(buffer)
            async with asyncio.TaskGroup() as both:
                both.create_task(write(offset, view))
                await digest(segment, view, before)
                hashed.set()
        finally:
            buffers.release(buffer)
            slots.release()

    async def read(segment: int, start: int, end: int, group: asyncio.TaskGroup) -> None:
        before = asyncio.Event()
        before.set()
        async with open_range(s3, info, start, end - start) as body:
            for offset in range(start, end, part_size):
                length = min(part_size, end - offset)
                await slots.acquire()
                try:
                    buffer = await buffers.acquire(length)
                except BaseException:
                    slots.release()
                    raise
                try:
                    await body.fill(memoryview(buffer))
                except BaseException:
                    buffers.release(buffer)
                    slots.release()
                    raise
                hashed = asyncio.Event()
                group.create_task(part(segment, offset, buffer, before, hashed))
                before = hashed

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(open_file())  # while the first part is read
            for segment, (start, end) in enumerate(segments):
                group.create_task(read(segment, start, end, group))
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return checks


async def _spread(writer: RemoteWriter, info: ObjectInfo, options: DeliveryOptions) -> None:
    """Write a big object's parts over several connections to a far host (one connection
    moves at most its window per round trip); their logins run meanwhile."""
    parts = -(-info.size // max(1, options.part_size))
    wanted = min(writer.endpoint.connections, parts, max(1, options.parts_in_flight))
    if wanted >= 2 and await writer.sftp.settled_far(writer.endpoint):
        writer.spread(wanted)


async def _look(s3: S3Client, job: DeliveryJob, writer: RemoteWriter) -> tuple[ObjectInfo, Any]:
    """The object's description and what is at the final name (None: nothing), asked at
    once: two round trips in one for every file."""

    async def final_name() -> Any:
        await writer.connect()
        return await writer.exists(writer.final_path)

    try:
        async with asyncio.TaskGroup() as both:
            described = both.create_task(describe_object(s3, job.bucket, job.key))
            found = both.create_task(final_name())
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return described.result(), found.result()


def _conflict(
    writer: RemoteWriter, existing: Any, info: ObjectInfo, policy: ConflictPolicy
) -> tuple[bool, str]:
    """(replace?, why skipped) for the final name under ``policy``, given what is there
    (``existing``: its SFTP attributes, None when nothing); ``""``: go ahead."""
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
) -> DeliveryResult:
    """Deliver one object (see the module's story); a failure is a result, never raised
    (a cancel is raised, after the temporary file is removed)."""
    info: ObjectInfo | None = None
    writer = RemoteWriter(
        sftp,
        target.endpoint,
        job.remote_path,
        block_size=options.sftp_block_size,
        requests=options.sftp_requests,
    )
    try:
        info, existing = await _look(s3, job, writer)
        replace, skipped = _conflict(writer, existing, info, options.conflict)
        if skipped:
            return DeliveryResult(
                job.bucket, job.key, job.remote_path, "skipped", info.size, message=skipped
            )
        await _spread(writer, info, options)
        digest = await _stream(s3, info, writer, buffers, options)
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
    async with sftp or SftpPool() as pool:
        warming = asyncio.ensure_future(_warm_lanes(pool, target))
        try:
            async with open_client(s3_endpoint) as s3:
                await _deliver_all(source, target, options, on_result, s3, pool, buffers)
        finally:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)


async def _warm_lanes(pool: SftpPool, target: DeliveryTarget) -> None:
    """Log in the connections a far host's big objects are written over (a login is about
    ten round trips) while the S3 client is made and the first objects are described.
    Best effort, in the background: a login that fails here is tried again when needed."""
    endpoint = target.endpoint
    if endpoint.connections < 2 or not await pool.settled_far(endpoint):
        return

    async def one(slot: int) -> None:
        try:
            lease = await pool.lease(endpoint, slot=slot)
        except Exception:  # a warm-up never fails the run
            return
        pool.release(endpoint, lease)

    await asyncio.gather(*(one(slot) for slot in range(1, endpoint.connections)))


async def _deliver_all(
    source: S3Location,
    target: DeliveryTarget,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    s3: S3Client,
    pool: SftpPool,
    buffers: BufferPool,
) -> None:
    """The body of :func:`deliver`: ``files_in_flight`` objects at once."""
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
