"""The open remote file of one transfer (see :class:`~.sftp.RemoteReader`)."""

from __future__ import annotations

from ..plan.sources import FileJob, part_size_for
from ..sftp.reader import RemoteReader
from .context import EngineContext

#: Read requests of one part in flight at once (255 KiB each on OpenSSH): a whole 8 MiB part
#: per round trip, however far the server. Their data is bounded by the part's buffer.
SFTP_REQUESTS_PER_READ = 64


class SourceFile:
    """The remote file of one transfer: a regular file with a known size (else refused),
    read over one or several connections, reopened after a connection drop; reads probe for
    EOF, so a file longer than its reported size is caught."""

    def __init__(self, ctx: EngineContext, job: FileJob, *, listed: bool = False) -> None:
        self.ctx = ctx
        self.job = job
        #: A one-part file is read by the size and mtime its job was listed with, without a
        #: stat first: one SFTP request less per small file. The read's EOF probe and the
        #: fstat after it check the file against them; when it changed since the listing,
        #: the transfer starts again from a stat (:class:`~.file.FileTransfer`).
        self.listed = listed and job.size <= ctx.options.part_size
        options = ctx.options
        self.reader = RemoteReader(
            ctx.sftp,
            job.endpoint,
            job.path,
            block_size=options.sftp_block_size or -1,
            max_requests=options.sftp_requests or SFTP_REQUESTS_PER_READ,
        )
        self._checked = False

    @property
    def width(self) -> int:
        """How many connections this file is read over (read that many parts at once)."""
        return self.reader.width

    async def attributes(self) -> tuple[int, int]:
        """(size, mtime) of the open file; the first call also checks what it is."""
        if self._checked:
            return await self.reader.fstat()
        if self.listed:
            self.reader.listed(self.job.size)
            self._checked = True
            return self.job.size, self.job.mtime
        size, mtime = await self.reader.stat()
        self._checked = True
        self.reader.expected_size = size
        await self.reader.spread(size, part_size_for(size, self.ctx.options.part_size))
        return size, mtime

    async def still_as_listed(self) -> bool:
        """Whether a stat by path still shows the listed size and mtime (a skip decided
        from the listing holds only then)."""
        entry = await self.ctx.sftp.stat(self.job.endpoint, self.job.path)
        return (entry.size, entry.mtime) == (self.job.size, self.job.mtime) and not (
            entry.problem or entry.is_dir
        )

    async def read(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; :class:`SourceChanged` when the file ends early or
        goes on past its expected size."""
        await self.reader.read(offset, view)

    async def reset(self) -> None:
        """Drop the open handles (a failed connection is already reset by the pool)."""
        await self.reader.reset()

    async def close(self) -> None:
        await self.reader.close()
