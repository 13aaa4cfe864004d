"""Writing one file to an SFTP destination: a temporary name beside the target, pipelined
writes at offsets, a final fstat, then a rename into place.

Partners' pollers pick up whatever appears under a final name, so nothing is ever written
there directly: the bytes go to ``.NAME.<token>.partial`` in the target folder (a dot-name
pollers skip, as rclone and NiFi do) and only a verified, complete file is renamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
import weakref
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
from asyncssh.constants import FXP_EXTENDED_REPLY
from asyncssh.packet import String, UInt32, UInt64

from ..config import SftpEndpoint
from ..errors import DestinationRefused, DestinationWriteFailed, TransferError
from .errors import is_connection_error
from .pool import Lease, SftpPool
from .server_profile import RENAME_REFUSING_BANNERS

log = logging.getLogger(__name__)

#: Folders known to exist on each pool's hosts: (host, port, user, folder). A delivery of
#: many files into one folder makes sure of it once, not with two round trips per path
#: component for every file (asyncssh's makedirs: mkdir, then stat when it fails).
_FOLDERS: weakref.WeakKeyDictionary[SftpPool, set[tuple[str, int, str | None, str]]] = (
    weakref.WeakKeyDictionary()
)

#: The bytes one write over a lane carries when a file is spread over several connections.
_LANE_SLICE = 2 * 1024 * 1024

#: The slowest a server is expected to hash a file it holds (the wait for its answer grows
#: with the file's size at this rate).
_SERVER_HASH_BYTES_PER_SECOND = 16 * 1024 * 1024

#: The extension that renames over an existing file atomically (POSIX rename(2)).
POSIX_RENAME = "posix-rename@openssh.com"


def supports_posix_rename(client: asyncssh.SFTPClient) -> bool:
    """True when the server offered ``posix-rename@openssh.com`` in its SFTP version reply.

    asyncssh records the server's extensions on the session handler and exposes no public
    accessor for this one (only ``supports_remote_copy``); its ``posix_rename`` would raise
    ``SFTPOpUnsupported`` after a round trip. Kept small so it can move into the server
    profile when that lands.
    """
    handler = getattr(client, "_handler", None)
    return bool(getattr(handler, "_supports_posix_rename", False))


async def _write_block(file: asyncssh.SFTPClientFile, offset: int, data: memoryview) -> None:
    """One SFTP write request of at most the session's write size.

    asyncssh's ``SFTPClientFile.write`` sends even one block through its parallel writer
    (a task and an ``asyncio.wait``), so this sends the request that writer sends, on the
    file's own handle (as :func:`.reader._read_block` does for a read).
    """
    handle = file._handle
    if handle is None:
        raise ValueError("I/O operation on closed file")  # as asyncssh's own write
    await file._handler.write(handle, offset, data)  # type: ignore[arg-type]  # any buffer


def temporary_name(final_path: str, token: str | None = None) -> str:
    """``/out/a/report.csv`` → ``/out/a/.report.csv.<token>.partial`` (same folder, so the
    rename never crosses a file system)."""
    folder, name = posixpath.split(final_path)
    token = token or secrets.token_hex(4)
    return posixpath.join(folder, f".{name}.{token}.partial")


def map_write_error(exc: BaseException, path: str, endpoint: SftpEndpoint) -> TransferError:
    """An asyncssh / OS error while writing ``path`` as one clear line naming it."""
    if isinstance(exc, TransferError):
        return exc
    where = f"{path} on {endpoint.display}"
    folder = posixpath.dirname(path) or "/"
    if isinstance(exc, asyncssh.SFTPPermissionDenied | PermissionError):
        return DestinationRefused(
            f"Permission denied writing {where}",
            f"the SFTP user may not write into {folder}; check its rights there",
        )
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return full(where)
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return DestinationRefused(
            f"The folder {folder} does not exist on {endpoint.display}", "create it first"
        )
    if isinstance(exc, TimeoutError):
        return DestinationWriteFailed(f"Writing {where} timed out", "the server stalled")
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    said = reason.lower()
    if any(words in said for words in ("no space", "out of disk", "disk full", "quota")):
        return full(where)
    if "read-only" in said:
        return read_only(folder, endpoint)
    if is_connection_error(exc):
        return DestinationWriteFailed(
            f"The SSH connection dropped while writing {where}: {reason}",
            "nothing was left at the final name; run the copy again",
        )
    return DestinationRefused(f"The server refused writing {where}: {reason}", "")


def full(where: str) -> DestinationRefused:
    return DestinationRefused(
        f"The destination is full writing {where}",
        "free space or raise the quota there; nothing was left at the final name",
    )


def read_only(folder: str, endpoint: SftpEndpoint) -> DestinationRefused:
    return DestinationRefused(
        f"The folder {folder} on {endpoint.display} is read-only",
        "the server's disk there refuses writes; deliver elsewhere or ask the partner",
    )


#: statvfs's flag of a file system mounted read-only.
_ST_RDONLY = 1


async def _make_folder(client: asyncssh.SFTPClient, folder: str) -> None:
    """``folder`` and any missing parents, walking up only as far as needed: one stat when
    it is there (the usual case), a stat and a mkdir when only it is missing (asyncssh's
    makedirs costs two round trips per path component from the root)."""
    if await client.isdir(folder):
        return
    try:
        await client.mkdir(folder)
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
        parent = posixpath.dirname(folder)
        if parent == folder:
            raise
        await _make_folder(client, parent)
        await _mkdir_or_found(client, folder)
    except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
        if not await client.isdir(folder):  # made meanwhile by another file, or refused
            raise


async def _mkdir_or_found(client: asyncssh.SFTPClient, folder: str) -> None:
    try:
        await client.mkdir(folder)
    except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
        if not await client.isdir(folder):
            raise


class RemoteWriter:
    """One temporary file on the destination, written at offsets by many requests at once.

    asyncssh splits each buffer given to :meth:`write_at` into blocks of the session's write
    size and keeps ``requests`` of them in flight (its ``_SFTPFileWriter``), so a part is one
    pipelined burst; several parts may be written at once at their own offsets.
    """

    def __init__(
        self,
        sftp: SftpPool,
        endpoint: SftpEndpoint,
        final_path: str,
        *,
        block_size: int = 0,
        requests: int = 0,
        inplace: bool = False,
    ) -> None:
        self.sftp = sftp
        self.endpoint = endpoint
        self.final_path = final_path
        self.inplace = inplace
        # --inplace: no temporary name, the bytes go to the final name itself.
        self.temp_path = final_path if inplace else temporary_name(final_path)
        self.block_size = block_size  # 0: the server profile's write size
        self.requests = requests or -1
        self._lease: Lease | None = None
        self._file: asyncssh.SFTPClientFile | None = None
        #: More handles on the same temporary file over other connections (see spread).
        self._lanes: list[tuple[Lease, asyncssh.SFTPClientFile]] = []
        self._spreading: asyncio.Future[None] | None = None
        self._opened = asyncio.Event()  # the temporary file exists: lanes may open it
        self._in_flight: dict[int, int] = {}  # lane → bytes being written over it
        self.created = False  # the temporary file exists on the server (remove it on failure)

    async def connect(self) -> None:
        """Lease a connection to the destination (before the conflict check)."""
        if self._lease is None:
            self._lease = await self.sftp.lease(self.endpoint)

    async def open(self, *, truncate: bool = False) -> None:
        """Create the folders up to the target (once per session) and the temporary file
        (exclusively).

        ``truncate`` (``--inplace`` replacing a file): open the final name over what is there.
        """
        await self.connect()
        client = self.client
        folder = posixpath.dirname(self.final_path) or "/"
        mode = "wb" if truncate else "xb"
        known = _FOLDERS.setdefault(self.sftp, set())
        key = (self.endpoint.host, self.endpoint.port, self.endpoint.username, folder)
        block_size = self.write_bytes()
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                if key not in known:
                    await _make_folder(client, folder)
                    known.add(key)
                try:
                    self._file = await client.open(
                        self.temp_path, mode, block_size=block_size, max_requests=self.requests
                    )
                except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                    known.discard(key)  # removed meanwhile: make it again, once
                    await _make_folder(client, folder)
                    known.add(key)
                    self._file = await client.open(
                        self.temp_path, mode, block_size=block_size, max_requests=self.requests
                    )
        except (asyncio.CancelledError, TimeoutError) as exc:
            # The OPEN may have reached the server, which then creates the file after all:
            # a temporary name (its random token) is ours alone, so discard() tries to
            # remove it; never the final name of --inplace, which may be the partner's
            self.created = not self.inplace
            if isinstance(exc, TimeoutError):
                raise await self._failed(exc, self.temp_path) from exc
            raise
        except (OSError, asyncssh.Error) as exc:
            raise await self._failed(exc, self.temp_path) from exc
        self.created = True
        self._opened.set()

    def write_bytes(self) -> int:
        """The block size of each write: as pinned, else the server profile's (asyncssh's
        own, -1, trusts only ``limits@openssh.com`` and writes 16 KiB blocks elsewhere)."""
        if self.block_size > 0:
            return self.block_size
        profile = self.sftp.server_profile(self.endpoint)
        return profile.write_bytes if profile is not None else -1

    def read_bytes(self) -> int:
        """The block size of a read back: as pinned, else what the server profile learned
        of its reads, else the write size (a server that takes writes of a size answers
        reads of it; asyncssh's own -1 reads 16 KiB blocks from ProFTPD and Dropbear)."""
        if self.block_size > 0:
            return self.block_size
        profile = self.sftp.server_profile(self.endpoint)
        if profile is not None and profile.read_source != "default":
            return profile.read_bytes
        return self.write_bytes()

    @property
    def client(self) -> asyncssh.SFTPClient:
        assert self._lease is not None, "open() first"
        return self._lease.client

    def spread(self, connections: int) -> None:
        """Open the temporary file on up to ``connections - 1`` more connections, in the
        background, so parts written at once share their windows (a far host moves one
        window per round trip per connection). Call it before :meth:`open` to overlap the
        logins with it; each lane is used by :meth:`write_at` as soon as it is ready. Best
        effort: a lane that cannot be opened is left out, never an error."""
        assert self._lease is not None, "connect() first"
        if connections > 1 and self._spreading is None:
            self._spreading = asyncio.ensure_future(self._open_lanes(connections))

    async def _open_lanes(self, connections: int) -> None:
        assert self._lease is not None
        first = self._lease.slot

        async def lane(step: int) -> None:
            try:
                lease = await self.sftp.lease(self.endpoint, slot=first + step)
            except Exception:  # a lane is best effort: no login, no lane
                return
            if lease.slot == first:  # fewer connections allowed than asked
                self.sftp.release(self.endpoint, lease)
                return
            try:
                await self._opened.wait()
                async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                    file = await lease.client.open(
                        self.temp_path,
                        "r+b",
                        block_size=self.write_bytes(),
                        max_requests=self.requests,
                    )
            except (OSError, asyncssh.Error, TimeoutError):
                self.sftp.release(self.endpoint, lease)
                return
            except BaseException:
                self.sftp.release(self.endpoint, lease)
                raise
            self._lanes.append((lease, file))

        await asyncio.gather(*(lane(step) for step in range(1, connections)))

    async def write_at(self, offset: int, data: memoryview) -> None:
        """Write ``data`` at ``offset`` of the temporary file (pipelined by asyncssh).

        Once :meth:`spread` was asked, the data goes in slices of ``_LANE_SLICE``, each over
        the lane with the fewest bytes in flight when it starts, so lanes that finish their
        logins late still take their share of a part already being written."""
        assert self._file is not None, "open() first"
        if self._spreading is None:
            await self._write_lane(0, offset, data)
            return
        for start in range(0, len(data), _LANE_SLICE):
            piece = data[start : start + _LANE_SLICE]
            lanes = 1 + len(self._lanes)
            index = min(range(lanes), key=lambda i: self._in_flight.get(i, 0))
            self._in_flight[index] = self._in_flight.get(index, 0) + len(piece)
            try:
                await self._write_lane(index, offset + start, piece)
            finally:
                self._in_flight[index] -= len(piece)

    async def _write_lane(self, index: int, offset: int, data: memoryview) -> None:
        lease, file = (self._lease, self._file) if index == 0 else self._lanes[index - 1]
        assert file is not None
        try:
            # No overall timeout: a big part over a slow link takes long; a stalled
            # connection is caught by the SSH keepalive, which closes it.
            if 0 < len(data) <= file.write_len:
                await _write_block(file, offset, data)
            else:
                await file.write(data, offset)  # type: ignore[type-var]  # any buffer
        except (OSError, asyncssh.Error) as exc:
            raise await self._failed(exc, self.temp_path, lease) from exc

    async def _close_lanes(self) -> None:
        """Close the extra handles (their writes are done) and give their connections back."""
        spreading, self._spreading = self._spreading, None
        if spreading is not None:
            spreading.cancel()  # lanes still logging in are not waited for
            await asyncio.wait([spreading])  # a cancel of this task still propagates
        lanes, self._lanes = self._lanes, []
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                await asyncio.gather(*(file.close() for _, file in lanes))
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            for lease, _ in lanes:
                await self._failed(exc, self.temp_path, lease)
            raise map_write_error(exc, self.temp_path, self.endpoint) from exc
        finally:
            for lease, _ in lanes:
                self.sftp.release(self.endpoint, lease)

    async def finish(self, mtime: float | None) -> int:
        """Set the file's mtime, fstat it and close it; the size the server holds."""
        assert self._file is not None, "open() first"
        file = self._file
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                # One round trip for all: every write was answered, so the size is final
                # and the other lanes close meanwhile (only the fstat's size is used, so
                # its order against the fsetstat does not matter).
                stat = asyncio.ensure_future(file.stat())
                try:
                    if self._spreading is not None or self._lanes:
                        steps = [stat, self._close_lanes()]
                        if mtime is not None:
                            steps.append(file.utime((mtime, mtime)))
                        await asyncio.gather(*steps)
                    else:  # one handle (most files): no task but the fstat's
                        if mtime is not None:
                            await file.utime((mtime, mtime))
                        await stat
                finally:
                    if not stat.done():
                        stat.cancel()
                attrs = stat.result()
                self._file = None
                await file.close()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, self.temp_path) from exc
        return int(attrs.size or 0)

    async def exists(self, path: str) -> asyncssh.SFTPAttrs | None:
        """The attributes of ``path`` on the destination, or None when nothing is there."""
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                return await self.client.stat(path)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, path) from exc

    async def publish(self, *, replace: bool) -> str:
        """Rename the temporary file to the final name; how it was done (for the result).

        ``replace`` over an existing file: atomically with ``posix-rename@openssh.com`` where
        offered. Else (ProFTPD, some appliances: a plain SFTP rename refuses an existing
        target) the safest sequence there is: the old file renamed aside to a dot-name, the
        new one renamed in, the old one removed — the final name is missing only between
        two renames, never holds a partial file, and a failed rename-in puts the old file
        back. Without ``replace``: a plain rename, which fails when the final name is taken
        (SFTP v3), so a file that appeared meanwhile is never overwritten; on a server whose
        rename was seen to replace, a hard link instead (see :meth:`_publish_new`).
        """
        if self.inplace:
            self.created = False
            return "in place"
        client = self.client
        how = "rename"
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                if replace and supports_posix_rename(client):
                    await client.posix_rename(self.temp_path, self.final_path)
                    how = "posix-rename"
                elif replace:
                    how = await self._replace_by_renames(client)
                else:
                    how = await self._publish_new(client)
        except TransferError:
            raise
        except asyncssh.SFTPOpUnsupported as exc:
            raise DestinationRefused(
                f"{self.endpoint.display} does not allow renaming {self.temp_path} to "
                f"{self.final_path}",
                "the server forbids rename; --inplace writes to the final name instead",
            ) from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, self.final_path) from exc
        self.created = False
        return how

    async def _publish_new(self, client: asyncssh.SFTPClient) -> str:
        """Into place without replacing anything: the plain rename, which refuses a taken
        name — unless the server's rename probe saw it replace one. There, a hard link
        (``hardlink@openssh.com`` refuses a taken name on every server) and the temporary
        name's removal; without hard links, a look just before the rename (a file landing
        between the two would still be replaced: the method says so)."""
        if await self._rename_behaviour() != "replaces":
            await client.rename(self.temp_path, self.final_path)
            return "rename"
        profile = self.sftp.server_profile(self.endpoint)
        if profile is not None and profile.hardlink:
            await client.link(self.temp_path, self.final_path)
            try:
                await client.remove(self.temp_path)
            except (OSError, asyncssh.Error) as exc:  # in place all the same; a second name
                log.warning("%s stays beside %s: %s", self.temp_path, self.final_path, exc)
            return "hard link"
        if await client.lexists(self.final_path):
            raise asyncssh.SFTPFailure(f"{self.final_path} exists")
        await client.rename(self.temp_path, self.final_path)
        return "rename, checked first (this server's rename replaces)"

    async def _rename_behaviour(self) -> str:
        """What this server's plain rename does with a taken name. The families tested to
        refuse (``RENAME_REFUSING_BANNERS``) are not probed; any other server is, once per
        host per session (the pool's probe: two one-byte dot-files in this folder, which
        the temporary file shows is writable, removed at once), at its first such publish
        rather than beside the bytes, so that no probe file is in the partner's folder
        while a transfer can be cut."""
        profile = self.sftp.server_profile(self.endpoint)
        if profile is not None and profile.banner.startswith(RENAME_REFUSING_BANNERS):
            return "refuses"
        folder = posixpath.dirname(self.final_path) or "/"
        return await self.sftp.rename_behaviour(self.endpoint, folder)

    async def _replace_by_renames(self, client: asyncssh.SFTPClient) -> str:
        """Old aside, new in, old removed (a server without posix-rename); see publish."""
        aside = temporary_name(self.final_path).removesuffix(".partial") + ".old"
        try:
            await client.rename(self.final_path, aside)
        except asyncssh.SFTPError:
            # Servers word "no such file" differently (some a bare Failure): look.
            try:
                await client.stat(self.final_path)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                await client.rename(self.temp_path, self.final_path)  # nothing to set aside
                return "rename"
            raise
        try:
            await client.rename(self.temp_path, self.final_path)
        except BaseException:
            with contextlib.suppress(OSError, asyncssh.Error):
                await client.rename(aside, self.final_path)  # the old file back in place
            raise
        try:
            await client.remove(aside)
        except (OSError, asyncssh.Error) as exc:
            # The new file is in place (delivered); the old one is left under a dot-name.
            return f"rename aside (the old file {aside} could not be removed: {exc})"
        return "rename aside"

    async def read_back(
        self, path: str, length: int, chunk: int, *, ahead: bool = False
    ) -> AsyncIterator[bytes]:
        """The first ``length`` bytes of ``path`` on the server, ``chunk`` at a time
        (pipelined reads; stops early when the file is shorter). ``ahead``: the next chunk
        is asked for before this one is handed over, so the link stays busy while the
        caller hashes (two chunks held at once)."""
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                file = await self.client.open(path, "rb", block_size=self.read_bytes())
            pending: asyncio.Future[Any] | None = None  # asyncssh types reads as str
            try:
                offset = 0
                while offset < length:
                    if pending is None:
                        pending = asyncio.ensure_future(
                            file.read(min(chunk, length - offset), offset)
                        )
                    data = await pending
                    pending = None
                    assert isinstance(data, bytes)  # a binary-mode file
                    if not data:
                        return
                    offset += len(data)
                    if ahead and offset < length:
                        pending = asyncio.ensure_future(
                            file.read(min(chunk, length - offset), offset)
                        )
                    yield data
            finally:
                if pending is not None:
                    pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)
                with contextlib.suppress(OSError, asyncssh.Error):
                    await file.close()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, path) from exc

    async def server_sha256(self, path: str, size: int) -> tuple[bytes, str]:
        """The server's own SHA-256 of the whole of ``path`` (``check-file-handle``, offset
        0, length 0: to the end, one block); ``(b"", why not)`` when it cannot hash it.

        asyncssh has no call for this extension (its request table knows only the replies it
        decodes), so the request goes through its handler's ``_send_request`` and the reply
        is decoded here: a string naming the hash, then the hash. ProFTPD's
        mod_sftp answers it under SFTP v3 without announcing it (it lists ``check-file``
        only in v5's ``supported2``), on a handle opened for reading. The server reads the
        whole file before it answers, so the wait grows with ``size`` (its bytes)."""
        handler: Any = self.client._handler
        wait = self.endpoint.request_timeout_seconds + size / _SERVER_HASH_BYTES_PER_SECOND
        try:
            async with asyncio.timeout(wait):
                async with await self.client.open(path, "rb") as file:
                    handle: bytes = file._handle  # type: ignore[assignment]
                    waiter = asyncio.get_running_loop().create_future()
                    handler._send_request(
                        b"check-file-handle",
                        [
                            String(handle),
                            String(b"sha256"),
                            UInt64(0),
                            UInt64(0),
                            UInt32(0),
                        ],
                        waiter,
                    )
                    kind, reply = await waiter
                    if kind != FXP_EXTENDED_REPLY:
                        handler._process_status(reply)  # raises the server's error
                        return b"", "the server gave no hash"
                    name = reply.get_string()
                    hashes = reply.get_remaining_payload()
        except asyncssh.SFTPOpUnsupported:
            return b"", "the server offers no check-file-handle"
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            return b"", f"the server did not hash it: {reason}"
        if name != b"sha256" or len(hashes) != 32:
            return b"", f"the server answered with {name.decode(errors='replace')!r}"
        return bytes(hashes), ""

    async def reopen(self, temp_path: str) -> None:
        """Continue writing an existing temporary file (a resume): no create, no truncate."""
        self.temp_path = temp_path
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                self._file = await self.client.open(
                    temp_path, "r+b", block_size=self.write_bytes(), max_requests=self.requests
                )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, temp_path) from exc
        self.created = True

    async def write_marker(self, path: str) -> None:
        """Create the empty file ``path`` (a done marker; empty, so never seen partial)."""
        client = self.client
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                async with await client.open(path, "wb"):
                    pass
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise await self._failed(exc, path) from exc

    async def discard(self) -> bool:
        """Close and remove the temporary file (on a fresh connection if this one dropped).

        True when nothing is left; never raises (it runs while another error is reported).
        """
        with contextlib.suppress(TransferError):
            await self._close_lanes()
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
                async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                    await file.close()
        if not self.created:
            return True
        temp = self.temp_path
        try:
            await self.sftp.request(self.endpoint, temp, lambda c: c.remove(temp))
        except TransferError as exc:
            if "does not exist" not in exc.message:
                return False
        self.created = False
        return True

    async def close_kept(self) -> bool:
        """Close the temporary file and leave it there (a paused delivery, whose record
        names it: the next attempt resumes it or removes it). True when closed cleanly;
        never raises (it runs while a cancel is raised)."""
        with contextlib.suppress(TransferError):
            await self._close_lanes()
        file, self._file = self._file, None
        self.created = False  # kept on purpose: nothing here removes it any more
        if file is None:
            return True
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                await file.close()
        except (OSError, asyncssh.Error, TimeoutError):
            return False
        return True

    async def remove_left(self, path: str) -> bool:
        """Remove a temporary file an interrupted run left (True: it is gone)."""
        try:
            await self.sftp.request(self.endpoint, path, lambda c: c.remove(path))
        except TransferError as exc:
            return "does not exist" in exc.message
        return True

    def release(self) -> None:
        """Give the connections back to the pool (:meth:`finish` or :meth:`discard` ran, or
        :meth:`open` never did)."""
        if self._spreading is not None:
            self._spreading.cancel()  # lanes still logging in wait for open(): never
            self._spreading = None
        for lease, _ in self._lanes:
            self.sftp.release(self.endpoint, lease)
        self._lanes = []
        if self._lease is not None:
            self.sftp.release(self.endpoint, self._lease)
            self._lease = None

    async def _failed(
        self, exc: BaseException, path: str, lease: Lease | None = None
    ) -> TransferError:
        """The error to raise; a dead connection is reset so the cleanup reconnects."""
        lease = lease or self._lease
        if lease is not None:
            await self.sftp.forget_if_dead(self.endpoint, lease, exc)
            if type(exc) is asyncssh.SFTPFailure:
                diagnosed = await self._diagnose(path)
                if diagnosed is not None:
                    return diagnosed
        return map_write_error(exc, path, self.endpoint)

    async def _diagnose(self, path: str) -> TransferError | None:
        """Why a bare SFTP v3 "Failure" (OpenSSH's answer to ENOSPC and EROFS) happened,
        from ``statvfs@openssh.com`` where the server offers it; None when it cannot tell."""
        folder = posixpath.dirname(path) or "/"
        try:
            async with asyncio.timeout(self.endpoint.request_timeout_seconds):
                vfs = await self.client.statvfs(folder)
        except (OSError, asyncssh.Error, TimeoutError):
            return None
        if vfs.flags & _ST_RDONLY:
            return read_only(folder, self.endpoint)
        if vfs.bavail * (vfs.frsize or vfs.bsize) < self._FULL_BELOW:
            return full(f"{path} on {self.endpoint.display}")
        return None

    #: Free space below this after a failed write: the write failed for want of space.
    _FULL_BELOW = 1 << 20
