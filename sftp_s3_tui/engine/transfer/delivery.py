"""Delivering objects to an SFTP destination (S3 → SFTP): one object, and many in a run.

One object's story (:func:`deliver_object`): describe it (size, ETag, stored checksum,
LastModified) → claim its record (a killed run's temporary file is resumed from its
read-back, verified prefix when the object is unchanged, else removed) → apply the conflict
policy to the final name → record, then create ``.NAME.<token>.partial`` beside it → ranged
GETs (If-Match the ETag) fill pool buffers that go straight into pipelined SFTP writes at
their offsets, several parts at once, the written frontier checkpointed → the bytes read
checked against the object's checksum (CRC64NVME, else the ETag's MD5), the written size
against a final fstat, the mtime set to LastModified → with ``--verify-readback``, the
temporary file read back and its SHA-256 compared (:mod:`.delivery_readback`) → rename into
place (posix-rename, or old aside / new in / old removed where the server has no
posix-rename) → ``--done-file``'s marker → only then, if asked, the object deleted (only if
it is still the one delivered).
Any failure, cancel or Ctrl-C removes the temporary file (a front's pause keeps it with
its record, to resume: :class:`DeliveryControl`); nothing is ever written under the
final name but a whole, checked file — except with ``--inplace`` (see :data:`INPLACE_RISK`).
Nothing touches local disk but the record.
"""

from __future__ import annotations

import contextlib
import posixpath
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import replace as replace_result
from functools import partial
from typing import Any

from ..aio import run_to_end
from ..config import ConflictPolicy, MiB
from ..errors import DestinationRefused, TransferError, VerificationFailed
from ..events import EventBus
from ..plan.delivery import DeliveryJob, DeliveryTarget
from ..resume.delivery_record import DeliveryRecord, DeliveryState
from ..s3.operations import PreconditionFailed, S3Client, delete_object
from ..s3.reader import ObjectInfo, describe_object, listed_info
from ..sftp.folder_names import FolderNames
from ..sftp.pool import SftpPool
from ..sftp.writer import RemoteWriter
from . import delivery_stream
from .buffers import BufferPool
from .delivery_options import DeliveryOptions
from .delivery_readback import READING_BACK, check_read_back, check_server_hash
from .delivery_result import DeliveryResult
from .delivery_resume import CHECKING_KEPT, Checkpoints, checkpoints, clear_left, resumable
from .delivery_stream import Digest, Progress, segments_of, stream
from .verify import GONE, honours_if_match


@dataclass
class DeliveryControl:
    """A front's say over one object's delivery while it runs (the TUI's pause).

    ``keep_partial`` set before the delivery's task is cancelled makes the cancel a pause:
    the temporary file and its record stay (the frontier recorded), so the next
    :func:`deliver_object` of the same job with the same ``record_dir`` resumes it from its
    read-back, verified prefix (the kill -9 machinery) instead of starting over. Only with
    a record: a file nothing names would be an orphan, so without one a pause removes it as
    a cancel does. ``kept`` says what was done: True once a cancel left the file for later
    (the front must then resume it, or :func:`discard_kept` it when the user gives up).
    """

    keep_partial: bool = False
    kept: bool = False


#: What --inplace risks, said once per run by the fronts.


async def _spread(writer: RemoteWriter, info: ObjectInfo, options: DeliveryOptions) -> None:
    """Write a big object's parts over several connections to a far host (one connection
    moves at most its window per round trip); their logins run meanwhile."""
    parts = -(-info.size // max(1, options.part_size))
    wanted = min(writer.endpoint.connections, parts, max(1, options.parts_in_flight))
    if wanted >= 2 and await writer.sftp.settled_far(writer.endpoint):
        writer.spread(wanted)


async def _conflict(
    writer: RemoteWriter,
    info: ObjectInfo,
    policy: ConflictPolicy,
    names: FolderNames | None = None,
) -> tuple[bool, str]:
    """(replace?, why skipped) for the final name under ``policy``; ``""``: go ahead.

    ``names``: the run's folder listings. A name they show absent is not looked at under
    ``skip-existing`` (its plain rename refuses a file landing meanwhile) and ``overwrite``
    (which replaces one anyway); the time-comparing policies look just before, as ever."""
    if names is not None and policy in (ConflictPolicy.SKIP_EXISTING, ConflictPolicy.OVERWRITE):
        folder, name = posixpath.split(writer.final_path)
        timeout = writer.endpoint.request_timeout_seconds
        if await names.absent(writer.client, folder or "/", name, timeout):
            return policy is not ConflictPolicy.SKIP_EXISTING, ""
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
    checking it against the object's stored checksum (CRC64NVME, CRC32C, CRC32, else the
    ETag's MD5) — as
    the other direction compares sha256 when the times differ. False when the object has no
    checksum to compare with, or the file cannot be read."""
    if not info.crc64nvme and not info.ordered_check:
        return False
    digest = Digest(info, [(0, info.size)])
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
    control: DeliveryControl | None = None,
    names: FolderNames | None = None,
) -> DeliveryResult:
    """Deliver one object (see the module's story); a failure is a result, never raised
    (a cancel is raised, after the temporary file is removed — unless ``control`` asked to
    keep it: a pause, see :class:`DeliveryControl`). ``on_delivered`` runs once the file is
    in place, before the source is deleted (a manifest row made durable). With a ``bus``,
    its start, its parts and its end are told there as transfer ``transfer_id``'s (the
    TUI's rows, the metrics, the CLI's progress block). ``names``: the run's listings of
    its destination folders (see :class:`FolderNames`)."""
    delivery = ObjectDelivery(
        job, s3=s3, sftp=sftp, target=target, buffers=buffers, options=options
    )
    delivery.names = names
    delivery.on_delivered = on_delivered
    if control is not None:
        delivery.control = control
    delivery.progress = Progress(bus, transfer_id) if bus is not None else None
    return await delivery.run()


class ObjectDelivery:
    """One object's delivery as a state and one method per step; :meth:`run` is the story
    (rclone's ``copy.go`` shape: the fields say what is known so far)."""

    def __init__(
        self,
        job: DeliveryJob,
        *,
        s3: S3Client,
        sftp: SftpPool,
        target: DeliveryTarget,
        buffers: BufferPool,
        options: DeliveryOptions,
    ) -> None:
        self.job = job
        self.s3 = s3
        self.target = target
        self.buffers = buffers
        self.options = options
        #: Called once the file is in place, before the source is deleted.
        self.on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None = None
        #: The front's events for this object (None: nobody shows it as a row).
        self.progress: Progress | None = None
        #: What HEAD said of the object (None until described).
        self.info: ObjectInfo | None = None
        #: ``info`` is the listing's, not HEAD's: one GET of the whole object describes it.
        self.listed = False
        self.writer = RemoteWriter(
            sftp,
            target.endpoint,
            job.remote_path,
            block_size=options.sftp_block_size,
            requests=options.sftp_requests,
            inplace=options.inplace,
        )
        #: The front's pause (keep the temporary file on a cancel); see DeliveryControl.
        self.control = DeliveryControl()
        #: This destination file's record (None: no record_dir, no record kept).
        self.record: DeliveryRecord | None = None
        #: The frontier's checkpoints into the record (None until the bytes flow).
        self.checkpoints: Checkpoints | None = None
        #: What a killed run left for this file, per its record.
        self.left: DeliveryState | None = None
        #: What the record says is being written (set when the temporary file is opened).
        self.state: DeliveryState | None = None
        #: Lines for the result: what was cleaned up or resumed on the way.
        self.notes: list[str] = []
        #: The run's listings of its destination folders (None: look at the name itself).
        self.names: FolderNames | None = None

    def _one_part(self) -> bool:
        """Whether the object is one part: no prefix worth resuming, so its record is not
        fsync'd, lives in its lock file and gets no checkpoints."""
        assert self.info is not None
        return self.info.size <= self.options.part_size

    def _result(self, status: str, **fields: Any) -> DeliveryResult:
        size = self.info.size if self.info is not None else 0
        return DeliveryResult(
            self.job.bucket, self.job.key, self.job.remote_path, status, size, **fields
        )

    async def run(self) -> DeliveryResult:
        """The story (:meth:`_run`), told to :attr:`progress` from its start to its end (a
        cancel ends it ``cancelled``; a pause that kept the file tells no end)."""
        progress = self.progress
        if progress is None:
            return await self._run()
        began = time.monotonic()
        progress.running()
        try:
            result = await self._run()
        except BaseException:
            if not self.control.kept:  # a pause is not an end: the front shows it paused
                ended = self._result("cancelled")
                progress.finished(ended.transfer_result(time.monotonic() - began))
            raise
        progress.finished(result.transfer_result(time.monotonic() - began))
        return result

    async def _run(self) -> DeliveryResult:
        """Describe → claim the record → conflict check → resume or start → stream →
        check → publish → after it is in place; a failure removes the temporary file."""
        try:
            self.info = await self._describe()
            await self.writer.connect()
            await self._claim_record()
            replace, skipped = await _conflict(
                self.writer, self.info, self.options.conflict, self.names
            )
            if skipped:
                await self._forget_left()
                return self._result("skipped", message="; ".join([skipped, *self.notes]))
            resumed, start = await self._resume_point()
            await self._open(resumed, start, replace)
            checked = await self._transfer(resumed, start)
            published_by = await self._publish(replace)
            if published_by is None:
                return self._result("skipped", message="exists")
            return await self._after_publish(checked, published_by)
        except TransferError as exc:
            return await self._failed(exc)
        except BaseException:  # cancelled, Ctrl-C: the temporary file must not outlive us
            if await self._keep_paused():
                raise
            if await run_to_end(self.writer.discard()) and self.record is not None:
                self.record.forget()
            raise
        finally:
            self.writer.release()
            if self.record is not None:
                self.record.release()

    async def _keep_paused(self) -> bool:
        """Whether a cancel leaves the temporary file with its record (``control.kept``).

        A pause (the front set ``control.keep_partial`` before cancelling): the file is
        closed, not removed, and its record kept with the last frontier heard, so the next
        attempt resumes from the verified prefix instead of sending it all again. Only once
        the record names the file (``state``): a file no record names would be an orphan
        nobody removes, so before that a pause is a plain cancel. And whatever the cancel,
        a file an earlier run left that this one has not taken over yet stays with its
        record (forgetting the record would orphan it; the next run resumes or removes it).
        """
        if self.record is None:
            return False
        if self.state is None and self.left is not None:
            self.control.kept = True
            return True
        if not self.control.keep_partial or self.state is None:
            return False
        if self.checkpoints is not None:
            # a record not written: its last checkpoint is still true, only older
            with contextlib.suppress(TransferError):
                self.checkpoints.flush()
        await run_to_end(self.writer.close_kept())  # not closed: the server closes it
        if self.progress is not None:
            self.progress.stopped()
        self.control.kept = True
        return True

    async def _describe(self) -> ObjectInfo:
        """What the object is: HEAD, or — for a listed object read in one GET — what the
        listing says, completed by that GET's answer (one request per small object instead
        of two; ``if-different`` compares stored checksums up front, so it HEADs)."""
        job, options = self.job, self.options
        if (
            job.etag
            and 0 < job.size < 2 * delivery_stream.STREAM_MIN  # one segment whatever its check
            and options.conflict is not ConflictPolicy.IF_DIFFERENT
        ):
            listed = listed_info(job.bucket, job.key, job.etag, job.size, job.mtime)
            ordered = options.verify_server_hash
            if len(segments_of(listed, max(1, options.part_size), 0, in_order=ordered)) == 1:
                self.listed = True
                return listed
        return await describe_object(self.s3, job.bucket, job.key)

    async def _claim_record(self) -> None:
        """Take this file's record (DeliveryBusy: another run holds it; never touched here)
        and learn what a killed run left."""
        record = record_of(self.job, self.target, self.options)
        if record is None:
            return
        left = record.claim()
        self.record = record
        if left is not None and left.temp_path == self.job.remote_path:
            # an --inplace run was killed: the final name holds its partial file, which the
            # conflict check must not take for the partner's
            self.notes.append(
                await clear_left(self.writer, record, left, "it was written in place")
            )
            left = None
        self.left = left

    async def _forget_left(self) -> None:
        """A skipped file: what a killed run left for it goes."""
        if self.left is not None and self.record is not None:
            self.notes.append(await clear_left(self.writer, self.record, self.left))
            self.left = None

    async def _resume_point(self) -> tuple[Digest | None, int]:
        """(the verified prefix's digest, where to go on) — (None, 0) to start over."""
        left, record, info = self.left, self.record, self.info
        assert info is not None
        if left is None or record is None:
            return None, 0
        if self.listed:  # a resume reads ranges, which carry no checksum: HEAD first
            self.info = info = await describe_object(self.s3, info.bucket, info.key)
            self.listed = False
        told = None  # "checking the kept part N%": a big prefix takes a while
        if self.progress is not None:
            told = partial(self.progress.checking, CHECKING_KEPT, size=left.written)
        resumed, why = await resumable(
            self.writer,
            info,
            left,
            self.buffers,
            self.options.inplace,
            sha256=self.options.verify_readback,
            whole_sha256=self.options.verify_server_hash,
            on_progress=told,
        )
        if resumed is None:
            self.notes.append(await clear_left(self.writer, record, left, why))
            self.left = None
            return None, 0
        self.notes.append(
            f"resumed {left.temp_path} from byte {left.written} of {info.size} "
            "(its prefix read back and checked; the object is unchanged)"
        )
        return resumed, left.written

    async def _open(self, resumed: Digest | None, start: int, replace: bool) -> None:
        """Record what is about to be written, then create (or reopen) the temporary file."""
        info, left = self.info, self.left
        assert info is not None
        if self.record is not None:
            resuming = resumed is not None and left is not None
            self.state = DeliveryState(
                temp_path=left.temp_path if resuming and left else self.writer.temp_path,
                bucket=info.bucket,
                key=info.key,
                etag=info.etag,
                version_id=info.version_id,
                size=info.size,
                inplace=self.options.inplace,
                written=start,
                crc64nvme=resumed.crc if resumed is not None else 0,
            )
            # An object of one part has no prefix worth resuming: its record only names the
            # temporary file for the next run to remove after a kill -9, which the page cache
            # survives, so it is not fsync'd (two fsyncs were a third of a 64 KiB object's
            # time). A bigger object's record is made durable before the file is created.
            one_part = self._one_part()
            self.record.write(self.state, sync=not one_part, first=one_part and not resuming)
        if resumed is not None and left is not None:
            await self.writer.reopen(left.temp_path)
        else:
            await self.writer.open(truncate=self.options.inplace and replace)

    async def _transfer(self, resumed: Digest | None, start: int) -> str:
        """The bytes from ``start`` on, checked (and read back, when asked); what they were
        verified by."""
        info, options = self.info, self.options
        assert info is not None
        on_written = None
        # An object of one part has no prefix worth resuming (see _open): no checkpoints,
        # whose fsync'd records stalled the loop when many small objects were in flight.
        if self.record is not None and self.state is not None and not self._one_part():
            on_written = self.checkpoints = checkpoints(self.record, self.state)
        if self.progress is not None:
            self.progress.started(info.size, max(1, options.part_size), start)
        await _spread(self.writer, info, options)
        digest = await stream(
            self.s3,
            info,
            self.writer,
            self.buffers,
            options.part_size,
            options.parts_in_flight,
            prefix=resumed,
            start=start,
            on_written=on_written,
            progress=self.progress,
            whole=self.listed,
            sha256=options.verify_readback,
            whole_sha256=options.verify_server_hash,
        )
        if digest.described is not None:
            self.info = info = digest.described
        checked = digest.check(info)
        written = await self.writer.finish(mtime=info.last_modified)
        if written != info.size:
            raise VerificationFailed(
                f"{self.writer.temp_path} holds {written} bytes, {info.url} has {info.size}",
                "nothing was left at the final name; run the copy again",
            )
        checked = f"{checked}+size" if checked else "size"
        if options.verify_readback:
            ranges = digest.sha256_ranges()
            told = None  # the row's "reading back N%": a long read back is no hang
            if self.progress is not None:
                told = partial(self.progress.checking, READING_BACK, size=info.size)
            await check_read_back(
                self.writer, info, ranges, self.buffers, options.part_size, on_progress=told
            )
            checked += "+readback-sha256"
        if options.verify_server_hash:
            hashed, why = await check_server_hash(self.writer, info.size, digest.whole)
            if hashed:
                checked += "+server-sha256"
            elif why:
                self.notes.append(f"not checked by the server's hash ({why})")
        return checked

    async def _publish(self, replace: bool) -> str | None:
        """Rename into place; how it was done, or None when skip-existing lost a race (a
        file appeared at the final name meanwhile; the temporary file is removed)."""
        try:
            published_by = await self.writer.publish(replace=replace)
        except TransferError:
            if not replace and await self.writer.exists(self.job.remote_path) is not None:
                await run_to_end(self.writer.discard())
                return None
            raise
        if self.record is not None:
            self.record.forget()
        return published_by

    async def _after_publish(self, checked: str, published_by: str) -> DeliveryResult:
        """The file is in place: its done file, the caller's row, then the source deleted."""
        info = self.info
        assert info is not None
        result = self._result(
            "done",
            verified_by=checked,
            etag=info.etag,
            version_id=info.version_id,
            published_by=published_by,
            message="; ".join(self.notes),
        )
        if self.options.done_suffix:
            done = await _write_done_file(self.writer, self.options.done_suffix)
            result = replace_result(result, done_file=done)
        if self.on_delivered is not None:
            await self.on_delivered(result)
        if self.options.delete_source:
            kept = await _delete_delivered(self.s3, info)
            message = "; ".join(n for n in (result.message, kept) if n)
            result = replace_result(result, source_deleted=not kept, message=message)
        return result

    async def _failed(self, exc: TransferError) -> DeliveryResult:
        """Remove the temporary file; the failure as a result (saying what was left)."""
        gone = await run_to_end(self.writer.discard())
        message = str(exc)
        if not gone:
            message += f" (the temporary file {self.writer.temp_path} could not be removed"
            message += "; the next run removes it)" if self.record is not None else ")"
        elif self.record is not None and not (self.state is None and self.left is not None):
            self.record.forget()  # (a file an earlier run left, not taken over, keeps it)
        return self._result("failed", message=message)


def record_of(
    job: DeliveryJob, target: DeliveryTarget, options: DeliveryOptions
) -> DeliveryRecord | None:
    """The record of ``job``'s destination file under ``options.record_dir`` (None: none
    kept), keyed as every front keys it (the CLI's and the TUI's are the same files)."""
    if options.record_dir is None:
        return None
    return DeliveryRecord(options.record_dir, f"{target.endpoint.display}{job.remote_path}")


async def discard_kept(
    job: DeliveryJob, *, sftp: SftpPool, target: DeliveryTarget, options: DeliveryOptions
) -> bool:
    """Remove the temporary file a paused delivery kept (its record says which) and forget
    the record: the user gave up on it (cancel, quit). True when nothing is left; False when
    the file could not be removed (or another run holds the record): the record stays, so
    the next delivery of the same file removes or resumes it — never an orphan."""
    record = record_of(job, target, options)
    if record is None:
        return True
    try:
        left = record.claim()
    except TransferError:
        return False
    try:
        if left is not None:
            writer = RemoteWriter(sftp, target.endpoint, job.remote_path)
            if not await writer.remove_left(left.temp_path):
                return False
        record.forget()  # the lock file too (claim made it when there was none)
        return True
    finally:
        record.release()
