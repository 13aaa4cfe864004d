"""The SFTP connection pool: a few SSH connections per host, opened on demand, reopened after
a drop, with each host's RTT, server profile and bandwidth limit.

Latency, not bandwidth, limits SFTP over a far link: one channel moves at most its SSH window
per round trip. So each connection gets a window sized for bandwidth × RTT, reads keep many
requests in flight, and a host gets up to ``SftpEndpoint.connections`` connections (opened on
demand, logins staggered) so a big file is read over several at once and small files spread
across them. The pool measures each host's RTT and reports the ceiling it implies. A first
login whose handshake is clearly far (:class:`.connect.LoginClock`) starts the others' logins
before it ends, so a big transfer does not begin on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncssh

from ..config import SftpEndpoint
from ..errors import SftpConnectError, TransferError
from ..events import SftpLinkMeasured
from .connect import LoginClock, open_connection
from .entries import RemoteEntry, listdir, realpath, scandir, stat_entry
from .errors import is_connection_error, map_sftp_error, quiet_read_teardown
from .host_keys import fingerprint
from .server_profile import (
    HostProfile,
    ServerProfile,
    handshake_profile,
    needs_read_probe,
    probe_read_size,
    probe_rename,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FAR_RTT_SECONDS = 0.005  # beyond this round trip, more connections per host pay off
RTT_SAMPLES = 4  # a host is far when the minimum of this many round trips is
SURELY_FAR = 10  # ... or as soon as one is this many times the threshold (50 ms)
#: Logins a far handshake starts together, unstaggered (OpenSSH's MaxStartups drops
#: unauthenticated connections from 10 on); further ones keep the host's stagger.
EARLY_AT_ONCE = 3


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
    #: The most connections open at once, and the logins or sessions the server refused
    #: while another was open or opening (see :meth:`SftpPool._note_refusal`).
    granted: int = 0
    refused: int = 0
    #: Set once the first connection's RTT samples are all in: only then is a host far.
    measured: asyncio.Event = field(default_factory=asyncio.Event)
    #: The first login's handshake was far enough that the other connections' logins began
    #: before it ended (:meth:`SftpPool._log_in_early`).
    early_logins: bool = False
    early_tasks: list[asyncio.Future[None]] = field(default_factory=list)


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

    def __init__(self, on_link: LinkHandler | None = None, *, early_logins: bool = True) -> None:
        self._hosts: dict[tuple[str, int, str | None], _Host] = {}
        #: Whether a far handshake starts the host's other logins (:meth:`_log_in_early`):
        #: runs want them; a browsing session opens more only when a transfer needs them.
        self.early_logins = early_logins
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

    async def rename_behaviour(self, endpoint: SftpEndpoint, folder: str) -> str:
        """How ``endpoint``'s plain rename treats an existing target (``refuses``,
        ``replaces`` or ``unknown``), probed once per host per session in ``folder`` (which
        must exist and be writable: the archive folder a ``--move-to`` writes to, or the
        folder a delivery publishes into); callers meanwhile wait for the probe."""
        host = self._host(endpoint)
        state = host.server
        if state.rename_probing is None:
            state.rename_probing = asyncio.ensure_future(self._probe_rename(host, folder))
        try:
            return await asyncio.shield(state.rename_probing)
        except (TransferError, OSError, asyncssh.Error, TimeoutError):
            return "unknown"

    async def _probe_rename(self, host: _Host, folder: str) -> str:
        client, _generation = await self._ensure(host, host.slots[0])
        try:
            async with asyncio.timeout(host.endpoint.request_timeout_seconds * 4):
                found = await probe_rename(client, folder)
        except TimeoutError:
            found = "unknown"
        if host.server.profile is not None:
            host.server.profile = replace(host.server.profile, rename_overwrites=found)
            log.info("%s: %s", host.endpoint.display, host.server.profile.summary())
        if self.on_link is not None and host.rtt_seconds is not None:
            self.on_link(self._link_event(host))
        return found

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
            lanes = self._lanes(host)
            if slot is not None:
                chosen = host.slots[slot % lanes]
            else:  # near hosts: one connection does (more only cost logins and CPU)
                chosen = host.slots[0] if near else _pick(host.slots[:lanes])
            chosen.files += 1
        try:
            client, generation = await self._ensure(host, chosen)
        except SftpConnectError:
            chosen.files -= 1
            if chosen.index >= self._lanes(host):  # the server capped the lanes below this
                return await self.lease(endpoint, slot=slot)  # one: lend one it granted
            raise
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

    def connections_begun(self, endpoint: SftpEndpoint) -> int:
        """How many of ``endpoint``'s connections are open or logging in now."""
        host = self._hosts.get(self._key(endpoint))
        if host is None:
            return 0
        return sum(1 for slot in host.slots if slot.alive or slot.lock.locked())

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

    async def _ensure(
        self, host: _Host, slot: _Slot, *, staggered: bool = True
    ) -> tuple[asyncssh.SFTPClient, int]:
        """``slot``'s client, logging in (again) when needed, staggered per host (unless
        ``staggered`` is false: one of the few logins a far handshake starts at once)."""
        endpoint = host.endpoint
        async with slot.lock:
            if slot.alive:
                assert slot.client is not None
                return slot.client, slot.generation
            await self._drop(slot)
            loop = asyncio.get_running_loop()
            if staggered:
                wait = host.next_login_at - loop.time()
                host.next_login_at = (
                    max(host.next_login_at, loop.time()) + endpoint.login_stagger_seconds
                )
                if wait > 0:
                    await asyncio.sleep(wait)
            clock = self._login_clock(host, slot)
            try:
                conn = await open_connection(endpoint, clock=clock)
            except BaseException as exc:
                if clock is not None and clock.far:  # as authentication began: a refused
                    for task in host.early_tasks:  # login is not tried three times more
                        task.cancel()
                self._note_refusal(host, slot, exc.__cause__ or exc)
                raise
            quiet_read_teardown(loop)
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
                if self._note_refusal(host, slot, exc):
                    raise SftpConnectError(
                        f"{endpoint.display} refused SFTP session {slot.index + 1}: {exc}",
                        "the server caps sessions per user; fewer connections are used",
                    ) from exc
                raise SftpConnectError(
                    f"{endpoint.display} has no SFTP subsystem: {exc}",
                    "check that the server allows SFTP for this user",
                ) from exc
            except BaseException:  # cancelled (e.g. a background login as the pool closes)
                conn.close()
                raise
            slot.conn, slot.client = conn, client
            slot.generation += 1
            if host.server.profile is None:
                host.server.profile = handshake_profile(conn, client, endpoint.read_block_bytes)
            host.granted = max(host.granted, sum(1 for s in host.slots if s.alive))
            self._note_lanes(host)
            self._in_background(self._measure(host, client))
            await asyncio.sleep(0)  # its first request is sent before the caller's
            return client, slot.generation

    def _note_refusal(self, host: _Host, slot: _Slot, exc: BaseException) -> bool:
        """Count a login or SFTP session the server refused while another connection of the
        host was open or logging in: the server's cap (MaxSessions, MaxClientsPerUser, an
        appliance's licence, AWS Transfer Family's sessions), learned once and kept for the
        session so the pool stops asking for more. A closed port, a connection lost without
        a word or a timeout is no refusal (a flaky link must not cap the session): the
        server must say it, with a disconnect message or a refused channel."""
        refused = isinstance(
            exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError
        ) and not isinstance(exc, asyncssh.ConnectionLost)
        others = any(s is not slot and (s.alive or s.lock.locked()) for s in host.slots)
        if not (refused and others):
            return False
        host.refused += 1
        self._note_lanes(host)
        if self.on_link is not None and host.rtt_seconds is not None:
            self.on_link(self._link_event(host))
        log.info(
            "%s refused connection %d (%s): using %d",
            host.endpoint.display,
            slot.index + 1,
            exc,
            max(1, host.granted),
        )
        return True

    @staticmethod
    def _note_lanes(host: _Host) -> None:
        """Put what the logins learned (lanes asked, granted, refused) into the profile."""
        if host.server.profile is not None:
            host.server.profile = replace(
                host.server.profile,
                connections_asked=len(host.slots),
                connections_granted=host.granted,
                connections_refused=host.refused,
            )

    @staticmethod
    def _lanes(host: _Host) -> int:
        """The connections the host may use: the cap the server showed, else the slots."""
        profile = host.server.profile
        limit = profile.connection_limit if profile is not None else 0
        return min(limit, len(host.slots)) if limit else len(host.slots)

    def _login_clock(self, host: _Host, slot: _Slot) -> LoginClock | None:
        """A clock for the host's first login when more connections are allowed: a far
        handshake starts their logins before this one ends (:meth:`_log_in_early`)."""
        if not self.early_logins or slot.index != 0 or len(host.slots) < 2 or host.early_logins:
            return None
        if host.rtt_seconds is not None:  # a reconnect: the RTT samples know better
            return None
        return LoginClock(SURELY_FAR * FAR_RTT_SECONDS, lambda: self._log_in_early(host))

    def _log_in_early(self, host: _Host) -> None:
        """Begin the logins of the host's other connections now, in the background.

        A login is about ten round trips; waiting for the first one to end and for its RTT
        samples left a far host's big transfer on one connection for most of a second (at
        100 ms). The first EARLY_AT_ONCE go at once (staggered, the last of three lanes was
        ready 0.5 s after the first); best effort: a login that fails here is tried again
        when a file needs it."""
        if host.early_logins:
            return
        host.early_logins = True
        log.info(
            "%s is far: logging in %d more connections", host.endpoint.display, len(host.slots) - 1
        )
        host.early_tasks = [
            self._in_background(self._log_in_quietly(host, slot, slot.index <= EARLY_AT_ONCE))
            for slot in host.slots[1:]
        ]

    async def _log_in_quietly(self, host: _Host, slot: _Slot, at_once: bool) -> None:
        try:
            await self._ensure(host, slot, staggered=not at_once)
        except Exception as exc:  # a warm-up never fails the run
            log.debug("%s: an early login failed: %s", host.endpoint.display, exc)

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
        return await stat_entry(self, endpoint, path)

    async def listdir(self, endpoint: SftpEndpoint, path: str) -> list[RemoteEntry]:
        """Entries of a remote directory (links resolved), folders first, then by name."""
        return await listdir(self, endpoint, path)

    def scandir(self, endpoint: SftpEndpoint, path: str) -> AsyncIterator[RemoteEntry]:
        """Stream a directory's entries as the server sends them (see :func:`.entries.scandir`)."""
        return scandir(self, endpoint, path)

    async def realpath(self, endpoint: SftpEndpoint, path: str) -> str:
        """The canonical path of ``path`` (links resolved by the server)."""
        return await realpath(self, endpoint, path)


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


async def _measure_rtt(client: asyncssh.SFTPClient) -> float:
    """The round trip of a cheap SFTP request, in seconds."""
    began = time.monotonic()
    await client.realpath(".")
    return time.monotonic() - began
