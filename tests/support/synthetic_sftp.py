"""An embedded asyncssh SFTP server whose files exist only as numbers: a folder of any number of
small files, listed, stat'ed and read over real SFTP without a byte on disk.

File ``i`` of the tree is ``/many/f{i:07d}.csv``; its size cycles through ``min_size`` to
``max_size`` (so the engine sees thousands of distinct sizes) and its content repeats the line
``f"{i:08d}\\n"``, so any object can be checked against :meth:`SyntheticTree.content`.

:class:`Quirks` make it behave like servers that are not at hand: Windows OpenSSH (reads
above 100 KiB answered with 102,400 bytes), appliances refusing a second connection, servers
refusing a second open of a file. (A server with no rename at all is
``tests/support/nightly.py``'s ``stubborn_sftp``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import weakref
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import asyncssh

from sftp_s3_tui.demo import SAMPLE_MTIME, EmbeddedSftpServer
from sftp_s3_tui.demo.sftp_server import _AuthServer

_LINE = 9  # bytes of one content line


@dataclass(frozen=True)
class SyntheticTree:
    """``count`` files in ``/folder``; sizes ``min_size``..``max_size`` bytes."""

    count: int
    folder: str = "many"
    min_size: int = 1000
    max_size: int = 16_000
    mtime: int = SAMPLE_MTIME

    def name(self, index: int) -> str:
        return f"f{index:07d}.csv"

    def path(self, index: int) -> str:
        return f"/{self.folder}/{self.name(index)}"

    def key(self, index: int, prefix: str = "") -> str:
        return f"{prefix}{self.name(index)}"

    def size(self, index: int) -> int:
        return self.min_size + (index * 7919) % (self.max_size - self.min_size + 1)

    @property
    def total_bytes(self) -> int:
        return sum(self.size(i) for i in range(self.count))

    def content(self, index: int, offset: int = 0, length: int | None = None) -> bytes:
        size = self.size(index)
        end = size if length is None else min(size, offset + length)
        if offset >= end:
            return b""
        first = offset // _LINE
        lines = (end - first * _LINE + _LINE - 1) // _LINE
        block = f"{index:08d}\n".encode() * lines
        return block[offset - first * _LINE : end - first * _LINE]

    def sha256(self, index: int) -> str:
        return hashlib.sha256(self.content(index)).hexdigest()

    def index_of(self, path: bytes) -> int | None:
        """The file a path names, or None."""
        folder, name = posixpath.split(posixpath.normpath(path.decode(errors="replace")))
        if folder != f"/{self.folder}" or not (name.startswith("f") and name.endswith(".csv")):
            return None
        digits = name[1:-4]
        if not digits.isdigit() or len(digits) != 7:
            return None
        index = int(digits)
        return index if index < self.count else None


#: Win32-OpenSSH answers any read above 100 KiB with this many bytes (PowerShell/Win32-OpenSSH
#: #1395); a client that takes the short answer for EOF loses data.
WINDOWS_READ_CUT = 102_400


@dataclass(frozen=True)
class Quirks:
    """How the synthetic server misbehaves (all off by default)."""

    #: Answer a read of more than this many bytes with this many (0: answer in full).
    cut_reads_above: int = 0
    #: Refuse a connection while this many are open (0: any number).
    max_connections: int = 0
    #: Refuse to open a file that is already open (some Windows and MFT servers).
    exclusive_opens: bool = False
    #: Hold every read until a second open was refused, at most this many seconds (0: no).
    hold_reads_until_refused_open: float = 0.0
    #: Hold every read until a connection was refused, at most this many seconds (0: no).
    hold_reads_until_refused_connection: float = 0.0
    #: Grant one SFTP session per SSH connection, closing any further one at once (MFT
    #: suites and appliances that map one session to one licensed login).
    one_session_per_connection: bool = False


@dataclass
class QuirkStats:
    """What the quirky server saw (for assertions)."""

    read_sizes: list[int] = field(default_factory=list)
    refused_connections: int = 0
    refused_opens: int = 0
    sessions: int = 0
    refused_sessions: int = 0
    open_refused: asyncio.Event = field(default_factory=asyncio.Event)
    connection_refused: asyncio.Event = field(default_factory=asyncio.Event)


def _attrs(kind: int, size: int, mtime: int) -> asyncssh.SFTPAttrs:
    permissions = 0o100644 if kind == asyncssh.FILEXFER_TYPE_REGULAR else 0o40755
    return asyncssh.SFTPAttrs(
        type=kind, size=size, permissions=permissions, atime=mtime, mtime=mtime, uid=0, gid=0
    )


class _Open:
    """An open file of the tree (asyncssh wants a truthy file object: not the int 0)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _TreeSFTPServer(asyncssh.SFTPServer):
    """Serves a :class:`SyntheticTree` read-only: ``/``, ``/folder`` and its files."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        tree: SyntheticTree,
        quirks: Quirks | None = None,
        stats: QuirkStats | None = None,
        open_files: set[int] | None = None,
    ) -> None:
        super().__init__(chan)
        self.tree = tree
        self.quirks = quirks or Quirks()
        self.stats = stats or QuirkStats()
        self.open_files = open_files if open_files is not None else set()

    def _lookup(self, path: bytes) -> asyncssh.SFTPAttrs:
        tree = self.tree
        normal = posixpath.normpath(path.decode(errors="replace") or "/")
        if normal in ("/", ".", f"/{tree.folder}"):
            return _attrs(asyncssh.FILEXFER_TYPE_DIRECTORY, 4096, tree.mtime)
        index = tree.index_of(path)
        if index is None:
            raise asyncssh.SFTPNoSuchFile(f"{normal} does not exist")
        return _attrs(asyncssh.FILEXFER_TYPE_REGULAR, tree.size(index), tree.mtime)

    def realpath(self, path: bytes) -> bytes:
        text = path.decode(errors="replace") or "/"
        return posixpath.normpath(posixpath.join("/", text)).encode()

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._lookup(self.realpath(path))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._lookup(self.realpath(path))

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        tree = self.tree
        normal = self.realpath(path).decode()
        here = self._lookup(path)
        yield asyncssh.SFTPName(b".", attrs=here)
        yield asyncssh.SFTPName(b"..", attrs=here)
        if normal == "/":
            folder = _attrs(asyncssh.FILEXFER_TYPE_DIRECTORY, 4096, tree.mtime)
            yield asyncssh.SFTPName(tree.folder.encode(), attrs=folder)
            return
        if normal != f"/{tree.folder}":
            raise asyncssh.SFTPNoSuchFile(f"{normal} is not a folder")
        for index in range(tree.count):
            attrs = _attrs(asyncssh.FILEXFER_TYPE_REGULAR, tree.size(index), tree.mtime)
            yield asyncssh.SFTPName(tree.name(index).encode(), attrs=attrs)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_APPEND):
            raise asyncssh.SFTPPermissionDenied("the synthetic tree is read-only")
        index = self.tree.index_of(self.realpath(path))
        if index is None:
            raise asyncssh.SFTPNoSuchFile(f"{path.decode(errors='replace')} does not exist")
        if self.quirks.exclusive_opens:
            if index in self.open_files:
                self.stats.refused_opens += 1
                self.stats.open_refused.set()
                raise asyncssh.SFTPFailure("The process cannot access the file: it is in use")
            self.open_files.add(index)
        return _Open(index)

    def read(self, file_obj: object, offset: int, size: int) -> bytes | Awaitable[bytes]:
        assert isinstance(file_obj, _Open)
        self.stats.read_sizes.append(size)
        cut = self.quirks.cut_reads_above
        if cut and size > cut:
            size = cut
        if self.quirks.hold_reads_until_refused_open:
            hold = self.quirks.hold_reads_until_refused_open, self.stats.open_refused
            return self._read_once_refused(file_obj.index, offset, size, *hold)
        if self.quirks.hold_reads_until_refused_connection:
            hold = self.quirks.hold_reads_until_refused_connection, self.stats.connection_refused
            return self._read_once_refused(file_obj.index, offset, size, *hold)
        return self.tree.content(file_obj.index, offset, size)

    async def _read_once_refused(
        self, index: int, offset: int, size: int, most_seconds: float, refused: asyncio.Event
    ) -> bytes:
        """Answer once a second open (or connection) was refused, or after a while: the
        client's further connections then always try while the file is being read, however
        fast the machine reads, instead of only when the read happens to be slower than a
        login."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(most_seconds):
                await refused.wait()
        return self.tree.content(index, offset, size)

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert isinstance(file_obj, _Open)
        size = self.tree.size(file_obj.index)
        return _attrs(asyncssh.FILEXFER_TYPE_REGULAR, size, self.tree.mtime)

    def close(self, file_obj: object) -> None:
        if isinstance(file_obj, _Open):
            self.open_files.discard(file_obj.index)
        return None


class _QuirkAuth(_AuthServer):
    """Logins as the embedded server's, refusing connections beyond ``max_connections``."""

    def __init__(self, *args: object, quirks: Quirks, stats: QuirkStats) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.quirks = quirks
        self.stats = stats

    def begin_auth(self, username: str) -> bool:
        limit = self.quirks.max_connections
        if limit and len(self._connections) > limit and self._conn is not None:
            self.stats.refused_connections += 1
            self._conn.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, "Too many connections for this user"
            )
            self.stats.connection_refused.set()
        return True


class SyntheticSftpServer(EmbeddedSftpServer):
    """The embedded server (same logins and host key handling) serving a synthetic tree."""

    def __init__(self, tree: SyntheticTree, quirks: Quirks | None = None, **kwargs: object) -> None:
        super().__init__("/", **kwargs)  # type: ignore[arg-type]
        self.tree = tree
        self.quirks = quirks or Quirks()
        self.quirk_stats = QuirkStats()
        self._open_files: set[int] = set()
        self._sessions_per_connection: weakref.WeakKeyDictionary[object, int] = (
            weakref.WeakKeyDictionary()
        )

    def _sftp_session(self, chan: asyncssh.SSHServerChannel) -> _TreeSFTPServer:
        self.quirk_stats.sessions += 1
        conn = chan.get_connection()
        count = self._sessions_per_connection.get(conn, 0) + 1
        self._sessions_per_connection[conn] = count
        if self.quirks.one_session_per_connection and count > 1:
            self.quirk_stats.refused_sessions += 1
            chan.close()  # what such a server does: the second session ends before its init
        return _TreeSFTPServer(chan, self.tree, self.quirks, self.quirk_stats, self._open_files)

    async def start(self) -> SyntheticSftpServer:
        quirks, stats = self.quirks, self.quirk_stats
        self._acceptor = await asyncssh.listen(
            self._host,
            self._requested_port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _QuirkAuth(
                self.users, self._authorized, self._connections, quirks=quirks, stats=stats
            ),
            sftp_factory=self._sftp_session,
            allow_scp=False,
            reuse_address=True,
        )
        return self
