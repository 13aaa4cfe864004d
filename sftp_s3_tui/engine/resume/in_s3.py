"""Resume state beside the data in S3, for runs that continue on another machine.

An Airflow retry lands on another worker whose disk has no journal. With
``TransferOptions.resume_in_s3`` each multipart upload also keeps a small JSON record in the
destination bucket, next to its object: ``<folder>/.sftp-s3-tui-resume/<name>.json`` (the same
prefix as the key, so the same IAM rights cover it). It holds what the local journal holds (the
upload, the source's size and mtime, the finished parts and the latest digest checkpoint),
rewritten as the upload advances (one PutObject in flight at a time, at most every
``min_interval_seconds``), and deleted once the upload is completed or aborted. A run whose
local journal has no record of the key reads it and continues the upload, reconciled with
ListParts like a local record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
from typing import Any

from ..config import ChecksumChoice
from ..digest import DigestState
from ..errors import TransferError
from ..s3 import operations as s3
from .journal import JournalEntry

log = logging.getLogger(__name__)

RECORD_FOLDER = ".sftp-s3-tui-resume"


def record_key(key: str) -> str:
    """Where the shared record of ``key`` lives: beside it, in a dot folder."""
    folder, name = posixpath.split(key)
    return posixpath.join(folder, RECORD_FOLDER, f"{name}.json")


def _encode(entry: JournalEntry) -> bytes:
    record: dict[str, Any] = dict(entry.header())
    record["parts"] = {str(n): [etag, crc] for n, (etag, crc) in sorted(entry.parts.items())}
    if entry.digest:
        through = max(entry.digest)
        state = entry.digest[through]
        record["digest"] = {
            "after": through,
            "position": state.position,
            "crc64": state.crc64nvme,
            "sha": state.sha256_state,
        }
    return json.dumps(record, separators=(",", ":")).encode()


def _decode(data: bytes) -> JournalEntry | None:
    try:
        record = json.loads(data)
        entry = JournalEntry(
            source=record["source"],
            bucket=record["bucket"],
            key=record["key"],
            upload_id=record["upload_id"],
            part_size=int(record["part_size"]),
            size=int(record["size"]),
            mtime=int(record["mtime"]),
            started=float(record.get("started", 0)),
            # the algorithm the parts were sent with (the store check may have chosen CRC32,
            # CRC32C or MD5): a retry must send the rest and Complete with the same one
            checksum=ChecksumChoice(record.get("checksum", "crc64nvme")).value,
            endpoint=str(record.get("endpoint", "")),
            account=str(record.get("account", "")),
            host_key=str(record.get("host_key", "")),
            login=str(record.get("login", "")),
        )
        for number, (etag, crc) in record.get("parts", {}).items():
            entry.parts[int(number)] = (str(etag), str(crc))
        digest = record.get("digest")
        if digest:
            entry.digest[int(digest["after"])] = DigestState(
                int(digest["position"]), int(digest["crc64"]), str(digest["sha"])
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return entry


async def load(client: s3.S3Client, bucket: str, key: str) -> JournalEntry | None:
    """The shared record of ``key``, if a run elsewhere left one (and it is readable)."""
    try:
        data = await s3.get_small_object(client, bucket, record_key(key))
    except TransferError as exc:
        log.warning("the shared resume record of s3://%s/%s cannot be read: %s", bucket, key, exc)
        return None
    if data is None:
        return None
    entry = _decode(data)
    if entry is None or entry.bucket != bucket or entry.key != key:
        log.warning("ignoring a damaged shared resume record of s3://%s/%s", bucket, key)
        return None
    return entry


class SharedRecord:
    """The shared record of one upload, kept in step with its local journal record."""

    def __init__(
        self, client: s3.S3Client, entry: JournalEntry, *, min_interval_seconds: float = 1.0
    ) -> None:
        self.client = client
        self.entry = entry
        self.key = record_key(entry.key)
        self.min_interval_seconds = min_interval_seconds
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: The writer's save under way: shielded from the writer's cancel, and awaited
        #: before the record is saved or deleted again (a PUT cancelled mid-way may still
        #: land after a DELETE sent on another connection, and leave the record behind).
        self._saving: asyncio.Future[None] | None = None
        self._failed = False

    async def save(self) -> None:
        """Write the record now (at the start of an upload: a crash right after finds it)."""
        await s3.put_object(
            self.client,
            self.entry.bucket,
            self.key,
            bytearray(_encode(self.entry)),
            ContentType="application/json",
        )

    def part_done(self, number: int, etag: str, checksum: str) -> None:
        self.entry.parts[number] = (etag, checksum)

    def digest_at(self, number: int, state: DigestState) -> None:
        self.entry.digest = {number: state}

    def flush(self) -> None:
        """Have the background writer save the current state soon (coalesced)."""
        if self._failed:
            return
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._writer())

    async def _writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._saving = asyncio.ensure_future(self.save())
            try:
                await asyncio.shield(self._saving)
            except TransferError as exc:  # the local journal still has it all
                log.warning("the shared resume record %s cannot be written: %s", self.key, exc)
                self._failed = True
                return
            await asyncio.sleep(self.min_interval_seconds)

    async def _stop_writer(self) -> None:
        """Stop the background writer and wait for a save it has under way."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        saving, self._saving = self._saving, None
        if saving is not None:
            with contextlib.suppress(TransferError, asyncio.CancelledError):
                await saving

    async def close(self) -> None:
        """Stop the writer, saving the last state (the upload may still be open)."""
        await self._stop_writer()
        if not self._failed:
            with contextlib.suppress(TransferError):
                await self.save()

    async def delete(self) -> None:
        """The upload is completed or aborted: nobody needs the record any more."""
        await self._stop_writer()
        try:
            await s3.delete_object(self.client, self.entry.bucket, self.key)
        except TransferError as exc:
            log.warning("the shared resume record %s could not be removed: %s", self.key, exc)
