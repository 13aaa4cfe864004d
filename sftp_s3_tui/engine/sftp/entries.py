"""What a remote listing or stat yields: :class:`RemoteEntry` with its :class:`Kind` and, for
anything that cannot be copied (a FIFO, a device, a dangling link, a name that is not UTF-8),
the reason, so that entry fails alone and the rest of the listing goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from ..config import SftpEndpoint
from ..errors import TransferError
from .errors import is_connection_error, map_sftp_error

if TYPE_CHECKING:
    from .pool import SftpPool

LINK_STATS_AT_ONCE = 32  # a folder of links over a far link: resolve them concurrently


class Kind:
    """What a remote entry is (only regular files are copied)."""

    FILE = "file"
    FOLDER = "folder"
    LINK = "symlink"  # a link whose target could not be resolved
    FIFO = "FIFO"
    SOCKET = "socket"
    CHAR_DEVICE = "character device"
    BLOCK_DEVICE = "block device"
    OTHER = "special file"


_KIND_BY_MODE = {
    stat.S_IFREG: Kind.FILE,
    stat.S_IFDIR: Kind.FOLDER,
    stat.S_IFLNK: Kind.LINK,
    stat.S_IFIFO: Kind.FIFO,
    stat.S_IFSOCK: Kind.SOCKET,
    stat.S_IFCHR: Kind.CHAR_DEVICE,
    stat.S_IFBLK: Kind.BLOCK_DEVICE,
}


_KIND_BY_TYPE = {
    asyncssh.FILEXFER_TYPE_REGULAR: Kind.FILE,
    asyncssh.FILEXFER_TYPE_DIRECTORY: Kind.FOLDER,
    asyncssh.FILEXFER_TYPE_SYMLINK: Kind.LINK,
    asyncssh.FILEXFER_TYPE_FIFO: Kind.FIFO,
    asyncssh.FILEXFER_TYPE_SOCKET: Kind.SOCKET,
    asyncssh.FILEXFER_TYPE_CHAR_DEVICE: Kind.CHAR_DEVICE,
    asyncssh.FILEXFER_TYPE_BLOCK_DEVICE: Kind.BLOCK_DEVICE,
    asyncssh.FILEXFER_TYPE_SPECIAL: Kind.OTHER,
}


def kind_of(attrs: asyncssh.SFTPAttrs) -> str:
    """The entry's kind, from its mode bits (SFTP v3) or its type field."""
    if attrs.permissions is not None and stat.S_IFMT(attrs.permissions):
        return _KIND_BY_MODE.get(stat.S_IFMT(attrs.permissions), Kind.OTHER)
    return _KIND_BY_TYPE.get(attrs.type, Kind.FILE)


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """One entry of a remote directory listing.

    ``kind`` says what it is (links are resolved: a link to a file is a file with
    ``is_link``); ``problem`` says why it cannot be copied or descended into ('' = it can).
    """

    name: str
    path: str
    size: int
    mtime: int
    is_dir: bool
    is_link: bool = False
    kind: str = Kind.FILE
    problem: str = ""


def remote_entry(
    name: str, path: str, attrs: asyncssh.SFTPAttrs, *, is_link: bool = False
) -> RemoteEntry:
    kind = kind_of(attrs)
    problem = ""
    if kind == Kind.LINK:
        problem = f"the link {path} cannot be followed"
    elif kind not in (Kind.FILE, Kind.FOLDER):
        what = f"a link to a {kind}" if is_link else f"a {kind}"
        problem = f"{path} is {what}, not a regular file; only regular files are copied"
    return RemoteEntry(
        name=name,
        path=path,
        size=attrs.size or 0,
        mtime=int(attrs.mtime or 0),
        is_dir=kind == Kind.FOLDER,
        is_link=is_link,
        kind=kind,
        problem=problem,
    )


async def stat_entry(sftp: SftpPool, endpoint: SftpEndpoint, path: str) -> RemoteEntry:
    """The entry at ``path`` (links followed; a dangling link is a LINK entry)."""
    attrs = await sftp.request(endpoint, path, lambda c: c.stat(path))
    return remote_entry(posixpath.basename(path.rstrip("/")) or path, path, attrs)


async def listdir(sftp: SftpPool, endpoint: SftpEndpoint, path: str) -> list[RemoteEntry]:
    """Entries of a remote directory (links resolved), folders first, then by name."""
    entries = [entry async for entry in scandir(sftp, endpoint, path)]
    entries.sort(key=lambda e: (not e.is_dir, e.name.casefold()))
    return entries


async def scandir(sftp: SftpPool, endpoint: SftpEndpoint, path: str) -> AsyncIterator[RemoteEntry]:
    """Stream a directory's entries as the server sends them.

    The request timeout applies to each request (one batch of names, one link's stat),
    never to the whole listing, so a huge folder over a slow link succeeds. Links are
    resolved concurrently, each within the timeout; a name that is not valid UTF-8 is
    kept (escaped for display) with a ``problem`` so it fails alone.
    """
    client = await sftp.client(endpoint)
    timeout = endpoint.request_timeout_seconds
    names = client.scandir(path.encode("utf-8", "surrogateescape")).__aiter__()
    links: list[tuple[str, str, bool]] = []
    try:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    item = await anext(names)
            except StopAsyncIteration:
                break
            raw = item.filename
            assert isinstance(raw, bytes)
            if raw in (b".", b".."):
                continue
            try:
                name, bad = raw.decode("utf-8"), False
            except UnicodeDecodeError:
                name, bad = raw.decode("utf-8", "backslashreplace"), True
            full = posixpath.join(path, name)
            if bad:
                yield RemoteEntry(
                    name,
                    full,
                    item.attrs.size or 0,
                    int(item.attrs.mtime or 0),
                    is_dir=kind_of(item.attrs) == Kind.FOLDER,
                    kind=kind_of(item.attrs),
                    problem=f"the name {full} is not valid UTF-8 (odd bytes shown as \\xNN); "
                    "rename it on the server",
                )
            elif kind_of(item.attrs) == Kind.LINK:
                links.append((name, full, True))
            else:
                yield remote_entry(name, full, item.attrs)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        if is_connection_error(exc):
            await sftp.invalidate(endpoint, client)
        raise map_sftp_error(exc, path) from exc
    finally:
        with contextlib.suppress(Exception):
            await names.aclose()  # type: ignore[attr-defined]
    for start in range(0, len(links), LINK_STATS_AT_ONCE):
        batch = links[start : start + LINK_STATS_AT_ONCE]
        for entry in await asyncio.gather(
            *(resolve_link(sftp, endpoint, n, f) for n, f, _ in batch)
        ):
            yield entry


async def resolve_link(sftp: SftpPool, endpoint: SftpEndpoint, name: str, full: str) -> RemoteEntry:
    """A link's target as an entry; a dangling, looping or slow link gets a problem."""
    try:
        attrs = await sftp.request(endpoint, full, lambda c: c.stat(full))
    except TransferError as exc:
        cause = exc.__cause__
        if is_connection_error(cause or exc) and not isinstance(cause, TimeoutError):
            raise  # the connection died: not this link's problem
        return RemoteEntry(
            name,
            full,
            0,
            0,
            is_dir=False,
            is_link=True,
            kind=Kind.LINK,
            problem=f"the link {full} cannot be followed ({exc.message})",
        )
    return remote_entry(name, full, attrs, is_link=True)


async def realpath(sftp: SftpPool, endpoint: SftpEndpoint, path: str) -> str:
    """The canonical path of ``path`` (links resolved by the server)."""
    result = await sftp.request(endpoint, path, lambda c: c.realpath(path))
    return str(result)
