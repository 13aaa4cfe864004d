"""A misbehaving SFTP server: the real protocol (asyncssh), with faults a test switches on.

Files live on disk under ``root`` as with the embedded server; :class:`SftpFaults` says, by
file name, what the server lies about or fails at: a size short of the content, no size at
all, an I/O error on read, a stat that never answers, a slow listing, or extra synthetic
names in a folder (no disk needed for a folder of thousands of entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from sftp_s3_tui.demo import EmbeddedSftpServer
from tests.support.servers import EMBEDDED_PASSWORD, EMBEDDED_USER, SftpServerInfo

READDIR_BATCH = 128  # names asyncssh's server sends per READDIR answer


@dataclass
class SftpFaults:
    """What the server does wrong; names are file base names (str)."""

    size_delta: dict[str, int] = field(default_factory=dict)  # reported size = real + delta
    no_size: set[str] = field(default_factory=set)  # attributes without a size
    eio_on_read: set[str] = field(default_factory=set)  # every read fails with EIO
    hang_stat: set[str] = field(default_factory=set)  # stat never answers (a hung mount)
    hang_close: set[str] = field(default_factory=set)  # a handle's close never answers
    listing_delay_seconds: float = 0.0  # before each READDIR answer
    synthetic: dict[str, int] = field(default_factory=dict)  # folder → extra names "f000001"
    reads: dict[str, int] = field(default_factory=dict)  # read requests served, by name
    errors_sent: int = 0  # EIO answers sent
    listing_batches: int = 0  # READDIR answers begun
    sessions: int = 0  # SFTP sessions started (one per SSH connection the engine opens)
    on_fstat: Callable[[str], None] | None = None  # called with the name as an fstat is served


def _name(path: bytes | str) -> str:
    text = os.fsdecode(path)
    return posixpath.basename(text.rstrip("/"))


class _FaultySFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes, faults: SftpFaults) -> None:
        super().__init__(chan, chroot=root)
        self._faults = faults
        faults.sessions += 1

    def _adjust(self, name: str, attrs: asyncssh.SFTPAttrs) -> asyncssh.SFTPAttrs:
        if name in self._faults.no_size:
            attrs.size = None
        elif name in self._faults.size_delta and attrs.size is not None:
            attrs.size = max(0, attrs.size + self._faults.size_delta[name])
        return attrs

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:  # type: ignore[override]
        name = _name(path)
        if name in self._faults.hang_stat:
            await asyncio.Event().wait()
        result = super().stat(path)
        assert isinstance(result, os.stat_result)
        return self._adjust(name, asyncssh.SFTPAttrs.from_local(result))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:  # type: ignore[override]
        result = super().lstat(path)
        assert isinstance(result, os.stat_result)
        return self._adjust(_name(path), asyncssh.SFTPAttrs.from_local(result))

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:  # type: ignore[override]
        result = super().fstat(file_obj)
        assert isinstance(result, os.stat_result)
        if self._faults.on_fstat is not None:
            self._faults.on_fstat(_name(file_obj.name))  # type: ignore[attr-defined]
        return self._adjust(_name(file_obj.name), asyncssh.SFTPAttrs.from_local(result))  # type: ignore[attr-defined]

    async def close(self, file_obj: object) -> None:  # type: ignore[override]
        if _name(file_obj.name) in self._faults.hang_close:  # type: ignore[attr-defined]
            await asyncio.Event().wait()
        super().close(file_obj)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:  # type: ignore[override]
        name = _name(file_obj.name)  # type: ignore[attr-defined]
        self._faults.reads[name] = self._faults.reads.get(name, 0) + 1
        if name in self._faults.eio_on_read:
            self._faults.errors_sent += 1
            raise asyncssh.SFTPFailure("Input/output error")
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        return data

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        faults = self._faults
        count = 0

        async def pace() -> None:
            if count % READDIR_BATCH == 0:
                faults.listing_batches += 1
                if faults.listing_delay_seconds:
                    await asyncio.sleep(faults.listing_delay_seconds)

        async for entry in super().scandir(path):
            await pace()
            entry.attrs = self._adjust(_name(entry.filename), entry.attrs)
            yield entry
            count += 1
        extra = faults.synthetic.get(os.fsdecode(path).rstrip("/") or "/", 0)
        for index in range(extra):
            await pace()
            attrs = asyncssh.SFTPAttrs(
                type=asyncssh.FILEXFER_TYPE_REGULAR,
                size=index + 1,
                permissions=0o100644,
                mtime=1_700_000_000,
                atime=1_700_000_000,
                uid=0,
                gid=0,
            )
            yield asyncssh.SFTPName(f"f{index:06d}.bin".encode(), attrs=attrs)
            count += 1


class FaultySftpServer(EmbeddedSftpServer):
    """The embedded server with :class:`SftpFaults` (same users, keys and chroot)."""

    def __init__(self, root: Path, faults: SftpFaults, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.faults = faults

    async def start(self) -> FaultySftpServer:
        root = os.fsencode(self.root)
        faults = self.faults
        self._acceptor = await asyncssh.listen(
            self._host,
            self._requested_port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _auth_server(self),
            sftp_factory=lambda chan: _FaultySFTPServer(chan, root, faults),
            allow_scp=False,
            reuse_address=True,
        )
        return self


def _auth_server(server: EmbeddedSftpServer) -> asyncssh.SSHServer:
    from sftp_s3_tui.demo.sftp_server import _AuthServer

    return _AuthServer(server.users, server._authorized, server._connections)


@contextlib.asynccontextmanager
async def faulty_sftp_server(
    base: Path, faults: SftpFaults | None = None
) -> AsyncIterator[SftpServerInfo]:
    """Run a :class:`FaultySftpServer` over ``base / "root"`` on the running loop."""
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    identity = base / "id_ed25519"
    client_key.write_private_key(identity)
    identity.chmod(0o600)
    server = FaultySftpServer(
        root,
        faults or SftpFaults(),
        users={EMBEDDED_USER: EMBEDDED_PASSWORD},
        authorized_keys=[client_key.convert_to_public()],
    )
    async with server:
        yield SftpServerInfo(
            kind="asyncssh",
            host=server.host,
            port=server.port,
            username=EMBEDDED_USER,
            identity_file=identity,
            known_hosts=server.write_known_hosts(base / "known_hosts"),
            root=root,
            remote_root="/",
            password_user=EMBEDDED_USER,
            password=EMBEDDED_PASSWORD,
            server=server,
        )
