"""One object's bytes on their way S3 → SFTP: ranged GETs into pool buffers, written at their
offsets while they are checked in order (CRC64NVME segments combined, or MD5), the written
frontier told to a checkpoint, and each part told to a front as events.

:mod:`.delivery` tells the object's story; this is its data path, kept apart so the story
reads top to bottom and the path can be measured on its own (``bench/delivery.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..aio import run_to_end
from ..config import MiB
from ..digest import b64, crc32, crc32c, crc64nvme, crc64nvme_combine
from ..errors import VerificationFailed
from ..events import (
    Direction,
    EventBus,
    PartState,
    TransferChecking,
    TransferFinished,
    TransferResult,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from ..s3.operations import S3Client
from ..s3.reader import ObjectInfo, open_object, open_range
from ..sftp.writer import RemoteWriter
from .buffers import BufferPool
from .parts import PartEvents, first_error

#: Parts at least this big are hashed in a thread (the loop keeps serving the writes).
HASH_OFF_LOOP = 1 * MiB

#: Each GET stream of one object covers at least this much (a GET costs a round trip and,
#: in moto, a copy of the whole object), and one object is read by at most
#: ``MAX_STREAMS`` GETs at once.
STREAM_MIN = 64 * MiB

MAX_STREAMS = 4


class Digest:
    """The checks of the bytes read: CRC64NVME always; when the store holds no CRC64NVME,
    the fastest other check it allows in byte order (a stored full-object CRC32C or CRC32,
    else the ETag's MD5: :attr:`ObjectInfo.ordered_check`); and with ``sha256``
    (``--verify-readback``) a SHA-256 of each segment, which the file read back is compared
    with.

    The object (or what a resume has left of it, after a verified ``prefix``) may be read as
    several consecutive segments at once: each segment's bytes are fed in order to its own
    CRC, and the CRCs are combined at the end. The ordered checks are not combined here,
    so an object checked by one is read as one segment. A SHA-256 cannot be combined
    either, but it is only compared with the file read back, range by range, so each
    segment keeps its own (the parallel GETs stay) and a resumed prefix's ranges come
    first. ``whole_sha256`` (``--verify-server-hash``) keeps one SHA-256 of the whole file
    in byte order, going on from a resumed prefix's, so such an object is read as one
    segment too.
    """

    def __init__(
        self,
        info: ObjectInfo,
        segments: list[tuple[int, int]],
        prefix: Digest | None = None,
        *,
        sha256: bool = False,
        whole_sha256: bool = False,
    ) -> None:
        self.segments = segments
        #: What a whole-object GET said the object is (stream's ``whole``), to check against.
        self.described: ObjectInfo | None = None
        self.whole: Any = None
        if whole_sha256:
            assert len(segments) <= 1, "a whole SHA-256 needs the bytes in one order"
            self.whole = prefix.whole.copy() if prefix is not None else hashlib.sha256()
        self.sha256s = [hashlib.sha256() for _ in segments] if sha256 else None
        #: (begin, end, SHA-256) of the ranges before the first segment: a resumed prefix's.
        self.before: list[tuple[int, int, bytes]] = []
        if sha256 and prefix is not None:
            self.before = prefix.sha256_ranges()
        self.crcs = [0] * len(segments)
        self.base_crc = prefix.crc if prefix is not None else 0
        self.base_length = segments[0][0] if segments else 0
        self._info = info
        self._prefix = prefix
        #: The ordered check's kind and state (see :meth:`_choose`), once chosen.
        self.ordered = ""
        self.md5: Any = None
        self.ordered_crc = 0
        self._chosen = False

    def _choose(self) -> None:
        """Pick the ordered check at the first bytes: a HEAD-less object's GET answer
        (``described``) says by then which checksums the store holds, so an object with a
        stored CRC32 is not MD5-hashed (MD5 runs at ~0.6 GB/s here, CRC32 in C at several)."""
        self._chosen = True
        prefix = self._prefix
        if prefix is not None:
            if not prefix._chosen:
                prefix._choose()
            self.ordered, self.ordered_crc = prefix.ordered, prefix.ordered_crc
            self.md5 = prefix.md5.copy() if prefix.md5 is not None else None
            return
        self.ordered = (self.described or self._info).ordered_check
        if self.ordered == "md5":
            self.md5 = hashlib.md5(usedforsecurity=False)
        assert not self.ordered or len(self.segments) <= 1, "needs the bytes in one order"

    def update(self, segment: int, data: memoryview) -> None:
        if not self._chosen:
            self._choose()
        self.crcs[segment] = crc64nvme(data, self.crcs[segment])
        if self.md5 is not None:
            self.md5.update(data)
        elif self.ordered == "crc32c":
            self.ordered_crc = crc32c(data, self.ordered_crc)
        elif self.ordered == "crc32":
            self.ordered_crc = crc32(data, self.ordered_crc)
        if self.sha256s is not None:
            self.sha256s[segment].update(data)
        if self.whole is not None:
            self.whole.update(data)

    def sha256_ranges(self) -> list[tuple[int, int, bytes]]:
        """``(begin, end, SHA-256)`` of the bytes read, range by range in byte order (a
        resumed prefix's first, then each segment's); empty for an empty object."""
        assert self.sha256s is not None, "built without sha256"
        mine = zip(self.segments, self.sha256s, strict=True)
        return [*self.before, *((begin, end, h.digest()) for (begin, end), h in mine)]

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
        if not self._chosen:
            self._choose()  # nothing was read: an empty object, or all of it resumed
        for kind, stored in (("crc32c", info.crc32c), ("crc32", info.crc32)):
            if stored and self.ordered == kind:
                read = b64(self.ordered_crc, 4)
                if read != stored:
                    raise VerificationFailed(
                        f"The bytes read have {kind.upper()} {read}, the store holds {stored}",
                        "nothing was left at the final name; run the copy again",
                    )
                return kind
        if info.single_part_md5 is not None and self.md5 is not None:
            if self.md5.digest() != info.single_part_md5:
                raise VerificationFailed(
                    f"The bytes read do not match the ETag's MD5 {info.etag}",
                    "nothing was left at the final name; run the copy again",
                )
            return "md5"
        return ""  # a multipart object without a full-object checksum: size only


class Frontier:
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


def segments_of(
    info: ObjectInfo, part_size: int, start: int = 0, *, in_order: bool = False
) -> list[tuple[int, int]]:
    """The object's byte ranges ``[begin, end)`` from ``start`` on, read by one GET each, at
    once.

    One GET for most objects (its parts are read one after another from the same body, so
    only the first byte waits a round trip); a big object whose check is the CRC64NVME (or
    none) gets up to ``MAX_STREAMS`` GETs of at least ``STREAM_MIN`` each, on part
    boundaries, for a store that sends each connection at a capped rate (``in_order``: one
    GET, for a hash that needs every byte in order).
    """
    left = info.size - start
    if left <= 0:
        return []
    count = 1
    if not info.ordered_check and not in_order:
        count = max(1, min(MAX_STREAMS, left // STREAM_MIN))
    parts = -(-left // part_size)
    per_stream = -(-parts // count) * part_size
    return [
        (begin, min(info.size, begin + per_stream)) for begin in range(start, info.size, per_stream)
    ]


async def stream(
    s3: S3Client,
    info: ObjectInfo,
    writer: RemoteWriter,
    buffers: BufferPool,
    part_size: int,
    parts_in_flight: int,
    *,
    prefix: Digest | None = None,
    start: int = 0,
    on_written: Callable[[int, int], None] | None = None,
    progress: Progress | None = None,
    whole: bool = False,
    sha256: bool = False,
    whole_sha256: bool = False,
) -> Digest:
    """Ranged GETs fill pool buffers part by part → writes at offsets; each segment's digest
    fed in byte order.

    Each segment (see :func:`segments_of`) is one GET whose body fills part after part, at
    most ``parts_in_flight`` parts of the object held at once (one GET per part made moto
    copy the whole object for every range: 64 copies of a 512 MiB object). A filled part is
    written at its offset at once (the write never waits for the digest; the temporary file
    is only renamed once the digest matched) while it is hashed after the part before it;
    its buffer goes back to the pool when both are done. So reading, hashing and writing
    overlap freely. A resume starts at ``start`` after the verified ``prefix``;
    ``on_written(end, crc)`` hears each move of the written frontier of the first segment
    (what a checkpoint records: a resume continues from there). ``whole``: ``info`` comes
    from a listing and the object is read in one GET of all of it, whose answer describes it
    (the returned digest's ``described``; no HEAD was made). ``sha256``: each segment's
    SHA-256 too (``--verify-readback``; the prefix's comes with ``prefix``); ``whole_sha256``:
    one SHA-256 of the whole file, the object read by one GET (``--verify-server-hash``).
    """
    part_size = max(1, part_size)
    segments = segments_of(info, part_size, start, in_order=whole_sha256)
    checks = Digest(info, segments, prefix, sha256=sha256, whole_sha256=whole_sha256)
    frontier = Frontier(start, checks.base_crc)
    slots = asyncio.Semaphore(max(1, parts_in_flight))

    async def digest(segment: int, view: memoryview, before: asyncio.Event) -> None:
        await before.wait()
        if len(view) >= HASH_OFF_LOOP:
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
            if before.is_set() and len(view) < HASH_OFF_LOOP:
                # Its turn to be hashed and quick to hash (a small object): hash, then
                # write, in this task; a task for the write cost more than the overlap.
                checks.update(segment, view)
                crc = checks.first_through(offset + len(view)) if segment == 0 else 0
                hashed.set()
                await writer.write_at(offset, view)
            else:
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

    async def read(segment: int, begin: int, end: int, group: asyncio.TaskGroup | None) -> None:
        """GET ``[begin, end)`` part by part; each part is written by a task of ``group``
        (None: one part, written here)."""
        before = asyncio.Event()
        before.set()
        one_buffer = end - begin <= part_size
        async with (
            open_object(s3, info, one_buffer=one_buffer)
            if whole
            else open_range(s3, info, begin, end - begin)
        ) as body:
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
                    if body.described is not None:  # known at the open, or once filled
                        checks.described = body.described
                except BaseException:
                    buffers.release(buffer)
                    slots.release()
                    raise
                if progress is not None:
                    progress.part(number, PartState.UPLOADING, length)
                hashed = asyncio.Event()
                if group is None:
                    await part(segment, offset, buffer, before, hashed)
                else:
                    group.create_task(part(segment, offset, buffer, before, hashed))
                before = hashed

    if len(segments) == 1 and segments[0][1] - segments[0][0] <= part_size:
        # One GET of one part (most small objects): no task group, no task per step.
        await read(0, *segments[0], None)
        return checks
    try:
        async with asyncio.TaskGroup() as group:
            for segment, (begin, end) in enumerate(segments):
                group.create_task(read(segment, begin, end, group))
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    return checks


@dataclass
class Progress:
    """One delivery's events on a bus, as an upload tells its own (a front's row, the
    metrics sampler, the CLI's progress block): running, its plan, each part, its end."""

    bus: EventBus
    transfer_id: int
    _since: dict[int, float] = field(default_factory=dict)

    def running(self) -> None:
        """It has its slot and starts (it may still be skipped before any byte moves)."""
        self.bus.emit(
            TransferStateChanged(transfer_id=self.transfer_id, state=TransferState.RUNNING)
        )

    def finished(self, result: TransferResult) -> None:
        """Its end, as the queue tells an upload's: the final state, then the result."""
        self.bus.emit(TransferStateChanged(transfer_id=self.transfer_id, state=result.status))
        self.bus.emit(TransferFinished(transfer_id=self.transfer_id, result=result))

    def started(self, size: int, part_size: int, resumed: int = 0) -> None:
        """The plan; ``resumed``: the bytes a paused or killed attempt wrote (whole parts,
        the frontier moves part by part), shown done, not counted as sent."""
        parts = -(-size // part_size)
        self.bus.emit(
            TransferStarted(
                transfer_id=self.transfer_id,
                size=size,
                part_size=part_size,
                part_count=parts,
                multipart=parts > 1,
                direction=Direction.S3_TO_SFTP,
                resumed_parts=tuple(range(1, resumed // part_size + 1)),
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
        PartEvents(self.bus, self.transfer_id).changed(number, state, size, seconds)

    def checking(self, check: str, bytes_done: int, size: int) -> None:
        """A check after the bytes are written (``check``: "reading back") is this far."""
        self.bus.emit(
            TransferChecking(
                transfer_id=self.transfer_id, check=check, bytes_done=bytes_done, size=size
            )
        )

    def stopped(self) -> None:
        """A pause stopped the parts on their way: each is waiting again (a row that says
        parts are still draining after the pause would look like one that did not work)."""
        events = PartEvents(self.bus, self.transfer_id)
        for number in sorted(self._since):
            events.changed(number, PartState.WAITING, 0, 0.0)
        self._since.clear()
