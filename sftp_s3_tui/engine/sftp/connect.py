"""Opening one authenticated SSH connection: ciphers, keys and agent, the optional jump host,
the host-key check (:mod:`.host_keys`), and each failure mapped to one clear error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from ..config import SftpEndpoint
from ..errors import SftpAuthError, SftpConnectError
from .coalesced_writes import coalesce_writes
from .host_keys import (
    HostKeyGate,
    fingerprint,
    host_key_algs,
    host_key_error,
    read_known_hosts,
    remember_host_key,
)
from .ignore_packets import skip_needless_ignore_packets
from .quiet_logging import quiet_asyncssh_logging

log = logging.getLogger(__name__)

quiet_asyncssh_logging()  # its per-packet log calls cost a quarter of a request's CPU
skip_needless_ignore_packets()  # half the packets a small file's requests send
coalesce_writes()  # a loop turn's packets in one write: 16 writes for 8 requests were 1

# asyncssh runs chacha20-poly1305 in Python, packet by packet, and AES-GCM in one OpenSSL call:
# preferring AES-GCM cuts client CPU per GiB read by about a quarter (bench/RESULTS.md).
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def encryption_algs() -> list[str]:
    """asyncssh's default ciphers with AES-GCM moved to the front."""
    defaults = [alg.decode() for alg in get_default_encryption_algs()]
    return [a for a in PREFERRED_CIPHERS if a in defaults] + [
        a for a in defaults if a not in PREFERRED_CIPHERS
    ]


class LoginClock:
    """Times a login's handshake to tell a far host several round trips before the login
    (and the first RTT sample, which waits for the SFTP session) is done.

    From the TCP connection to the user-auth service being accepted is three lock-step
    round trips (the server's version, the key exchange's reply, the service request's);
    asyncssh's key authentication three more (``none``, the key offered, its signature; a
    password two). With ``surely_far_seconds`` as the bar per round trip (the pool's
    single-sample "surely far", 50 ms), ``on_far`` is called once the login is authenticated
    (never before: a server that takes one connection per user must have taken this one,
    not an early login that overtook it), when

    * the key exchange alone took 4 bars for its three round trips (200 ms: hosts from
      ~70 ms away; the SFTP session's three round trips still to come), or
    * both spans took 3 bars each (150 ms: hosts from ~50 ms).

    Sums of three round trips, so one busy moment of a loaded loopback (a slow sshd start,
    an event loop sharing the GIL with the S3 stack's import) does not make a near host far;
    the pool's own rule takes one 50 ms round trip as far. Measured: loopback spans 10-65 ms
    and 24-45 ms (load 4-6, imports alongside); 310 and 325 ms at 100 ms through the latency
    proxy, 170 ms each at 50 ms. Nothing is decided otherwise: the pool's RTT samples decide
    later, as before.
    """

    def __init__(
        self,
        surely_far_seconds: float,
        on_far: Callable[[], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._surely_far = surely_far_seconds
        self._on_far = on_far
        self._now = now
        self._stamps: dict[str, float] = {}
        self.far = False

    def phase(self, name: str) -> None:
        """``name`` ("connected", "auth", "authenticated") was reached now."""
        self._stamps[name] = now = self._now()
        connected, auth = self._stamps.get("connected"), self._stamps.get("auth")
        if self.far or connected is None or auth is None:
            return
        exchange = auth - connected
        if name != "authenticated":
            return
        log.debug("handshake %.3f s, authentication %.3f s", exchange, now - auth)
        bar = self._surely_far
        far = exchange >= 4 * bar or min(exchange, now - auth) >= 3 * bar
        if far:
            self.far = True
            self._on_far()


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
    endpoint: SftpEndpoint,
    *,
    tunnel: asyncssh.SSHClientConnection | None = None,
    clock: LoginClock | None = None,
) -> asyncssh.SSHClientConnection:
    """Open and authenticate an SSH connection, verifying the host key; map errors to text.

    With ``endpoint.jump`` the connection goes through that bastion (its host key checked
    against the same known_hosts); the bastion connection closes with this one. ``clock``
    times the handshake (of the last hop only: see :class:`LoginClock`).
    """
    bastion = jump_endpoint(endpoint) if tunnel is None else None
    if bastion is not None:
        tunnel = await open_connection(bastion)
        try:
            conn = await open_connection(endpoint, tunnel=tunnel, clock=clock)
        except BaseException:
            tunnel.close()
            raise
        # asyncssh closes a tunnel it opened itself, not one passed in: close it with conn.
        closer = asyncio.ensure_future(_close_after(conn, tunnel))
        _TUNNEL_CLOSERS.add(closer)
        closer.add_done_callback(_TUNNEL_CLOSERS.discard)
        return conn
    path = endpoint.known_hosts_path
    known_hosts = await asyncio.to_thread(read_known_hosts, path)
    gate = HostKeyGate(endpoint, known_hosts, clock.phase if clock is not None else None)
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
    if key_algs := host_key_algs(known_hosts, endpoint.host, endpoint.port):
        options["server_host_key_algs"] = key_algs
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
        raise host_key_error(endpoint, gate) from exc
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
