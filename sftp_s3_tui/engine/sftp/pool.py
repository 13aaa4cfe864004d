"""SFTP side: a few SSH connections per host, host-key checks, listings and pipelined reads.

Latency, not bandwidth, limits SFTP over a far link: one channel moves at most its SSH window
per round trip. So each connection gets a window sized for bandwidth × RTT, reads keep many
requests in flight, and a host gets up to ``SftpEndpoint.connections`` connections (opened on
demand, logins staggered) so a big file is read over several at once and small files spread
across them. The pool measures each host's RTT and reports the ceiling it implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import posixpath
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from ..config import HostKeyPolicy, SftpEndpoint
from ..errors import (
    HostKeyError,
    SftpAuthError,
    SftpConnectError,
    SftpReadError,
    SourceChanged,
    SourceNotFound,
    SourcePermissionDenied,
    SourceReadFailed,
    SourceUnsupported,
    TransferError,
)
from ..events import SftpLinkMeasured
from .server_profile import (
    HostProfile,
    ServerProfile,
    handshake_profile,
    needs_read_probe,
    probe_read_size,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# asyncssh runs chacha20-poly1305 in Python, packet by packet, and AES-GCM in one OpenSSL call:
# preferring AES-GCM cuts client CPU per GiB read by about a quarter (bench/RESULTS.md).
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def encryption_algs() -> list[str]:
    """asyncssh's default ciphers with AES-GCM moved to the front."""
    defaults = [alg.decode() for alg in get_default_encryption_algs()]
    return [a for a in PREFERRED_CIPHERS if a in defaults] + [
        a for a in defaults if a not in PREFERRED_CIPHERS
    ]


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


def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


class _HostKeyGate(asyncssh.SSHClient):
    """Decides on host keys asyncssh did not find in known_hosts, and remembers what it saw.

    As OpenSSH does: a certificate signed by a ``@cert-authority`` of the host is accepted
    (by asyncssh) without being recorded; a plain key of such a host is judged like any other
    (refused, or recorded under accept-new); a ``@revoked`` key, or a CA that known_hosts does
    not trust, is refused under every policy.
    """

    def __init__(self, endpoint: SftpEndpoint, known_hosts: bytes) -> None:
        self._endpoint = endpoint
        self._known_hosts = known_hosts
        self.presented: asyncssh.SSHKey | None = None
        self.known: tuple[asyncssh.SSHKey, ...] = ()
        self.revoked: tuple[asyncssh.SSHKey, ...] = ()
        self.untrusted_ca: asyncssh.SSHKey | None = None
        self.accepted_new = False

    def match(self, host: str, addr: str, port: int | None) -> tuple[Sequence[object], ...]:
        """known_hosts matched for asyncssh, with ``@revoked [host]:port`` lines kept.

        asyncssh drops port-specific ``@revoked`` lines when no trusted key matches the port
        (it falls back to the port-less match), so they are matched here as plain lines.
        """
        matched = asyncssh.match_known_hosts(self._known_hosts, host, addr, port)
        revoked_lines = [
            line.strip()[len(b"@revoked") :].strip()
            for line in self._known_hosts.splitlines()
            if line.strip().startswith(b"@revoked")
        ]
        as_plain = b"\n".join(revoked_lines)
        revoked = list(matched[2])
        for key in asyncssh.match_known_hosts(as_plain, host, addr, port)[0]:
            if key not in revoked:
                revoked.append(key)
        self.revoked = tuple(revoked)
        return (matched[0], matched[1], revoked, *matched[3:])

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented = key
        if key in self.revoked:
            return False
        trusted_lines = self._endpoint.trusted_host_keys
        if any(asyncssh.import_public_key(line) == key for line in trusted_lines):
            return True
        known = asyncssh.match_known_hosts(self._known_hosts, host, addr, port)[0]
        self.known = tuple(known)
        if not self.known and self._endpoint.host_key_policy is HostKeyPolicy.ACCEPT_NEW:
            self.accepted_new = True
            return True
        return False

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.untrusted_ca = key
        return False


def _host_key_algs(known_hosts: bytes, host: str, port: int) -> str | None:
    """``'default'`` (certificates and plain keys) when only a CA of ``host`` is known.

    asyncssh offers only certificate algorithms then, so a host showing a plain key could
    not be reached at all; OpenSSH prefers certificates but still takes plain keys.
    """
    matched = asyncssh.match_known_hosts(known_hosts, host, "", port if port != 22 else None)
    return "default" if matched[1] and not matched[0] else None


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """The OpenSSH known_hosts line for ``key`` at ``host:port``."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key().decode().strip()}\n"


def remember_host_key(path: Path, host: str, port: int, key_line: str) -> None:
    """Append a host key to a known_hosts file (created 0600 with its folder if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.import_public_key(key_line)
    with open(path, "a", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(known_hosts_line(host, port, key))


_TUNNEL_CLOSERS: set[asyncio.Future[None]] = set()


async def _close_after(
    conn: asyncssh.SSHClientConnection, tunnel: asyncssh.SSHClientConnection
) -> None:
    with contextlib.suppress(Exception):
        await conn.wait_closed()
    tunnel.close()


def jump_endpoint(endpoint: SftpEndpoint) -> SftpEndpoint | None:
    """The bastion of ``endpoint.jump`` (``[user@]host[:port]``), with the endpoint's keys."""
    if not endpoint.jump:
        return None
    spec = endpoint.jump.removeprefix("ssh://")
    user, _, hostport = spec.rpartition("@")
    host, port = hostport, 22
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SftpConnectError(
                f"The jump host {endpoint.jump!r} has no valid port", "use [user@]host[:port]"
            )
        port = int(port_text)
    if not host:
        raise SftpConnectError(f"The jump host {endpoint.jump!r} has no host", "use [user@]host")
    return replace(endpoint, host=host, port=port, username=user or endpoint.username, jump=None)


async def open_connection(
    endpoint: SftpEndpoint, *, tunnel: asyncssh.SSHClientConnection | None = None
) -> asyncssh.SSHClientConnection:
    """Open and authenticate an SSH connection, verifying the host key; map errors to text.

    With ``endpoint.jump`` the connection goes through that bastion (its host key checked
    against the same known_hosts); the bastion connection closes with this one.
    """
    bastion = jump_endpoint(endpoint) if tunnel is None else None
    if bastion is not None:
        tunnel = await open_connection(bastion)
        try:
            conn = await open_connection(endpoint, tunnel=tunnel)
        except BaseException:
            tunnel.close()
            raise
        # asyncssh closes a tunnel it opened itself, not one passed in: close it with conn.
        closer = asyncio.ensure_future(_close_after(conn, tunnel))
        _TUNNEL_CLOSERS.add(closer)
        closer.add_done_callback(_TUNNEL_CLOSERS.discard)
        return conn
    path = endpoint.known_hosts_path
    known_hosts = await asyncio.to_thread(_read_optional, path)
    gate = _HostKeyGate(endpoint, known_hosts)
    options: dict[str, object] = {
        "port": endpoint.port,
        "known_hosts": gate.match,
        "client_factory": lambda: gate,
        "connect_timeout": endpoint.connect_timeout_seconds,
        "keepalive_interval": endpoint.keepalive_seconds,
        "keepalive_count_max": 3,
        "encryption_algs": encryption_algs(),
        "window": endpoint.window_bytes,
        "max_pktsize": endpoint.max_packet_bytes,
        "password": endpoint.password,
        "passphrase": endpoint.passphrase,
    }
    if endpoint.username:
        options["username"] = endpoint.username
    if host_key_algs := _host_key_algs(known_hosts, endpoint.host, endpoint.port):
        options["server_host_key_algs"] = host_key_algs
    client_keys: list[asyncssh.SSHKey | str] = _import_keys(endpoint)
    client_keys += [str(Path(p).expanduser()) for p in endpoint.identity_files]
    if client_keys:
        options["client_keys"] = client_keys
    elif not endpoint.use_agent:
        options["client_keys"] = None
    if not endpoint.use_agent:
        options["agent_path"] = None
    if tunnel is not None:
        options["tunnel"] = tunnel
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        conn = await asyncssh.connect(endpoint.host, **options)  # type: ignore[arg-type]
    except asyncssh.HostKeyNotVerifiable as exc:
        raise _host_key_error(endpoint, gate) from exc
    except asyncssh.PermissionDenied as exc:
        raise SftpAuthError(
            f"{endpoint.display} refused the login for {endpoint.username or 'the current user'}",
            "check the user name, password or key ({setting})",
            setting="sftp_login",
        ) from exc
    except asyncssh.KeyImportError as exc:
        raise SftpAuthError(
            f"The private key could not be loaded: {exc}",
            "check {setting} and the key's passphrase",
            setting="identity",
        ) from exc
    except TimeoutError as exc:
        raise SftpConnectError(
            f"Connecting to {where} timed out", "check the host, port and firewall"
        ) from exc
    except (OSError, asyncssh.Error) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise SftpConnectError(
            f"Cannot connect to {where}: {reason}", "check the host name, port and network"
        ) from exc
    if gate.accepted_new and gate.presented is not None:
        await asyncio.to_thread(
            remember_host_key,
            path,
            endpoint.host,
            endpoint.port,
            gate.presented.export_public_key().decode(),
        )
        log.warning("Added the host key of %s (%s) to %s", where, fingerprint(gate.presented), path)
    return conn


def _import_keys(endpoint: SftpEndpoint) -> list[asyncssh.SSHKey | str]:
    """The endpoint's in-memory private keys, decrypted with its passphrase."""
    try:
        return [
            asyncssh.import_private_key(text, endpoint.passphrase) for text in endpoint.private_keys
        ]
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SftpAuthError(
            f"The private key for {endpoint.display} could not be loaded: {exc}",
            "check the key text and its passphrase",
        ) from exc


def _read_optional(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _host_key_error(endpoint: SftpEndpoint, gate: _HostKeyGate) -> HostKeyError:
    where = f"{endpoint.host}:{endpoint.port}"
    key = gate.presented
    seen = fingerprint(key) if key else "unknown"
    line = key.export_public_key().decode().strip() if key else ""
    if (key in gate.revoked) if key is not None else bool(gate.revoked):
        revoked = tuple(fingerprint(k) for k in gate.revoked)
        return HostKeyError(
            f"The host key of {where} is REVOKED in known_hosts ({', '.join(revoked)})",
            "this may be an attack; ask the server's administrator "
            f"(see {endpoint.known_hosts_path})",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=seen if key else revoked[0],
            known_fingerprints=revoked,
        )
    if gate.untrusted_ca is not None:
        ca = fingerprint(gate.untrusted_ca)
        return HostKeyError(
            f"The host certificate of {where} is signed by a CA known_hosts does not trust ({ca})",
            f"verify the CA, then add a @cert-authority line to {endpoint.known_hosts_path}",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=ca,
            known_fingerprints=(ca,),
        )
    if gate.known:
        known = tuple(fingerprint(k) for k in gate.known)
        return HostKeyError(
            f"The host key of {where} has CHANGED: the server shows {seen}, "
            f"known_hosts has {', '.join(known)}",
            "this may be an attack; if the server was really re-keyed, remove the old line "
            f"from {endpoint.known_hosts_path}",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=seen,
            known_fingerprints=known,
            key_line=line,
        )
    return HostKeyError(
        f"The host key of {where} is unknown ({seen})",
        f"verify the fingerprint, then {{setting}} or add it to {endpoint.known_hosts_path}",
        setting="accept_new_host_key",
        host=endpoint.host,
        port=endpoint.port,
        fingerprint=seen,
        key_line=line,
    )


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection (not the file) failed: lost, closed, stalled.

    A file's own error (an I/O error or refusal the server reports for one request) leaves
    the connection healthy for every other file on it.
    """
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return True
    if isinstance(exc, asyncssh.SFTPError):
        return False  # an answer from a live server about this one request
    return isinstance(
        exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError | OSError | TimeoutError
    )


def map_sftp_error(exc: BaseException, path: str) -> TransferError:
    """Turn an asyncssh/OS error about ``path`` into a user-facing error."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath | FileNotFoundError):
        return SourceNotFound(f"{path} does not exist on the SFTP server", "check the path")
    if isinstance(exc, asyncssh.SFTPPermissionDenied | PermissionError):
        return SourcePermissionDenied(
            f"Permission denied reading {path}", "check the SFTP user's rights on it"
        )
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return SftpReadError(f"Reading {path} timed out", "the server stalled; try again")
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if isinstance(exc, asyncssh.SFTPError) and not is_connection_error(exc):
        return SourceReadFailed(
            f"The SFTP server failed reading {path}: {reason}",
            "the server reported an error for this file (an I/O error?); check it there",
        )
    return SftpReadError(f"Reading {path} failed: {reason}", "the connection may have dropped")


@dataclass
class _Slot:
    """One SSH connection to a host (opened on demand) and its SFTP session."""

    index: int
    conn: asyncssh.SSHClientConnection | None = None
    client: asyncssh.SFTPClient | None = None
    generation: int = 0  # bumped by every reconnect: a failure resets one generation once
    files: int = 0  # open files leased on this connection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def alive(self) -> bool:
        return self.client is not None and self.conn is not None and not self.conn.is_closed()


@dataclass(frozen=True, slots=True)
class Lease:
    """A connection lent to one open file (or one request): which slot, which generation."""

    slot: int
    generation: int
    client: asyncssh.SFTPClient


@dataclass
class _Host:
    endpoint: SftpEndpoint
    slots: list[_Slot]
    bucket: TokenBucket | None
    next_login_at: float = 0.0
    rtt_seconds: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Fingerprints of the host keys this host's logins showed (one, unless the address
    #: hides several servers), and the user names they logged in as (the endpoint's, else
    #: ~/.ssh/config's or the local one): part of what identifies a source to a resume.
    host_keys: set[str] = field(default_factory=set)
    login_users: set[str] = field(default_factory=set)
    #: What the server grants (probed once per session: see server_profile).
    server: HostProfile = field(default_factory=HostProfile)
    #: Set once the first connection's RTT samples are all in: only then is a host far.
    measured: asyncio.Event = field(default_factory=asyncio.Event)


def _with_trusted_keys(endpoint: SftpEndpoint, lines: tuple[str, ...]) -> SftpEndpoint:
    """``endpoint`` also trusting ``lines``: a key trusted once holds for every later login."""
    added = tuple(line for line in lines if line not in endpoint.trusted_host_keys)
    if not added:
        return endpoint
    return replace(endpoint, trusted_host_keys=endpoint.trusted_host_keys + added)


class TokenBucket:
    """``--bwlimit``: lets ``rate`` bytes per second through on average (bursts ≤ 1/4 s)."""

    def __init__(self, bytes_per_second: int) -> None:
        self.rate = float(bytes_per_second)
        self.burst = max(self.rate / 4, 256 * 1024.0)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    async def take(self, count: int) -> None:
        """Account ``count`` bytes just read; sleep while the bucket is in debt."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= count
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


LinkHandler = Callable[[SftpLinkMeasured], None]


class Logins:
    """Logins started early by :meth:`SftpPool.start_logins`.

    :meth:`wait` raises the first one's error (the same one the first listing would
    meet, so it is reported once, in its place); :meth:`discard` cancels the rest and
    consumes their errors (a run that stopped for another reason says nothing of them).
    """

    def __init__(self, tasks: list[asyncio.Future[asyncssh.SFTPClient]]) -> None:
        self._tasks = tasks

    async def wait(self) -> None:
        for task in self._tasks:
            await task

    def discard(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()


class SftpPool:
    """Up to ``endpoint.connections`` SSH connections per host, reopened after a drop.

    Files lease a connection (the least busy one; a new one while under the cap and all are
    busy); a big file leases several and reads its parts over all of them. A connection is
    reset once per failure (the lease's generation), never for a file's own error.
    """

    def __init__(self, on_link: LinkHandler | None = None) -> None:
        self._hosts: dict[tuple[str, int, str | None], _Host] = {}
        self._closing: set[asyncio.Future[None]] = set()  # background work: closes, RTTs
        #: Called with each host's measured RTT and implied ceiling (the queue emits it).
        self.on_link = on_link

    @staticmethod
    def _key(endpoint: SftpEndpoint) -> tuple[str, int, str | None]:
        return (endpoint.host, endpoint.port, endpoint.username)

    def _host(self, endpoint: SftpEndpoint) -> _Host:
        key = self._key(endpoint)
        host = self._hosts.get(key)
        if host is None:
            cap = max(1, endpoint.connections)
            rate = endpoint.bwlimit_bytes_per_second
            host = _Host(
                endpoint, [_Slot(i) for i in range(cap)], TokenBucket(rate) if rate else None
            )
            self._hosts[key] = host
        else:
            host.endpoint = _with_trusted_keys(host.endpoint, endpoint.trusted_host_keys)
        return host

    def link(self, endpoint: SftpEndpoint) -> SftpLinkMeasured | None:
        """The last RTT measured for ``endpoint``'s host and the ceiling it implies."""
        host = self._hosts.get(self._key(endpoint))
        if host is None or host.rtt_seconds is None:
            return None
        return self._link_event(host)

    def announce_links(self) -> None:
        """Tell ``on_link`` every host measured so far (logins that finished before anyone
        listened: see :meth:`start_logins`)."""
        if self.on_link is None:
            return
        for host in self._hosts.values():
            if host.rtt_seconds is not None:
                self.on_link(self._link_event(host))

    def _link_event(self, host: _Host) -> SftpLinkMeasured:
        endpoint = host.endpoint
        rtt = host.rtt_seconds or 0.0
        connections = sum(1 for slot in host.slots if slot.alive) or 1
        ceiling = endpoint.window_bytes * connections / rtt if rtt > 0 else 0.0
        if endpoint.bwlimit_bytes_per_second:
            ceiling = min(ceiling, endpoint.bwlimit_bytes_per_second) if ceiling else ceiling
        return SftpLinkMeasured(
            transfer_id=0,
            host=endpoint.display,
            rtt_seconds=rtt,
            window_bytes=endpoint.window_bytes,
            connections=connections,
            ceiling_bytes_per_second=ceiling,
            server=host.server.profile,
        )

    def server_profile(self, endpoint: SftpEndpoint) -> ServerProfile | None:
        """What ``endpoint``'s server was found to grant (None before its first login)."""
        host = self._hosts.get(self._key(endpoint))
        return host.server.profile if host is not None else None

    def read_block_bytes(self, endpoint: SftpEndpoint) -> int:
        """The block size a new read of ``endpoint``'s files uses (-1: the server's own)."""
        profile = self.server_profile(endpoint)
        return profile.read_bytes if profile is not None else -1

    async def settle_read_size(
        self, endpoint: SftpEndpoint, file: asyncssh.SFTPClientFile, file_size: int
    ) -> int:
        """The host's read size, probed with ``file`` (open, ``file_size`` bytes) when it is
        still unknown; a probe already under way for the host is waited for instead."""
        host = self._host(endpoint)
        state = host.server
        if state.profile is None:
            return -1
        if state.probing is not None and not state.probing.done():
            await asyncio.shield(state.probing)
        elif needs_read_probe(state.profile, file_size):
            probing = asyncio.ensure_future(
                probe_read_size(state.profile, file, file_size, endpoint.request_timeout_seconds)
            )
            state.probing = probing
            found = await asyncio.shield(probing)
            state.profile = _merged(state.profile, found)
            log.info("%s: %s", endpoint.display, state.profile.summary())
            if self.on_link is not None and host.rtt_seconds is not None:
                self.on_link(self._link_event(host))
        assert state.profile is not None
        return state.profile.read_bytes

    def throttle(self, endpoint: SftpEndpoint) -> TokenBucket | None:
        """The host's bandwidth limiter (None when unlimited)."""
        return self._host(endpoint).bucket

    async def lease(self, endpoint: SftpEndpoint, *, slot: int | None = None) -> Lease:
        """Lend a connection for one open file; give it back with :meth:`release`.

        ``slot`` asks for that connection (a big file reading over several); otherwise the
        least busy one, or a new one when every open one is busy and the cap allows.
        """
        host = self._host(endpoint)
        async with host.lock:
            near = host.rtt_seconds is not None and not _is_far(host)
            if slot is not None:
                chosen = host.slots[slot % len(host.slots)]
            else:  # near hosts: one connection does (more only cost logins and CPU)
                chosen = host.slots[0] if near else _pick(host.slots)
            chosen.files += 1
        try:
            client, generation = await self._ensure(host, chosen)
        except BaseException:
            chosen.files -= 1
            raise
        return Lease(chosen.index, generation, client)

    def release(self, endpoint: SftpEndpoint, lease: Lease) -> None:
        host = self._hosts.get(self._key(endpoint))
        if host is not None:
            slot = host.slots[lease.slot]
            slot.files = max(0, slot.files - 1)

    async def client(self, endpoint: SftpEndpoint) -> asyncssh.SFTPClient:
        """An SFTP client for one-off requests (listings, stats): the first connection."""
        host = self._host(endpoint)
        client, _generation = await self._ensure(host, host.slots[0])
        return client

    def start_logins(self, endpoints: Sequence[SftpEndpoint]) -> Logins:
        """Begin the first login to each host now, so its handshake round trips overlap
        other start-up work (importing the S3 stack, checking the bucket); see :class:`Logins`."""
        hosts = {self._key(e): e for e in endpoints}
        return Logins([asyncio.ensure_future(self.client(e)) for e in hosts.values()])

    async def host_key_fingerprint(self, endpoint: SftpEndpoint) -> str | None:
        """The fingerprint of the host key ``endpoint``'s server showed (e.g. for a manifest)."""
        await self.client(endpoint)
        conn = self._host(endpoint).slots[0].conn
        key = conn.get_server_host_key() if conn is not None else None
        return fingerprint(key) if key is not None else None

    async def server_seen(self, endpoint: SftpEndpoint) -> tuple[str, str]:
        """The fingerprints of the host keys ``endpoint``'s logins showed and the users they
        logged in as, each sorted and joined (logging in first if none has yet): what a
        resume compares to know it reads the same server as the same user."""
        host = self._host(endpoint)
        if not host.host_keys:
            await self.client(endpoint)
        return ", ".join(sorted(host.host_keys)), ", ".join(sorted(host.login_users))

    async def _ensure(self, host: _Host, slot: _Slot) -> tuple[asyncssh.SFTPClient, int]:
        """``slot``'s client, logging in (again) when needed, staggered per host."""
        endpoint = host.endpoint
        async with slot.lock:
            if slot.alive:
                assert slot.client is not None
                return slot.client, slot.generation
            await self._drop(slot)
            loop = asyncio.get_running_loop()
            wait = host.next_login_at - loop.time()
            host.next_login_at = (
                max(host.next_login_at, loop.time()) + endpoint.login_stagger_seconds
            )
            if wait > 0:
                await asyncio.sleep(wait)
            conn = await open_connection(endpoint)
            _quiet_read_teardown(loop)
            if (host_key := conn.get_server_host_key()) is not None:
                host.host_keys.add(fingerprint(host_key))
            if user := conn.get_extra_info("username"):
                host.login_users.add(str(user))
            try:
                async with asyncio.timeout(endpoint.request_timeout_seconds):
                    client = await conn.start_sftp_client()
            except TimeoutError as exc:
                conn.close()
                raise SftpConnectError(
                    f"{endpoint.display} did not start its SFTP session in time",
                    "the server stalled; try again",
                ) from exc
            except (OSError, asyncssh.Error) as exc:
                conn.close()
                raise SftpConnectError(
                    f"{endpoint.display} has no SFTP subsystem: {exc}",
                    "check that the server allows SFTP for this user",
                ) from exc
            slot.conn, slot.client = conn, client
            slot.generation += 1
            if host.server.profile is None:
                host.server.profile = handshake_profile(conn, client, endpoint.read_block_bytes)
            self._in_background(self._measure(host, client))
            await asyncio.sleep(0)  # its first request is sent before the caller's
            return client, slot.generation

    async def _measure(self, host: _Host, client: asyncssh.SFTPClient) -> None:
        """RTT samples of a new connection, taken while the first requests go out (not
        before them: a round trip less per login); the minimum is kept. The first request
        goes out before the caller's, so its answer comes before the file's first stat's.
        A sample above the far threshold may be a busy moment (a loaded machine makes a
        loopback round trip take 10 ms), so a host is far only when the minimum of
        RTT_SAMPLES samples is: the decision waits for them (:meth:`settled_far`)."""
        try:
            for sample in range(RTT_SAMPLES):
                try:
                    async with asyncio.timeout(host.endpoint.request_timeout_seconds):
                        rtt = await _measure_rtt(client)
                except (OSError, asyncssh.Error, TimeoutError):
                    return
                better = host.rtt_seconds is None or rtt < host.rtt_seconds
                if better:
                    host.rtt_seconds = rtt
                if (better or sample == 0) and self.on_link is not None:  # 0: a new connection
                    self.on_link(self._link_event(host))
                if host.rtt_seconds is not None and host.rtt_seconds < FAR_RTT_SECONDS:
                    return  # near: no later sample can make it far
        finally:
            host.measured.set()

    async def settled_far(self, endpoint: SftpEndpoint) -> bool:
        """Whether ``endpoint``'s host is far, from the minimum of its RTT samples (waits for
        them while the samples so far say far; a near sample decides at once)."""
        host = self._hosts.get(self._key(endpoint))
        if host is None or host.rtt_seconds is None:
            return False
        if not _is_far(host) and host.rtt_seconds >= FAR_RTT_SECONDS:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(host.endpoint.request_timeout_seconds):
                    await host.measured.wait()
        return _is_far(host)

    async def invalidate(self, endpoint: SftpEndpoint, client: asyncssh.SFTPClient | Lease) -> None:
        """Forget a connection that failed, so the next call reconnects — once per failure.

        Given a :class:`Lease`, only the generation it was lent from is dropped: a second
        part failing on the same dead connection does not close its replacement.
        """
        host = self._hosts.get(self._key(endpoint))
        if host is None:
            return
        for slot in host.slots:
            if isinstance(client, Lease):
                if slot.index != client.slot or slot.generation != client.generation:
                    continue
            elif slot.client is not client:
                continue
            async with slot.lock:
                if slot.client is not None and (
                    not isinstance(client, Lease) or slot.generation == client.generation
                ):
                    await self._drop(slot)

    @staticmethod
    async def _drop(slot: _Slot) -> None:
        conn, slot.conn, slot.client = slot.conn, None, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):  # not wait_for: it can swallow a cancel (3.11)
                    await conn.wait_closed()

    def close_later(self, file: asyncssh.SFTPClientFile) -> None:
        """Close a remote file without waiting for the server's answer."""

        async def close() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):  # not wait_for: it can swallow a cancel (3.11)
                    await file.close()

        self._in_background(close())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run ``work`` on its own; :meth:`close` waits for it."""
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def close(self) -> None:
        """Log out of every host. Background work still under way (handle closes waiting
        for their answer, RTT samples) is dropped: the server closes a session's handles
        when it ends (a round trip less at the end of a run on a far link)."""
        if self._closing:
            for pending in self._closing:
                pending.cancel()
            await asyncio.gather(*self._closing, return_exceptions=True)
        for host in list(self._hosts.values()):
            for slot in host.slots:
                await self._drop(slot)
        self._hosts.clear()

    async def __aenter__(self) -> SftpPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def request(
        self,
        endpoint: SftpEndpoint,
        path: str,
        operation: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        *,
        lease: Lease | None = None,
    ) -> T:
        """Run one SFTP request within the request timeout; translate its errors.

        The one place that tells a file's own error (raised as is, mapped) from a dead or
        stalled connection (reset once, then mapped as retryable).
        """
        if lease is None:
            host = self._host(endpoint)
            client, generation = await self._ensure(host, host.slots[0])
            lease = Lease(0, generation, client)
        try:
            async with asyncio.timeout(endpoint.request_timeout_seconds):
                return await operation(lease.client)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.forget_if_dead(endpoint, lease, exc)
            raise map_sftp_error(exc, path) from exc

    async def forget_if_dead(
        self, endpoint: SftpEndpoint, lease: Lease, exc: BaseException
    ) -> bool:
        """Reset ``lease``'s connection when ``exc`` means it failed; True if it did."""
        host = self._hosts.get(self._key(endpoint))
        slot = host.slots[lease.slot] if host is not None else None
        closed = slot is not None and slot.conn is not None and slot.conn.is_closed()
        dead = is_connection_error(exc) or closed
        if dead:
            await self.invalidate(endpoint, lease)
        return dead

    async def stat(self, endpoint: SftpEndpoint, path: str) -> RemoteEntry:
        """The entry at ``path`` (links followed; a dangling link is a LINK entry)."""
        attrs = await self.request(endpoint, path, lambda c: c.stat(path))
        return _entry(posixpath.basename(path.rstrip("/")) or path, path, attrs)

    async def listdir(self, endpoint: SftpEndpoint, path: str) -> list[RemoteEntry]:
        """Entries of a remote directory (links resolved), folders first, then by name."""
        entries = [entry async for entry in self.scandir(endpoint, path)]
        entries.sort(key=lambda e: (not e.is_dir, e.name.casefold()))
        return entries

    async def scandir(self, endpoint: SftpEndpoint, path: str) -> AsyncIterator[RemoteEntry]:
        """Stream a directory's entries as the server sends them.

        The request timeout applies to each request (one batch of names, one link's stat),
        never to the whole listing, so a huge folder over a slow link succeeds. Links are
        resolved concurrently, each within the timeout; a name that is not valid UTF-8 is
        kept (escaped for display) with a ``problem`` so it fails alone.
        """
        client = await self.client(endpoint)
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
                    yield _entry(name, full, item.attrs)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            if is_connection_error(exc):
                await self.invalidate(endpoint, client)
            raise map_sftp_error(exc, path) from exc
        finally:
            with contextlib.suppress(Exception):
                await names.aclose()  # type: ignore[attr-defined]
        for start in range(0, len(links), LINK_STATS_AT_ONCE):
            batch = links[start : start + LINK_STATS_AT_ONCE]
            for entry in await asyncio.gather(
                *(self._resolve(endpoint, n, f) for n, f, _ in batch)
            ):
                yield entry

    async def _resolve(self, endpoint: SftpEndpoint, name: str, full: str) -> RemoteEntry:
        """A link's target as an entry; a dangling, looping or slow link gets a problem."""
        try:
            attrs = await self.request(endpoint, full, lambda c: c.stat(full))
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
        return _entry(name, full, attrs, is_link=True)

    async def realpath(self, endpoint: SftpEndpoint, path: str) -> str:
        """The canonical path of ``path`` (links resolved by the server)."""
        result = await self.request(endpoint, path, lambda c: c.realpath(path))
        return str(result)


LINK_STATS_AT_ONCE = 32  # a folder of links over a far link: resolve them concurrently


def _is_far(host: _Host) -> bool:
    """Far: every RTT sample taken (the minimum of several) at or above the threshold, or
    one already ten times above it (a busy machine does not add that: no need to wait)."""
    rtt = host.rtt_seconds
    if rtt is None or rtt < FAR_RTT_SECONDS:
        return False
    return host.measured.is_set() or rtt >= SURELY_FAR * FAR_RTT_SECONDS


def _merged(current: ServerProfile, probed: ServerProfile) -> ServerProfile:
    """``current`` (which a background task may have updated meanwhile) with the probe's
    read-size findings."""
    return replace(
        current,
        read_bytes=probed.read_bytes,
        read_source=probed.read_source,
        largest_full_read_bytes=probed.largest_full_read_bytes,
        short_read_bytes=probed.short_read_bytes,
    )


def _pick(slots: list[_Slot]) -> _Slot:
    """The least busy open connection, or a new one if all open ones are busy."""
    open_slots = [s for s in slots if s.alive or s.conn is not None or s.files]
    idle = min(open_slots, key=lambda s: s.files, default=None)
    if idle is not None and idle.files == 0:
        return idle
    closed = [s for s in slots if s not in open_slots]
    if closed:
        return closed[0]
    assert idle is not None
    return idle


def _quiet_read_teardown(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's "Task exception was never retrieved" for asyncssh's own read-ahead
    (and pipelined write) requests that a closed or reset connection ended (a cancelled or
    finished read or write leaves them in flight; nobody is waiting for their blocks, and
    the awaited request already reported the failure). Every other report goes on as before."""
    previous = loop.get_exception_handler()
    if getattr(previous, "_quiet_read_teardown", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        future = context.get("future")
        coro = getattr(future, "get_coro", lambda: None)()
        if isinstance(context.get("exception"), asyncssh.Error | OSError) and getattr(
            coro, "__qualname__", ""
        ).startswith("_SFTPParallelIO."):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler._quiet_read_teardown = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


async def _measure_rtt(client: asyncssh.SFTPClient) -> float:
    """The round trip of a cheap SFTP request, in seconds."""
    began = time.monotonic()
    await client.realpath(".")
    return time.monotonic() - began


def _entry(
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


async def _at_end(file: asyncssh.SFTPClientFile, offset: int) -> bool:
    """True when nothing is left at ``offset`` (a read there returns no byte: EOF)."""
    try:
        data = await file.read(1, offset)
    except asyncssh.SFTPEOFError:
        return True
    return not data


FAR_RTT_SECONDS = 0.005  # beyond this round trip, more connections per host pay off
RTT_SAMPLES = 4  # a host is far when the minimum of this many round trips is
SURELY_FAR = 10  # ... or as soon as one is this many times the threshold (50 ms)


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
        pool: SftpPool,
        endpoint: SftpEndpoint,
        path: str,
        *,
        block_size: int = -1,
        max_requests: int = -1,
    ) -> None:
        self.pool = pool
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
            attrs = await self.pool.request(self.endpoint, self.path, lambda c: c.stat(self.path))
        except BaseException:
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            raise
        await opening  # the open's own error (e.g. no read permission) if it failed
        entry = _entry(posixpath.basename(self.path), self.path, attrs)
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

    async def _use_server_read_size(self, size: int) -> None:
        """Read in the block size the server's profile found (probing it with this file
        when the host's read size is still unknown)."""
        first = self._handles[min(self._handles)][1]
        try:
            read_bytes = await self.pool.settle_read_size(self.endpoint, first, size)
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
        far = parts > 1 and await self.pool.settled_far(self.endpoint)
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
            lease = await self.pool.lease(self.endpoint, slot=index if self._width > 1 else None)
        except SftpConnectError as exc:
            if type(exc) is not SftpConnectError:
                raise  # refused login or host key: not about this file
            raise SftpReadError(f"Reading {self.path} failed: {exc.message}", exc.hint) from exc
        try:
            file = await self.pool.request(
                self.endpoint,
                self.path,
                lambda c: c.open(
                    self.path,
                    "rb",
                    block_size=self.block_size
                    if self.block_size > 0
                    else self.pool.read_block_bytes(self.endpoint),
                    max_requests=self.max_requests,
                ),
                lease=lease,
            )
        except BaseException:
            self.pool.release(self.endpoint, lease)
            raise
        if self._closed:
            self.pool.release(self.endpoint, lease)
            with contextlib.suppress(Exception):
                await file.close()
            return
        self._handles[index] = (lease, file)

    async def read(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``; a short read means the file shrank, bytes beyond
        the expected size that it grew (both :class:`SourceChanged`)."""
        index, lease, file = await self._handle((offset // max(len(view), 1)) % self._width)
        timeout = self.endpoint.request_timeout_seconds
        end = offset + len(view)
        # The read that reaches the expected size also asks for one byte past it, sent
        # alongside (no extra round trip): EOF there, or the file is longer than reported.
        probe = None
        if self.expected_size is not None and end >= self.expected_size:
            probe = asyncio.ensure_future(_at_end(file, end))
        try:
            count = await read_into(
                file, offset, view, stall_seconds=timeout, bucket=self.pool.throttle(self.endpoint)
            )
            at_end = True
            if probe is not None:
                async with asyncio.timeout(timeout):
                    at_end = await probe
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            if await self.pool.forget_if_dead(self.endpoint, lease, exc):
                await self._forget(index)
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
        attrs = await self.pool.request(
            self.endpoint, self.path, lambda _client: file.stat(), lease=lease
        )
        return attrs.size or 0, int(attrs.mtime or 0)

    async def _forget(self, index: int) -> None:
        found = self._handles.pop(index, None)
        if found is not None:
            self.pool.release(self.endpoint, found[0])

    async def reset(self) -> None:
        """Drop every handle (their connections stay unless they failed)."""
        await self._close_handles(1.0)

    async def close(self) -> None:
        """Give the connections back; the handles close in the background (saves a round
        trip per file on a far link; logging out does not wait for their answers)."""
        self._closed = True
        pending = list(self._opening.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for index in list(self._handles):
            file = self._handles[index][1]
            await self._forget(index)
            self.pool.close_later(file)

    async def _close_handles(self, seconds: float) -> None:
        for index in list(self._handles):
            file = self._handles[index][1]
            await self._forget(index)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(seconds):  # not wait_for: it can swallow a cancel
                    await file.close()
