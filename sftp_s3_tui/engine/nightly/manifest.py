"""The run's record (``--manifest PATH``): JSON lines, one row per file, written as each file
finishes and made durable before anything else happens to that file (its source is moved or
deleted only after its row is on disk). A crash leaves every row written so far.

A local manifest is appended to and fsync'd row by row. An ``s3://bucket/key`` manifest is
spooled to the same kind of local file (in the user state dir) and uploaded whole, at most
every few seconds and at the end; a run that crashed leaves the spool, and the next run with
the same manifest continues it, so no row is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..addresses import parse_s3_url
from ..durable import fsync_dir
from ..errors import UsageError
from ..s3.operations import S3Client, error_code, map_s3_error

UPLOAD_INTERVAL_SECONDS = 5.0  # an s3:// manifest is re-uploaded at most this often


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


class Manifest:
    """Open with :meth:`open`; :meth:`write` a row per file; :meth:`close` at the end."""

    def __init__(self, target: str, path: Path, s3: S3Client | None = None) -> None:
        self.target = target
        self.path = path  # the local file rows are appended to (the spool for s3://)
        self.s3 = s3
        self.rows = 0
        self._lock = asyncio.Lock()
        self._uploaded_at = 0.0
        self._dirty = False
        self._upload_task: asyncio.Task[None] | None = None
        self.upload_error: str | None = None

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
            spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            name = hashlib.sha256(target.encode()).hexdigest()[:24]
            manifest = cls(target, spool_dir / f"{name}.jsonl", s3)
            if not manifest.path.exists():
                await manifest._download_existing(location.bucket, location.key)
            else:
                manifest._dirty = True  # a crashed run's rows: upload them with ours
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

    async def _download_existing(self, bucket: str, key: str) -> None:
        """Start the spool from the object a previous run left, so rows accumulate."""
        assert self.s3 is not None
        try:
            response = await self.s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data = await body.read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                data = b""
            else:
                raise map_s3_error(exc, f"Reading the manifest {self.target}") from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, f"Reading the manifest {self.target}") from exc
        if data and not data.endswith(b"\n"):
            data += b"\n"
        await asyncio.to_thread(_append_durably, self.path, data)

    async def write(self, row: dict[str, Any]) -> None:
        """Append one row; when this returns, the row survives a crash (kill -9, power)."""
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        async with self._lock:
            await asyncio.to_thread(_append_durably, self.path, line)
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
        if self.s3 is None or not self._dirty:
            return
        location = parse_s3_url(self.target)
        async with self._lock:
            try:
                data = await asyncio.to_thread(self.path.read_bytes)
            except FileNotFoundError:  # another run took the spool over and finished it
                self._dirty = False
                return
            self._dirty = False
            self._uploaded_at = time.monotonic()
        try:
            await self.s3.put_object(
                Bucket=location.bucket,
                Key=location.key,
                Body=data,
                ContentType="application/x-ndjson",
            )
            self.upload_error = None
        except (ClientError, BotoCoreError) as exc:
            self._dirty = True  # the spool keeps the rows; the next upload tries again
            self.upload_error = map_s3_error(exc, f"Writing the manifest {self.target}").message

    async def close(self) -> None:
        """Upload an s3:// manifest a last time; its spool goes once the object has it."""
        if self._upload_task is not None:
            self._upload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upload_task
        if self.s3 is not None:
            self._dirty = True
            await self._upload()
            if self.upload_error is None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
