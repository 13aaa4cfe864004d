"""Delivering objects to an SFTP destination (S3 → SFTP): one object, and many in a run.

One object's story (:func:`deliver_object`): describe it (size, ETag, stored checksum,
LastModified) → claim its record (a killed run's temporary file is resumed from its
read-back, verified prefix when the object is unchanged, else removed) → apply the conflict
policy to the final name → record, then create ``.NAME.<token>.partial`` beside it → ranged
GETs (If-Match the ETag) fill pool buffers that go straight into pipelined SFTP writes at
their offsets, several parts at once, the written frontier checkpointed → the bytes read
checked against the object's checksum (CRC64NVME, else the ETag's MD5), the written size
against a final fstat, the mtime set to LastModified → rename into place (posix-rename, or
old aside / new in / old removed where the server has no posix-rename) → ``--done-file``'s
marker → only then, if asked, the object deleted (only if it is still the one delivered).
Any failure, cancel or Ctrl-C removes the temporary file; nothing is ever written under the
final name but a whole, checked file — except with ``--inplace`` (see :data:`INPLACE_RISK`).
Nothing touches local disk but the record.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from dataclasses import replace as replace_result
from pathlib import Path
from typing import Any

from ..addresses import S3Location
from ..aio import run_to_end
from ..config import ConflictPolicy, MiB, S3Endpoint
from ..digest import b64, crc64nvme, crc64nvme_combine
from ..errors import DestinationRefused, TransferError, VerificationFailed
from ..events import EventBus, PartChanged, PartState, TransferStarted
from ..plan.delivery import DeliveryJob, DeliveryTarget, RefusedKey, plan_delivery
from ..plan.filters import FileFilter
from ..resume.delivery_record import DeliveryRecord, DeliveryState
from ..s3.operations import PreconditionFailed, S3Client, delete_object, open_client
from ..s3.reader import ObjectInfo, describe_object, open_range
from ..sftp.pool import SftpPool
from ..sftp.writer import RemoteWriter
from .buffers import BufferPool
from .verify import GONE, honours_if_match

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
    ``posix-rename@openssh.com``, else by renaming the old file aside first (see
    :meth:`RemoteWriter.publish`).
    """

    part_size: int = 8 * MiB
    parts_in_flight: int = 8  # per object: buffers held at once (ranged GETs + writes)
    files_in_flight: int = 4
    memory_budget: int = 512 * MiB
    conflict: ConflictPolicy = ConflictPolicy.SKIP_EXISTING
    delete_source: bool = False
    sftp_block_size: int = 0  # 0: what the server's limits allow
    sftp_requests: int = 0  # 0: asyncssh's default (128 writes in flight)
    #: --inplace: write to the final name (servers that forbid rename; see INPLACE_RISK).
    inplace: bool = False
    #: --done-file SUFFIX: an empty NAME+SUFFIX written once NAME is in place.
    done_suffix: str = ""
    #: --include / --exclude / --filter / sizes / times over a prefix's objects.
    file_filter: FileFilter | None = None
    #: Where each delivery in progress is recorded (its temporary file, for the next run
    #: after a kill -9); None: not recorded.
    record_dir: Path | None = None


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


class _Digest:
    """The checks of the bytes read: CRC64NVME always, MD5 when the object's ETag is one
    (only then can it be compared).

    The object (or what a resume has left of it, after a verified ``prefix``) may be read as
    several consecutive segments at once: each segment's bytes are fed in order to its own
    CRC, and the CRCs are combined at the end. MD5 cannot be combined, so an object checked
    by MD5 is read as one segment.
    """

    def __init__(
        self,
        info: ObjectInfo,
        segments: list[tuple[int, int]],
        prefix: _Digest | None = None,
    ) -> None:
        self.segments = segments
        self.crcs = [0] * len(segments)
        self.base_crc = prefix.crc if prefix is not None else 0
        self.base_length = segments[0][0] if segments else 0
        if prefix is not None and prefix.md5 is not None:
            self.md5: Any = prefix.md5.copy()
        else:
            # MD5 only where it is the check: a CRC64NVME, when the store holds one, is
            # checked instead (and lets a big object be read in several segments)
            needed = info.single_part_md5 is not None and not info.crc64nvme
            self.md5 = hashlib.md5(usedforsecurity=False) if needed else None
        assert self.md5 is None or len(segments) <= 1, "MD5 needs the bytes in one order"

    def update(self, segment: int, data: memoryview) -> None:
        self.crcs[segment] = crc64nvme(data, self.crcs[segment])
        if self.md5 is not None:
            self.md5.update(data)

    def first_through(self, end: int) -> int:
        """The CRC of the bytes ``[0, end)`` while the first segment is fed up to ``end``."""
        if not self.segments:
            return self.base_crc
        if self.base_length == 0:
            return self.crcs[0]
        return crc64nvme_combine(self.base_crc, self.crcs[0], end - self.segments[0][0])

    @property
    def crc(self) -> int:
        if not self.crcs:
            return self.base_crc  # an empty object, or nothing left after the prefix
        crc = self.first_through(self.segments[0][1])
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


class _Frontier:
    """The bytes ``[0, end)`` written in order, with their CRC64NVME: what a checkpoint
    records (parts finish out of order; the frontier moves only over finished ones)."""

    def __init__(self, start: int, crc: int) -> None:
        self.end = start
        self.crc = crc
        self._finished: dict[int, tuple[int, int]] = {}  # offset → (end, crc at end)

    def finished(self, offset: int, end: int, crc: int) -> bool:
        """A part is on the server; True when the frontier moved."""
        self._finished[offset] = (end, crc)
        moved = False
        while self.end in self._finished:
            self.end, self.crc = self._finished.pop(self.end)
            moved = True
        return moved


def _segments(info: ObjectInfo, part_size: int, start: int = 0) -> list[tuple[int, int]]:
    """The object's byte ranges ``[begin, end)`` from ``start`` on, read by one GET each, at
    once.

    One GET for most objects (its parts are read one after another from the same body, so
    only the first byte waits a round trip); a big object whose check is the CRC64NVME (or
    none) gets up to ``_MAX_STREAMS`` GETs of at least ``_STREAM_MIN`` each, on part
    boundaries, for a store that sends each connection at a capped rate.
    """
    left = info.size - start
    if left <= 0:
        return []
    count = 1
    if info.single_part_md5 is None or info.crc64nvme:
        count = max(1, min(_MAX_STREAMS, left // _STREAM_MIN))
    parts = -(-left // part_size)
    per_stream = -(-parts // count) * part_size
    return [
        (begin, min(info.size, begin + per_stream)) for begin in range(start, info.size, per_stream)
    ]


async def _stream(
    s3: S3Client,
    info: ObjectInfo,
    writer: RemoteWriter,
    buffers: BufferPool,
    options: DeliveryOptions,
    *,
    prefix: _Digest | None = None,
    start: int = 0,
    on_written: Callable[[int, int], None] | None = None,
    progress: _Progress | None = None,
) -> _Digest:
    """Ranged GETs fill pool buffers part by part → writes at offsets; each segment's digest
    fed in byte order.

    Each segment (see :func:`_segments`) is one GET whose body fills part after part, at
    most ``parts_in_flight`` parts of the object held at once (one GET per part made moto
    copy the whole object for every range: 64 copies of a 512 MiB object). A filled part is
    written at its offset at once (the write never waits for the digest; the temporary file
    is only renamed once the digest matched) while it is hashed after the part before it;
    its buffer goes back to the pool when both are done. So reading, hashing and writing
    overlap freely. A resume starts at ``start`` after the verified ``prefix``;
    ``on_written(end, crc)`` hears each move of the written frontier of the first segment
    (what a checkpoint records: a resume continues from there).
    """
    part_size = max(1, options.part_size)
    segments = _segments(info, part_size, start)
    checks = _Digest(info, segments, prefix)
    frontier = _Frontier(start, checks.base_crc)
    slots = asyncio.Semaphore(max(1, options.parts_in_flight))

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
        number = offset // part_size + 1
        try:
            view = memoryview(buffer)
            async with asyncio.TaskGroup() as both:
                written = both.create_task(writer.write_at(offset, view))
                await digest(segment, view, before)
                crc = checks.first_through(offset + len(view)) if segment == 0 else 0
                hashed.set()
                await written
            if progress is not None:
                progress.part(number, PartState.DONE, len(view))
            moved = segment == 0 and frontier.finished(offset, offset + len(view), crc)
            if moved and on_written is not None:
                on_written(frontier.end, frontier.crc)
        finally:
            buffers.release(buffer)
            slots.release()

    async def read(segment: int, begin: int, end: int, group: asyncio.TaskGroup) -> None:
        before = asyncio.Event()
        before.set()
        async with open_range(s3, info, begin, end - begin) as body:
            for offset in range(begin, end, part_size):
                length = min(part_size, end - offset)
                number = offset // part_size + 1
                await slots.acquire()
                try:
                    buffer = await buffers.acquire(length)
                except BaseException:
                    slots.release()
                    raise
                try:
                    if progress is not None:
                        progress.part(number, PartState.READING, length)
                    await body.fill(memoryview(buffer))
                except BaseException:
                    buffers.release(buffer)
                    slots.release()
                    raise
                if progress is not None:
                    progress.part(number, PartState.UPLOADING, length)
                hashed = asyncio.Event()
                group.create_task(part(segment, offset, buffer, before, hashed))
                before = hashed

    try:
        async with asyncio.TaskGroup() as group:
            for segment, (begin, end) in enumerate(segments):
                group.create_task(read(segment, begin, end, group))
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return checks


async def _verified_prefix(
    writer: RemoteWriter, info: ObjectInfo, left: DeliveryState, buffers: BufferPool
) -> _Digest | None:
    """The digest of the left temporary file's first ``left.written`` bytes, read back over
    SFTP, when they hash to the CRC64NVME the record holds; None when they do not (or the
    file is shorter): then the delivery starts over."""
    digest = _Digest(info, [(0, left.written)])
    chunk = min(8 * MiB, max(1, left.written))
    offset = 0
    buffer = await buffers.acquire(chunk)  # the budget counts the chunk read back
    try:
        async for data in writer.read_back(left.temp_path, left.written, chunk):
            digest.update(0, memoryview(data))
            offset += len(data)
    finally:
        buffers.release(buffer)
    if offset != left.written or digest.crc != left.crc64nvme:
        return None
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


async def _spread(writer: RemoteWriter, info: ObjectInfo, options: DeliveryOptions) -> None:
    """Write a big object's parts over several connections to a far host (one connection
    moves at most its window per round trip); their logins run meanwhile."""
    parts = -(-info.size // max(1, options.part_size))
    wanted = min(writer.endpoint.connections, parts, max(1, options.parts_in_flight))
    if wanted >= 2 and await writer.sftp.settled_far(writer.endpoint):
        writer.spread(wanted)


async def _conflict(
    writer: RemoteWriter, info: ObjectInfo, policy: ConflictPolicy
) -> tuple[bool, str]:
    """(replace?, why skipped) for the final name under ``policy``; ``""``: go ahead."""
    existing = await writer.exists(writer.final_path)
    if existing is None:
        # Nothing there: skip-existing publishes with a plain rename, which refuses a file
        # that appears meanwhile; the other policies would replace such a file.
        return policy is not ConflictPolicy.SKIP_EXISTING, ""
    if policy is ConflictPolicy.SKIP_EXISTING:
        return False, "exists"
    mtime = float(existing.mtime or 0)
    if policy is ConflictPolicy.IF_NEWER and mtime >= int(info.last_modified):
        return False, "not newer"
    if policy is ConflictPolicy.IF_DIFFERENT and existing.size == info.size:
        if int(mtime) >= int(info.last_modified):
            return False, "same size and time" if int(mtime) == int(info.last_modified) else (
                "same size, not older"
            )
        if await _same_bytes(writer, info):
            return False, "same size and checksum (read back)"
    return True, ""


async def _same_bytes(writer: RemoteWriter, info: ObjectInfo) -> bool:
    """Whether the file at the final name holds the object's bytes, by reading it back and
    checking it against the object's stored checksum (CRC64NVME, else the ETag's MD5) — as
    the other direction compares sha256 when the times differ. False when the object has no
    checksum to compare with, or the file cannot be read."""
    if not info.crc64nvme and info.single_part_md5 is None:
        return False
    digest = _Digest(info, [(0, info.size)])
    read = 0
    try:
        async for data in writer.read_back(writer.final_path, info.size, MiB):
            digest.update(0, memoryview(data))
            read += len(data)
    except TransferError:
        return False
    if read != info.size:
        return False
    try:
        digest.check(info)
    except VerificationFailed:
        return False
    return True


async def _write_done_file(writer: RemoteWriter, suffix: str) -> str:
    """The empty marker NAME+SUFFIX a partner polls for, once NAME is in place."""
    marker = writer.final_path + suffix
    try:
        await writer.write_marker(marker)
    except TransferError as exc:
        raise DestinationRefused(
            f"{writer.final_path} was delivered but its done file could not be written: "
            f"{exc.message}",
            "the partner will not pick the file up; write the marker by hand",
        ) from exc
    return marker


async def _delete_delivered(s3: S3Client, info: ObjectInfo) -> str:
    """Delete the object only while it is the one delivered: ``""`` when deleted, else why
    it was kept. DeleteObject carries If-Match on the delivered ETag (and its VersionId when
    there is one) where the store honours If-Match (probed), so an object replaced since it
    was read stays."""
    params: dict[str, Any] = {}
    if info.version_id:
        params["VersionId"] = info.version_id  # exactly the version read: never another
    elif await honours_if_match(s3, info.bucket, info.key):
        params["IfMatch"] = info.etag
    else:
        current = await describe_object(s3, info.bucket, info.key)
        if current.etag != info.etag:
            return "the object changed after it was read, so it was kept"
    try:
        await delete_object(s3, info.bucket, info.key, **params)
    except PreconditionFailed:
        return "the object changed after it was read, so it was kept"
    except TransferError as exc:
        if getattr(exc, "code", "") not in GONE:
            raise
    return ""


async def deliver_object(
    job: DeliveryJob,
    *,
    s3: S3Client,
    sftp: SftpPool,
    target: DeliveryTarget,
    buffers: BufferPool,
    options: DeliveryOptions,
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None = None,
    bus: EventBus | None = None,
    transfer_id: int = 0,
) -> DeliveryResult:
    """Deliver one object (see the module's story); a failure is a result, never raised
    (a cancel is raised, after the temporary file is removed). ``on_delivered`` runs once
    the file is in place, before the source is deleted (a manifest row made durable). With
    a ``bus``, its start and its parts are told there as transfer ``transfer_id``'s (the
    TUI's rows)."""
    progress = _Progress(bus, transfer_id) if bus is not None else None
    info: ObjectInfo | None = None
    writer = RemoteWriter(
        sftp,
        target.endpoint,
        job.remote_path,
        block_size=options.sftp_block_size,
        requests=options.sftp_requests,
        inplace=options.inplace,
    )
    record: DeliveryRecord | None = None
    notes: list[str] = []
    try:
        info = await describe_object(s3, job.bucket, job.key)
        await writer.connect()
        left: DeliveryState | None = None
        if options.record_dir is not None:
            claimed = DeliveryRecord(
                options.record_dir, f"{target.endpoint.display}{job.remote_path}"
            )
            left = claimed.claim()  # DeliveryBusy: another run's; never touched here
            record = claimed
            if left is not None and left.temp_path == job.remote_path:
                # an --inplace run was killed: the final name holds its partial file, which
                # the conflict check must not take for the partner's
                notes.append(await _clear_left(writer, claimed, left, "it was written in place"))
                left = None
        replace, skipped = await _conflict(writer, info, options.conflict)
        if skipped:
            if left is not None and record is not None:
                notes.append(await _clear_left(writer, record, left))
            return DeliveryResult(
                job.bucket,
                job.key,
                job.remote_path,
                "skipped",
                info.size,
                message="; ".join([skipped, *notes]),
            )
        resumed: _Digest | None = None
        start = 0
        if left is not None and record is not None:
            resumed, why = await _resumable(writer, info, left, buffers, options)
            if resumed is None:
                notes.append(await _clear_left(writer, record, left, why))
            else:
                start = left.written
                notes.append(
                    f"resumed {left.temp_path} from byte {start} of {info.size} "
                    "(its prefix read back and checked; the object is unchanged)"
                )
        on_written: Callable[[int, int], None] | None = None
        if record is not None:
            state = DeliveryState(
                temp_path=left.temp_path if resumed is not None and left else writer.temp_path,
                bucket=info.bucket,
                key=info.key,
                etag=info.etag,
                version_id=info.version_id,
                size=info.size,
                inplace=options.inplace,
                written=start,
                crc64nvme=resumed.crc if resumed is not None else 0,
            )
            record.write(state)
            on_written = _checkpoints(record, state)
        if resumed is not None and left is not None:
            await writer.reopen(left.temp_path)
        else:
            await writer.open(truncate=options.inplace and replace)
        if progress is not None:
            progress.started(info.size, max(1, options.part_size))
        await _spread(writer, info, options)
        digest = await _stream(
            s3,
            info,
            writer,
            buffers,
            options,
            prefix=resumed,
            start=start,
            on_written=on_written,
            progress=progress,
        )
        checked = digest.check(info)
        written = await writer.finish(mtime=info.last_modified)
        if written != info.size:
            raise VerificationFailed(
                f"{writer.temp_path} holds {written} bytes, {info.url} has {info.size}",
                "nothing was left at the final name; run the copy again",
            )
        try:
            published_by = await writer.publish(replace=replace)
        except TransferError:
            if not replace and await writer.exists(job.remote_path) is not None:
                # skip-existing lost a race: a file appeared at the final name meanwhile
                await run_to_end(writer.discard())
                return DeliveryResult(
                    job.bucket, job.key, job.remote_path, "skipped", info.size, message="exists"
                )
            raise
        if record is not None:
            record.forget()
        verified_by = f"{checked}+size" if checked else "size"
        result = DeliveryResult(
            job.bucket,
            job.key,
            job.remote_path,
            "done",
            info.size,
            verified_by=verified_by,
            etag=info.etag,
            version_id=info.version_id,
            published_by=published_by,
            message="; ".join(notes),
        )
        if options.done_suffix:
            result = replace_result(
                result, done_file=await _write_done_file(writer, options.done_suffix)
            )
        if on_delivered is not None:
            await on_delivered(result)
        if options.delete_source:
            kept = await _delete_delivered(s3, info)
            message = "; ".join(n for n in (result.message, kept) if n)
            result = replace_result(result, source_deleted=not kept, message=message)
        return result
    except TransferError as exc:
        gone = await run_to_end(writer.discard())
        message = str(exc)
        if not gone:
            message += f" (the temporary file {writer.temp_path} could not be removed"
            message += "; the next run removes it)" if record is not None else ")"
        elif record is not None:
            record.forget()
        size = info.size if info is not None else 0
        return DeliveryResult(job.bucket, job.key, job.remote_path, "failed", size, message=message)
    except BaseException:  # cancelled, Ctrl-C: the temporary file must not outlive us
        if await run_to_end(writer.discard()) and record is not None:
            record.forget()
        raise
    finally:
        writer.release()
        if record is not None:
            record.release()


async def _clear_left(
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


async def _resumable(
    writer: RemoteWriter,
    info: ObjectInfo,
    left: DeliveryState,
    buffers: BufferPool,
    options: DeliveryOptions,
) -> tuple[_Digest | None, str]:
    """(the digest of the left file's verified prefix, "") when the delivery can continue
    from it; (None, why not) when it must start over."""
    if options.inplace or left.inplace:
        return None, "--inplace does not resume"
    if (left.etag, left.version_id, left.size) != (info.etag, info.version_id, info.size):
        now = info.version_id or info.etag
        return None, f"the object changed since (it was {left.version_id or left.etag}, now {now})"
    if left.written <= 0:
        return None, "none of it was recorded as written"
    try:
        digest = await _verified_prefix(writer, info, left, buffers)
    except TransferError as exc:
        return None, f"it could not be read back: {exc.message}"
    if digest is None:
        return None, f"its first {left.written} bytes did not match the record"
    return digest, ""


#: A delivery in progress records how far it got at most this often (a few hundred bytes of
#: local disk, fsync'd, whatever the speed).
CHECKPOINT_SECONDS = 1.0


def _checkpoints(record: DeliveryRecord, state: DeliveryState) -> Callable[[int, int], None]:
    """The frontier's listener: records ``(written, crc)`` at most every CHECKPOINT_SECONDS."""
    last = time.monotonic()
    current = state

    def on_written(end: int, crc: int) -> None:
        nonlocal last, current
        now = time.monotonic()
        if now - last >= CHECKPOINT_SECONDS:
            current = record.checkpoint(current, end, crc)
            last = now

    return on_written


async def deliver(
    source: S3Location,
    target: DeliveryTarget,
    s3_endpoint: S3Endpoint,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    *,
    sftp: SftpPool | None = None,
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None = None,
    on_excluded: Callable[[str, str], None] | None = None,
) -> None:
    """Deliver every object of ``source`` into ``target``, ``files_in_flight`` at once,
    under one memory budget; each result is handed to ``on_result`` as it is known
    (``on_delivered``: see :func:`deliver_object`; ``on_excluded``: ``(key, why)`` of each
    object the filter leaves out)."""
    buffers = BufferPool(options.memory_budget)
    async with sftp or SftpPool() as pool:
        warming = asyncio.ensure_future(_warm_lanes(pool, target))
        try:
            async with open_client(s3_endpoint) as s3:
                await _deliver_all(
                    source, target, options, on_result, s3, pool, buffers, on_delivered, on_excluded
                )
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
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None,
    on_excluded: Callable[[str, str], None] | None,
) -> None:
    """The body of :func:`deliver`: ``files_in_flight`` objects at once."""
    slots = asyncio.Semaphore(max(1, options.files_in_flight))

    async def one(job: DeliveryJob) -> None:
        try:
            on_result(
                await deliver_object(
                    job,
                    s3=s3,
                    sftp=pool,
                    target=target,
                    buffers=buffers,
                    options=options,
                    on_delivered=on_delivered,
                )
            )
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            async for job in planned(
                s3,
                source,
                target,
                on_result,
                file_filter=options.file_filter,
                on_excluded=on_excluded,
            ):
                await slots.acquire()
                group.create_task(one(job))
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None


async def planned(
    s3: S3Client,
    source: S3Location,
    target: DeliveryTarget,
    on_refused: Callable[[DeliveryResult], None],
    *,
    file_filter: FileFilter | None = None,
    on_excluded: Callable[[str, str], None] | None = None,
) -> AsyncIterator[DeliveryJob]:
    """The plan's jobs; a refused key becomes a failed result naming it."""
    async for item in plan_delivery(
        s3, source, target, file_filter=file_filter, on_excluded=on_excluded
    ):
        if isinstance(item, RefusedKey):
            on_refused(DeliveryResult(item.bucket, item.key, "", "failed", message=str(item.error)))
        else:
            yield item
