"""The open remote file of one transfer, reopened (with a new connection if need be)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncssh

from .context import EngineContext
from .errors import SourceChanged
from .plan import FileJob
from .sftp import map_sftp_error, read_into


class Source:
    """The open remote file, reopened (with a new connection if need be) after a drop."""

    def __init__(self, ctx: EngineContext, job: FileJob) -> None:
        self.ctx = ctx
        self.job = job
        self._file: asyncssh.SFTPClientFile | None = None
        self._client: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    async def file(self) -> asyncssh.SFTPClientFile:
        async with self._lock:
            if self._file is None:
                options = self.ctx.options
                self._client = await self.ctx.sftp.client(self.job.endpoint)
                try:
                    async with asyncio.timeout(self.job.endpoint.request_timeout_seconds):
                        self._file = await self._client.open(
                            self.job.path,
                            "rb",
                            block_size=options.sftp_block_size or -1,
                            max_requests=options.sftp_requests or -1,
                        )
                except (OSError, asyncssh.Error, TimeoutError) as exc:
                    if isinstance(exc, TimeoutError):  # a stalled connection: reconnect next time
                        await self.ctx.sftp.invalidate(self.job.endpoint, self._client)
                    raise map_sftp_error(exc, self.job.path) from exc
            return self._file

    async def attributes(self) -> tuple[int, int]:
        """Current (size, mtime) of the open file."""
        file = await self.file()
        timeout = self.job.endpoint.request_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                attrs = await file.stat()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.reset()
            raise map_sftp_error(exc, self.job.path) from exc
        return attrs.size or 0, int(attrs.mtime or 0)

    async def read(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; a short read means the file shrank."""
        file = await self.file()
        timeout = self.job.endpoint.request_timeout_seconds
        try:
            count = await read_into(file, offset, view, stall_seconds=timeout)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.reset()
            raise map_sftp_error(exc, self.job.path) from exc
        if count != len(view):
            raise SourceChanged(
                f"{self.job.path} ended at {offset + count} bytes, expected {self.job.size}",
                "the file shrank while it was read; nothing was published",
            )

    async def reset(self) -> None:
        """Forget the file and its connection so the next read reconnects."""
        file, client = self._file, self._client
        self._file = self._client = None
        if file is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):  # not wait_for: it can swallow a cancel (3.11)
                    await file.close()
        if client is not None:
            await self.ctx.sftp.invalidate(self.job.endpoint, client)

    async def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):  # not wait_for: it can swallow a cancel (3.11)
                    await self._file.close()
            self._file = None
