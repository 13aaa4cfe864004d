"""Reading one remote file: pipelined reads into a part's buffer, over one or several of its
host's connections, with a stall timeout per block and checks that the file neither shrank
nor grew while it was read."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import posixpath

import asyncssh

from ..config import SftpEndpoint
from ..errors import SftpConnectError, SftpReadError, SourceChanged, SourceUnsupported
from .entries import remote_entry
from .errors import is_connection_error, map_sftp_error
from .pool import Lease, SftpPool, TokenBucket

log = logging.getLogger(__name__)


async def read_into(
    file: asyncssh.SFTPClientFile,
    offset: int,
    view: memoryview,
    *,
    stall_seconds: float,
    bucket: TokenBucket | None = None,
) -> int:
    """Fill ``view`` from ``offset`` with pipelined reads; returns the bytes read (short at EOF).

    Raises ``TimeoutError`` when no block arrives for ``stall_seconds`` (a stalled server),
    however long the whole part takes on a slow but moving link. ``bucket`` paces the reads
    (a bandwidth limit): one bucket's burst in flight at a time.
    """
    count = 0
    if bucket is None and 0 < len(view) <= file.read_len:
        # One block (a small file, a short last part): one request, awaited as it is.
        # asyncssh's parallel reader would spend a task and an asyncio.wait on it.
        try:
            async with asyncio.timeout(stall_seconds):
                data = await _read_block(file, offset, len(view))
        except asyncssh.SFTPEOFError:
            return 0
        count = len(data)
        view[:count] = data
        if count == len(view) or not data:
            return count
        # A server may answer with less than it honours: read the rest as below.
    loop = asyncio.get_running_loop()
    step = max(64 * 1024, int(bucket.burst)) if bucket is not None else len(view)
    async with asyncio.timeout(stall_seconds) as deadline:
        while count < len(view):
            length = min(step, len(view) - count)
            got = 0
            reader = await file.read_parallel(length, offset + count)
            async for block_offset, data in reader:
                start = block_offset - offset
                view[start : start + len(data)] = data
                got += len(data)
                deadline.reschedule(loop.time() + stall_seconds)
            count += got
            if got < length:
                break
            if bucket is not None:
                deadline.reschedule(loop.time() + stall_seconds + got / bucket.rate)
                await bucket.take(got)
    return count


async def _read_block(file: asyncssh.SFTPClientFile, offset: int, length: int) -> bytes:
    """One SFTP read request of at most the server's read size; raises SFTPEOFError at EOF.

    asyncssh's ``SFTPClientFile`` has no public single-request read once a block size is
    set (``read`` then goes through its parallel reader), so this calls the request its
    reader sends, on the file's own handle.
    """
    handle = file._handle
    if handle is None:
        raise ValueError("I/O operation on closed file")  # as asyncssh's own read
    data, _at_eof = await file._handler.read(handle, offset, length)
    return data


async def _at_end(file: asyncssh.SFTPClientFile, offset: int) -> bool:
    """True when nothing is left at ``offset`` (a read there returns no byte: EOF)."""
    try:
        data = await _read_block(file, offset, 1)
    except asyncssh.SFTPEOFError:
        return True
    return not data


class RemoteReader:
    """One remote file open for reading, over one or several of its host's connections.

    The file's type and size are checked by path before it is opened (a FIFO is never
    opened: that blocks OpenSSH's sftp-server). A big file is read over up to
    ``endpoint.connections`` connections at once (parts spread across them, mscp's idea)
    when the host is far; every read that reaches the expected size checks for EOF, so
    bytes beyond the reported size are noticed. A file's own error leaves the connection
    alone; a dead connection is reset once and the handle reopened on the next read.
    """

    def __init__(
        self,
        sftp: SftpPool,
        endpoint: SftpEndpoint,
        path: str,
        *,
        block_size: int = -1,
        max_requests: int = -1,
    ) -> None:
        self.sftp = sftp
        self.endpoint = endpoint
        self.path = path
        self.block_size = block_size
        self.max_requests = max_requests
        self.expected_size: int | None = None
        self._handles: dict[int, tuple[Lease, asyncssh.SFTPClientFile]] = {}
        self._width = 1
        self._lock = asyncio.Lock()
        self._opening: dict[int, asyncio.Future[None]] = {}
        self._closed = False
        self._settle_read_size = False

    @property
    def width(self) -> int:
        """How many connections this file is read over."""
        return self._width

    async def stat(self) -> tuple[int, int]:
        """(size, mtime) of the file, opened meanwhile; refuses anything but a regular file
        with a known size. (Jobs come from listings and stats that already refused FIFOs,
        devices and sockets by type, so opening never blocks on one.)

        The stat by path goes out together with the open, not after it: one round trip for
        both on a far link, where small files cost round trips, not bytes. The read's EOF
        probe and the fstat after the read (:meth:`fstat`) check the open file against it.
        """
        opening = asyncio.ensure_future(self._handle(0))
        try:
            attrs = await self.sftp.request(self.endpoint, self.path, lambda c: c.stat(self.path))
        except BaseException:
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            raise
        await opening  # the open's own error (e.g. no read permission) if it failed
        entry = remote_entry(posixpath.basename(self.path), self.path, attrs)
        if self.block_size <= 0 and attrs.size and self._handles and not entry.problem:
            await self._use_server_read_size(attrs.size)
        if entry.problem or entry.is_dir:
            raise SourceUnsupported(
                entry.problem or f"{self.path} is a folder, not a file", "copy regular files only"
            )
        if attrs.size is None:
            raise SourceUnsupported(
                f"The SFTP server reports no size for {self.path}",
                "without a size the copy cannot be checked; nothing was published",
            )
        return attrs.size, int(attrs.mtime or 0)

    def listed(self, size: int) -> None:
        """Read by a size known from the listing: no stat and no open yet (the first read
        opens the file). The read's EOF probe and :meth:`fstat` check the file against it."""
        self.expected_size = size
        self._settle_read_size = self.block_size <= 0 and size > 0

    async def _use_server_read_size(self, size: int) -> None:
        """Read in the block size the server's profile found (probing it with this file
        when the host's read size is still unknown)."""
        first = self._handles[min(self._handles)][1]
        try:
            read_bytes = await self.sftp.settle_read_size(self.endpoint, first, size)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            log.info("%s: no read-size probe: %s", self.path, exc)
            return
        if read_bytes > 0:
            for _lease, file in self._handles.values():
                file.read_len = read_bytes

    async def spread(self, size: int, part_size: int) -> int:
        """Use up to ``endpoint.connections`` handles for a file of several parts on a far
        host (the minimum of several RTT samples decides); returns how many."""
        parts = -(-size // max(part_size, 1))
        far = parts > 1 and await self.sftp.settled_far(self.endpoint)
        self._width = max(1, min(self.endpoint.connections, parts)) if far else 1
        if self._handles:  # log the further connections in now, not at their first part:
            for index in range(1, self._width):  # the file's first parts come meanwhile
                self._open_later(index)
        return self._width

    def _open_later(self, index: int) -> None:
        """Open handle ``index`` in the background (its connection may need a login)."""
        if index in self._handles or index in self._opening or self._closed:
            return
        task = asyncio.ensure_future(self._open(index))
        self._opening[index] = task
        task.add_done_callback(functools.partial(self._opened, index))

    async def _handle(self, index: int) -> tuple[int, Lease, asyncssh.SFTPClientFile]:
        """The handle for ``index``; while a further connection logs in (in the background)
        its parts use a handle already open, so no part waits for a login."""
        found = self._handles.get(index)
        if found is not None:
            return (index, *found)
        if self._handles:
            self._open_later(index)
            first = min(self._handles)
            return (first, *self._handles[first])
        async with self._lock:
            if index not in self._handles and not self._handles:
                await self._open(index)
        return await self._handle(index)

    def _opened(self, index: int, task: asyncio.Future[None]) -> None:
        self._opening.pop(index, None)
        if not task.cancelled() and task.exception() is not None:
            log.info("%s: a further connection failed: %s", self.path, task.exception())

    async def _open(self, index: int) -> None:
        try:
            lease = await self.sftp.lease(self.endpoint, slot=index if self._width > 1 else None)
        except SftpConnectError as exc:
            if type(exc) is not SftpConnectError:
                raise  # refused login or host key: not about this file
            raise SftpReadError(f"Reading {self.path} failed: {exc.message}", exc.hint) from exc
        try:
            file = await self.sftp.request(
                self.endpoint,
                self.path,
                lambda c: c.open(
                    self.path,
                    "rb",
                    block_size=self.block_size
                    if self.block_size > 0
                    else self.sftp.read_block_bytes(self.endpoint),
                    max_requests=self.max_requests,
                ),
                lease=lease,
            )
        except BaseException:
            self.sftp.release(self.endpoint, lease)
            raise
        if self._closed:
            self.sftp.release(self.endpoint, lease)
            with contextlib.suppress(Exception):
                await file.close()
            return
        self._handles[index] = (lease, file)

    async def read(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; a short read means the file shrank, bytes beyond
        the expected size that it grew (both :class:`SourceChanged`)."""
        index, lease, file = await self._handle((offset // max(len(view), 1)) % self._width)
        if self._settle_read_size and self.expected_size is not None:
            self._settle_read_size = False
            await self._use_server_read_size(self.expected_size)
        timeout = self.endpoint.request_timeout_seconds
        end = offset + len(view)
        # The read that reaches the expected size also asks for one byte past it, sent
        # alongside (no extra round trip): EOF there, or the file is longer than reported.
        probe = None
        if self.expected_size is not None and end >= self.expected_size:
            probe = asyncio.ensure_future(_at_end(file, end))
        try:
            count = await read_into(
                file, offset, view, stall_seconds=timeout, bucket=self.sftp.throttle(self.endpoint)
            )
            at_end = True
            if probe is not None:
                async with asyncio.timeout(timeout):
                    at_end = await probe
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            # Drop this handle before awaiting the reconnect's teardown: a part retrying
            # meanwhile must not be lent the same dead handle (it would fail at once with
            # "Connection not open" and spend its attempts). Only this handle: another part
            # may already have opened a fresh one at the same index.
            if is_connection_error(exc):
                self._forget_handle(index, file)
            if await self.sftp.forget_if_dead(self.endpoint, lease, exc):
                self._forget_handle(index, file)
            raise map_sftp_error(exc, self.path) from exc
        finally:
            if probe is not None and not probe.done():
                probe.cancel()
        if count < len(view):
            raise SourceChanged(
                f"{self.path} ended at {offset + count} bytes, expected {self.expected_size}",
                "the file shrank while it was read; nothing was published",
            )
        if not at_end:
            raise SourceChanged(
                f"{self.path} changed while it was read: it goes on past the "
                f"{self.expected_size} bytes the server reported",
                "nothing was published; transfer it again once it is complete "
                "(or the server reports a wrong size)",
            )

    async def fstat(self) -> tuple[int, int]:
        """(size, mtime) of the open file (the first handle)."""
        _index, lease, file = await self._handle(0)
        attrs = await self.sftp.request(
            self.endpoint, self.path, lambda _client: file.stat(), lease=lease
        )
        return attrs.size or 0, int(attrs.mtime or 0)

    def _forget_handle(self, index: int, file: asyncssh.SFTPClientFile) -> None:
        """Stop lending handle ``index`` if it is still ``file`` (not a newer one)."""
        found = self._handles.get(index)
        if found is not None and found[1] is file:
            del self._handles[index]
            self.sftp.release(self.endpoint, found[0])

    async def reset(self) -> None:
        """Drop every handle (their connections stay unless they failed)."""
        await self._close_handles(1.0)

    async def close(self) -> None:
        """Give the connections back; the handles close in the background (saves a round
        trip per file on a far link; logging out does not wait for their answers)."""
        self._closed = True
        pending = list(self._opening.values())
        if pending:  # most files: none (a gather of nothing still costs a future)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for index in list(self._handles):
            file = self._handles[index][1]
            self._forget_handle(index, file)
            self.sftp.close_later(file)

    async def _close_handles(self, seconds: float) -> None:
        for index in list(self._handles):
            file = self._handles[index][1]
            self._forget_handle(index, file)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(seconds):  # not wait_for: it can swallow a cancel
                    await file.close()
