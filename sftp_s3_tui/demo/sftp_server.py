"""The embedded SFTP server (asyncssh on loopback), with per-session statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

from .settings import LOOPBACK


def die_with_parent() -> None:
    """``preexec_fn`` for server processes: SIGTERM them when their parent dies (Linux only).

    Keeps a killed test run from leaving servers behind on loopback ports. The signal fires
    when the *thread* that started the child exits, so only use it from long-lived threads.
    """
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free a moment ago (for servers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def known_hosts_entry(host: str, port: int, public_key: str) -> str:
    """Return an OpenSSH known_hosts line (``[host]:port`` for non-default ports)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {public_key}"


def openssh_public_key(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA…`` without a comment."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{algorithm} {blob}"


class SftpServerStats:
    """Counters of what clients did, shared by all sessions of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.read_requests = 0
        self.files_opened = 0

    def add_read(self, size: int) -> None:
        with self._lock:
            self.bytes_read += size
            self.read_requests += 1

    def reset(self) -> None:
        with self._lock:
            self.bytes_read = self.read_requests = self.files_opened = 0


class _CountingSFTPServer(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, counting bytes handed to clients."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes, stats: SftpServerStats):
        super().__init__(chan, chroot=root)
        self._stats = stats

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        self._stats.files_opened += 1
        return super().open(path, pflags, attrs)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        self._stats.add_read(len(data))
        return data


class _AuthServer(asyncssh.SSHServer):
    """Password auth against a dict; public-key auth against a set of allowed keys."""

    def __init__(
        self,
        passwords: Mapping[str, str],
        public_keys: frozenset[bytes],
        connections: set[asyncssh.SSHServerConnection],
    ):
        self._passwords = passwords
        self._public_keys = public_keys
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return bool(self._passwords)

    def validate_password(self, username: str, password: str) -> bool:
        return username in self._passwords and self._passwords[username] == password

    def public_key_auth_supported(self) -> bool:
        return bool(self._public_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data in self._public_keys


class EmbeddedSftpServer:
    """An in-process asyncssh SFTP server on loopback, serving ``root`` as ``/``.

    ``users`` maps usernames to passwords; ``authorized_keys`` (public keys as ``SSHKey`` or
    OpenSSH strings) may log in as any user. Port 0 picks a free port. It runs on the event
    loop that calls :meth:`start`, so start it from the loop the client uses.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        users: Mapping[str, str] | None = None,
        authorized_keys: Sequence[asyncssh.SSHKey | str] = (),
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.root = Path(root).resolve()
        self.users = dict(users or {})
        self._authorized = frozenset(
            (asyncssh.import_public_key(k) if isinstance(k, str) else k).public_data
            for k in authorized_keys
        )
        self._host = host
        self._requested_port = port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.stats = SftpServerStats()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    async def start(self) -> Self:
        """Start listening; returns self."""
        root = os.fsencode(self.root)
        stats = self.stats
        self._acceptor = await asyncssh.listen(
            self._host,
            self._requested_port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _AuthServer(self.users, self._authorized, self._connections),
            sftp_factory=lambda chan: _CountingSFTPServer(chan, root, stats),
            allow_scp=False,
            reuse_address=True,
        )
        return self

    async def stop(self) -> None:
        """Stop listening and close every open client connection."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
        await self.close_connections()
        if acceptor is not None:
            # Only once the connections are closed: from Python 3.12 a server's
            # wait_closed() waits for every connection it accepted (it never returned here).
            await acceptor.wait_closed()

    async def close_connections(self) -> None:
        """Drop every client connection (the listener keeps accepting new ones)."""
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
        self._connections.difference_update(connections)

    @property
    def connection_count(self) -> int:
        """Client connections currently open."""
        return len(self._connections)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._acceptor is None:
            raise RuntimeError("EmbeddedSftpServer is not started")
        return self._acceptor.get_port()

    @property
    def bytes_read(self) -> int:
        """Bytes of file data all clients have read so far."""
        return self.stats.bytes_read

    @property
    def host_public_key(self) -> str:
        return openssh_public_key(self.host_key)

    @property
    def known_hosts_line(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA…``"""
        return known_hosts_entry(self.host, self.port, self.host_public_key)

    def write_known_hosts(self, path: Path | str) -> Path:
        """Write a known_hosts file holding only this server's key; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.known_hosts_line + "\n")
        return path
