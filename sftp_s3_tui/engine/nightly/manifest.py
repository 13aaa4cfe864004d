"""The run's record (``--manifest PATH``): JSON lines, one row per file, written as each file
finishes and made durable before anything else happens to that file (its source is moved or
deleted only after its row is on disk). A crash leaves every row written so far; a row that
cannot be written (disk full, EIO, a folder at the path) is a :class:`ManifestWriteFailed`.

A local manifest is appended to and fsync'd row by row: two runs sharing it both append
(each row one ``O_APPEND`` write), so neither loses the other's rows.

An ``s3://bucket/key`` manifest is spooled row by row to a local file of this run alone (in
the user state dir, locked with ``flock`` while the run lives) and merged into the object at
most every few seconds and at the end. The merge is a read-modify-write made safe by S3's
conditional writes: GET the object and its ETag, append this run's rows that it does not hold
yet, PUT with ``If-Match: <etag>`` (``If-None-Match: *`` when there is no object yet), and on
412 read again and retry. So two runs writing the same manifest at once — a cron overlap, an
Airflow retry while the first attempt still runs, two hosts — never replace each other's rows.
Chosen over one object per run plus a merge because the user names one object and reads one
object; AWS S3, SeaweedFS and moto all refuse a stale ``If-Match`` with 412 (probed in
``tests/nightly/test_shared_manifest.py``). A run that crashed leaves its spool unlocked; the
next run with the same manifest finds it, merges its rows with its own, and removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import random
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..addresses import parse_s3_url
from ..durable import fsync_dir
from ..errors import ManifestWriteFailed, TransferError, UsageError
from ..s3.operations import S3Client, error_code, map_s3_error

UPLOAD_INTERVAL_SECONDS = 5.0  # an s3:// manifest is merged into its object at most this often
MERGE_ATTEMPTS = 20  # conditional PUTs lost to other runs before this merge gives up for now
# What a store answers when the object changed since our GET: a stale If-Match (412), a
# concurrent conditional write (409 on AWS), an If-Match on an object deleted meanwhile.
_CHANGED = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404"}


def iso(epoch: float | None) -> str | None:
    """UTC ISO-8601 with milliseconds, or None."""
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _append_durably(path: Path, line: bytes) -> None:
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


class _Spool:
    """This run's local copy of its rows for an ``s3://`` manifest: a file of its own,
    ``flock``-ed while the run lives, so a later run can tell a live run's spool (locked) from
    a crashed one's (unlocked) and take the latter over."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def create(cls, folder: Path, stem: str) -> _Spool:
        # Made and locked under a name the takeover scan ignores, then renamed into view:
        # no other run can see it unlocked.
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        hidden = folder / f"{stem}.{token}.jsonl.new"
        fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = folder / f"{stem}.{token}.jsonl"
        os.rename(hidden, path)
        fsync_dir(folder)
        return cls(path, fd)

    @classmethod
    def orphans(cls, folder: Path, stem: str, own: Path) -> list[_Spool]:
        """The spools of runs that died with rows not merged (their lock is free), locked
        now by us. ``{stem}.jsonl`` is the shared spool of earlier versions."""
        found = []
        for path in sorted(folder.glob(f"{stem}*.jsonl")):
            if path == own:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:  # merged and removed by its owner meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live run's
                os.close(fd)
                continue
            found.append(cls(path, fd))
        return found

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock
            self.fd = -1


class Manifest:
    """Open with :meth:`open`; :meth:`write` a row per file; :meth:`close` at the end."""

    def __init__(self, target: str, path: Path, s3: S3Client | None = None) -> None:
        self.target = target
        self.path = path  # the local file rows are appended to (the spool for s3://)
        self.s3 = s3
        self.rows = 0
        self._lock = asyncio.Lock()  # one append or one merge at a time
        self._uploaded_at = 0.0
        self._dirty = False
        self._upload_task: asyncio.Task[None] | None = None
        self.upload_error: str | None = None
        self.failure: str | None = None  # the last row that could not be written, why
        self._spool: _Spool | None = None
        self._orphans: list[_Spool] = []  # crashed runs' spools, merged with ours
        self._merged_offset = 0  # our spool's bytes the object is known to hold

    @classmethod
    async def open(
        cls, target: str, *, s3: S3Client | None = None, spool_dir: Path | None = None
    ) -> Manifest:
        """A manifest at a local path or ``s3://bucket/key`` (then ``s3`` and ``spool_dir``)."""
        if target.startswith("s3://"):
            location = parse_s3_url(target)
            if location.is_prefix:
                raise UsageError(
                    f"The manifest {target} names a prefix", "give a key, e.g. s3://b/runs/x.jsonl"
                )
            if s3 is None or spool_dir is None:
                raise UsageError("An s3:// manifest needs the S3 client and a spool folder")
            stem = hashlib.sha256(target.encode()).hexdigest()[:24]
            try:
                spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                spool = await asyncio.to_thread(_Spool.create, spool_dir, stem)
            except OSError as exc:
                raise UsageError(
                    f"The manifest's spool folder {spool_dir} cannot be written: {exc.strerror}",
                    "check the state folder's space and rights",
                ) from exc
            manifest = cls(target, spool.path, s3)
            manifest._spool = spool
            manifest._orphans = await asyncio.to_thread(_Spool.orphans, spool_dir, stem, spool.path)
            try:
                await manifest._read_object()  # unreadable (no rights, no bucket): say so now
            except BaseException:
                manifest._release()
                raise
            manifest._dirty = bool(manifest._orphans)  # a crashed run's rows: merge them
            return manifest
        path = Path(target).expanduser()
        if path.is_dir():
            raise UsageError(f"The manifest {target} is a folder", "give a file name")
        if not path.parent.is_dir():
            raise UsageError(
                f"The manifest's folder {path.parent} does not exist", "create it first"
            )
        try:
            await asyncio.to_thread(_append_durably, path, b"")
        except OSError as exc:
            raise UsageError(
                f"The manifest {target} cannot be written: {exc.strerror}", "check the path"
            ) from exc
        return cls(target, path)

    async def _read_object(self) -> tuple[bytes, str | None]:
        """The object's bytes and ETag (``b""`` and None when there is none yet)."""
        assert self.s3 is not None
        location = parse_s3_url(self.target)
        try:
            response = await self.s3.get_object(Bucket=location.bucket, Key=location.key)
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data, str(response["ETag"])
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return b"", None
            raise map_s3_error(exc, f"Reading the manifest {self.target}") from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, f"Reading the manifest {self.target}") from exc

    async def write(self, row: dict[str, Any]) -> None:
        """Append one row; when this returns, the row survives a crash (kill -9, power).

        Raises :class:`ManifestWriteFailed` when the row could not be made durable."""
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        async with self._lock:
            try:
                await asyncio.to_thread(_append_durably, self.path, line)
            except OSError as exc:
                error = ManifestWriteFailed(
                    f"the manifest {self.path} could not be written: "
                    f"{exc.strerror or type(exc).__name__}",
                    "free space or fix the path; sources without a row are kept",
                )
                self.failure = error.message
                raise error from exc
            self.rows += 1
        if self.s3 is not None:
            self._dirty = True
            if time.monotonic() - self._uploaded_at >= UPLOAD_INTERVAL_SECONDS:
                await self._upload()
            elif self._upload_task is None or self._upload_task.done():
                self._upload_task = asyncio.create_task(self._upload_later())

    async def _upload_later(self) -> None:
        await asyncio.sleep(UPLOAD_INTERVAL_SECONDS)
        await self._upload()

    async def _upload(self) -> None:
        """Merge the rows the object lacks into it (see the module's docstring)."""
        if self.s3 is None or not self._dirty:
            return
        async with self._lock:
            self._dirty = False
            self._uploaded_at = time.monotonic()
            try:
                merged_to = await self._merge()
                self.upload_error = None
            except (ClientError, BotoCoreError, OSError, TransferError) as exc:
                self._dirty = True  # the spools keep the rows; the next merge tries again
                self.upload_error = map_s3_error(exc, f"Writing the manifest {self.target}").message
                return
        self._merged_offset = merged_to
        for orphan in self._orphans:
            orphan.remove()
        self._orphans = []

    async def _merge(self) -> int:
        """One merge; returns how far into our spool the object now holds our rows."""
        assert self.s3 is not None
        location = parse_s3_url(self.target)
        ours = await asyncio.to_thread(self.path.read_bytes)
        pending = [
            line
            for orphan in self._orphans
            for line in (await asyncio.to_thread(orphan.path.read_bytes)).splitlines()
        ]
        pending += ours[self._merged_offset :].splitlines()
        pending = [line for line in pending if line.strip()]
        for attempt in range(MERGE_ATTEMPTS):
            data, etag = await self._read_object()
            # A row is a whole line with its own timestamp: one the object already holds was
            # merged before (by us, when a PUT's answer was lost, or by a crashed run).
            held = set(data.splitlines())
            missing = [line for line in pending if line not in held]
            if not missing:
                return len(ours)
            if data and not data.endswith(b"\n"):
                data += b"\n"
            condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
            try:
                await self.s3.put_object(
                    Bucket=location.bucket,
                    Key=location.key,
                    Body=data + b"".join(line + b"\n" for line in missing),
                    ContentType="application/x-ndjson",
                    **condition,
                )
                return len(ours)
            except ClientError as exc:
                if error_code(exc) not in _CHANGED:
                    raise
            # Another run wrote in between: read its rows and try again, spread out.
            await asyncio.sleep(random.uniform(0.05, 0.2) * min(attempt + 1, 10))
        raise ManifestWriteFailed(
            f"the manifest {self.target} kept changing under {MERGE_ATTEMPTS} merges",
            "too many runs write it at once",
        )

    async def close(self) -> None:
        """Merge an s3:// manifest a last time; its spool goes once the object has it."""
        if self._upload_task is not None:
            self._upload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upload_task
        if self.s3 is not None:
            self._dirty = True
            await self._upload()
            if self.upload_error is None and self._spool is not None:
                self._spool.remove()
                self._spool = None
            self._release()

    def _release(self) -> None:
        """Unlock the spools (kept on disk for the next run when not merged)."""
        if self._spool is not None:
            self._spool.close()
        for orphan in self._orphans:
            orphan.close()
