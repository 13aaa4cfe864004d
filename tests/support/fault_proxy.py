"""A fault-injecting TCP proxy on loopback, run in a thread with its own event loop.

It forwards every accepted connection to a target and can, while running:

* cut the connection after N bytes in one direction (once, or every time: ``repeat=True``),
* stall a direction (stop forwarding without closing) for T seconds or until released,
* throttle a direction to B bytes/s,
* refuse new connections (a closed port) or reset the live ones,
* retarget new connections to another server (a man in the middle),
* terminate TLS with a given certificate (an https endpoint in front of a plain server),
* add latency without a bandwidth cap (``rtt_seconds``: each chunk leaves RTT/2 after it
  arrived, per direction, in order: a delay line, not a sleep per chunk),
* flip one byte in the body of the N-th matching HTTP request on its way up (once), so a
  store that checks Content-MD5 / x-amz-checksum-* refuses it.

It counts bytes each way. The thread owns the loop, so the same proxy serves an in-process
async test (its loop is never blocked by the proxy) and a CLI subprocess alike. Setters are
thread-safe and take effect before they return.

The bench imports it too: ``proxy = start(host, port, rtt_seconds=0.05)``, then connect to
``proxy.port`` and ``proxy.stop()`` at the end. In the measured process the proxy's thread
shares the GIL with the client; to keep it apart, run it as its own process:
``python -m tests.support.fault_proxy HOST PORT --rtt-seconds 0.05`` prints the port it listens
on, then forwards until stdin closes (or SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

from tests.support.servers import SftpServerInfo

UP: Literal["up"] = "up"  # client → server
DOWN: Literal["down"] = "down"  # server → client
Direction = Literal["up", "down"]
Which = Literal["up", "down", "both"]
T = TypeVar("T")

_CHUNK = 64 * 1024
#: Chunks a delay line holds per direction and connection (x 64 KiB = 64 MiB): far above any
#: bandwidth-delay product the tests or the bench reach, so it never becomes the limit.
_DELAY_LINE_CHUNKS = 1024
_HTTP_METHODS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")
_MAX_HEADER_BYTES = 64 * 1024


@dataclass
class _Fault:
    """The faults armed on one direction."""

    cut_after: int | None = None  # bytes left before the next cut
    cut_every: int | None = None  # re-arm value after a cut (repeat mode)
    cuts: int = 0
    throttle_bytes_per_second: int | None = None
    delay_seconds: float = 0.0  # one-way latency (RTT / 2)


@dataclass
class _FlipRule:
    """Flip one byte of the ``nth`` request (from arming) whose request line has ``match``."""

    nth: int
    match: bytes
    seen: int = 0
    done: bool = False


@dataclass
class _HttpRequests:
    """Finds request boundaries in one connection's upstream bytes (Content-Length bodies).

    A connection that does not start like HTTP, or sends a chunked body, is left alone.
    """

    opaque: bool = False
    head: bytearray = field(default_factory=bytearray)
    body_left: int = 0
    flip_at: int | None = None  # offset into the current body still to flip

    def feed(self, data: bytes, rule: _FlipRule | None) -> tuple[bytes, bool]:
        """``data`` with the armed flip applied if it falls here; True when it flipped."""
        if self.opaque:
            return data, False
        out = bytearray(data)
        flipped = False
        position = 0
        while position < len(out):
            if self.body_left > 0:
                take = min(self.body_left, len(out) - position)
                if self.flip_at is not None and self.flip_at < take:
                    out[position + self.flip_at] ^= 0xFF
                    self.flip_at = None
                    flipped = True
                elif self.flip_at is not None:
                    self.flip_at -= take
                self.body_left -= take
                position += take
                continue
            self.head += out[position:]
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > _MAX_HEADER_BYTES or not _could_be_http(self.head):
                    self.opaque = True
                return bytes(out), flipped
            consumed = end + 4 - (len(self.head) - (len(out) - position))
            head, self.head = bytes(self.head[: end + 4]), bytearray()
            position += consumed
            if not _could_be_http(head):
                self.opaque = True
                return bytes(out), flipped
            lines = head.split(b"\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(b":") for line in lines[1:] if line)
            }
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                self.opaque = True
                return bytes(out), flipped
            self.body_left = int(headers.get(b"content-length", b"0") or 0)
            self.flip_at = None
            if rule is not None and not rule.done and self.body_left > 0 and rule.match in lines[0]:
                rule.seen += 1
                if rule.seen == rule.nth:
                    rule.done = True
                    self.flip_at = self.body_left // 2
        return bytes(out), flipped


def _could_be_http(head: bytes | bytearray) -> bool:
    sample = bytes(head[:8])
    return any(m.startswith(sample) or sample.startswith(m) for m in _HTTP_METHODS)


class _Link:
    """One proxied connection: both sockets, so a fault can cut them together."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.writers = (client, server)

    def reset(self) -> None:
        """Abort both sides with RST (SO_LINGER 0), as a dropped route or a crashed peer."""
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


class FaultProxy:
    """``with FaultProxy(host, port) as proxy:`` clients connect to ``proxy.port`` instead."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        rtt_seconds: float = 0.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._tls = tls
        self._faults = {UP: _Fault(), DOWN: _Fault()}
        self.rtt_seconds = rtt_seconds
        self._flip: _FlipRule | None = None
        self.flips = 0
        self._bytes = {UP: 0, DOWN: 0}
        self._held = {UP: 0, DOWN: 0}
        self._links: set[_Link] = set()
        self.connections = 0
        self._refusing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flowing: dict[str, asyncio.Event] = {}
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._flowing = {UP: asyncio.Event(), DOWN: asyncio.Event()}
        for event in self._flowing.values():
            event.set()
        self._server = await asyncio.start_server(self._accept, self.host, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            for link in list(self._links):
                link.reset()
            await asyncio.sleep(0)

    def _call(self, func: Callable[[], T]) -> T:
        """Run ``func`` on the proxy's loop and return its result (thread-safe)."""
        assert self._loop is not None, "start the proxy first"

        async def run() -> T:
            return func()

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(10)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    # counters ----------------------------------------------------------------------------
    @property
    def bytes_up(self) -> int:
        """Bytes forwarded client → server so far."""
        return self._bytes[UP]

    @property
    def bytes_down(self) -> int:
        """Bytes forwarded server → client so far."""
        return self._bytes[DOWN]

    @property
    def bytes_delayed(self) -> int:
        """Bytes received but still waiting in a delay line (both directions)."""
        return self._held[UP] + self._held[DOWN]

    def reset_counters(self) -> None:
        """Zero :attr:`bytes_up` and :attr:`bytes_down` (e.g. before a rerun)."""
        self._call(lambda: self._bytes.update({UP: 0, DOWN: 0}))

    @property
    def cuts(self) -> int:
        """Connections cut by an armed byte limit so far."""
        return self._faults[UP].cuts + self._faults[DOWN].cuts

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def wait_for(
        self, condition: Callable[[FaultProxy], bool], timeout: float = 30.0
    ) -> None:
        """Poll ``condition(self)`` from an async test without blocking its loop."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise TimeoutError("the proxy condition was not met in time")
            await asyncio.sleep(0.005)

    def wait_for_sync(self, condition: Callable[[FaultProxy], bool], timeout: float = 30.0) -> None:
        """Poll ``condition(self)`` from synchronous code (a test driving a subprocess)."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise TimeoutError("the proxy condition was not met in time")
            time.sleep(0.005)

    # faults ------------------------------------------------------------------------------
    def cut_after(self, count: int, direction: Direction = DOWN, *, repeat: bool = False) -> None:
        """Reset the connection once ``count`` more bytes went ``direction`` (every time if
        ``repeat``: each cut re-arms the same limit for the next connection)."""

        def arm() -> None:
            fault = self._faults[direction]
            fault.cut_after = count
            fault.cut_every = count if repeat else None

        self._call(arm)

    def stall(self, seconds: float | None = None, which: Which = "both") -> None:
        """Stop forwarding (connections stay open) for ``seconds``, or until :meth:`flow`."""

        def apply() -> None:
            for direction in _directions(which):
                self._flowing[direction].clear()
            if seconds is not None:
                assert self._loop is not None
                self._loop.call_later(seconds, lambda: self._release(which))

        self._call(apply)

    def flow(self, which: Which = "both") -> None:
        """End a stall."""
        self._call(lambda: self._release(which))

    def _release(self, which: Which) -> None:
        for direction in _directions(which):
            self._flowing[direction].set()

    def throttle(self, bytes_per_second: int | None, which: Which = "both") -> None:
        """Forward at most ``bytes_per_second`` per connection (None: full speed)."""

        def apply() -> None:
            for direction in _directions(which):
                self._faults[direction].throttle_bytes_per_second = bytes_per_second

        self._call(apply)

    def set_rtt(self, rtt_seconds: float) -> None:
        """Add ``rtt_seconds`` of round trip (RTT/2 each way), no bandwidth cap. Connections
        accepted before latency was first set keep forwarding without a delay line; a delayed
        direction keeps receiving during a stall (up to 64 MiB per connection)."""
        self.rtt_seconds = rtt_seconds

    def flip_byte(self, nth: int = 1, match: str = "") -> None:
        """Flip one byte in the middle of the body of the ``nth`` HTTP request from now on
        whose request line contains ``match`` (e.g. ``"partNumber=2"``), once. Requests
        without a body are not counted. :attr:`flips` counts the flips done."""
        if nth < 1:
            raise ValueError("nth counts from 1")
        rule = _FlipRule(nth=nth, match=match.encode())
        self._call(lambda: setattr(self, "_flip", rule))

    def refuse(self, refusing: bool = True) -> None:
        """Close new connections at once (the port looks dead); live ones are untouched."""
        self._refusing = refusing

    def reset_all(self) -> None:
        """Reset every live connection now."""

        def apply() -> None:
            for link in list(self._links):
                link.reset()

        self._call(apply)

    def retarget(self, host: str, port: int) -> None:
        """Send new connections to another server."""
        self.target = (host, port)

    def clear(self) -> None:
        """Disarm every fault and let everything flow."""

        def apply() -> None:
            for direction in (UP, DOWN):
                self._faults[direction] = _Fault(cuts=self._faults[direction].cuts)
                self._flowing[direction].set()
            self._refusing = False
            self._flip = None
            self.rtt_seconds = 0.0

        self._call(apply)

    # forwarding --------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Swallow the cancellation at shutdown: asyncio (3.11) would log it as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            _Link(writer, writer).reset()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _Link(writer, writer).reset()
            return
        self.connections += 1
        link = _Link(writer, upstream_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer, UP, link),
                self._pipe(upstream_reader, writer, DOWN, link),
            )
        finally:
            self._links.discard(link)
            for side in link.writers:
                side.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
        link: _Link,
    ) -> None:
        fault = self._faults
        requests = _HttpRequests() if direction == UP else None
        delayed = self.rtt_seconds > 0
        chunks = self._delay_line(reader, direction) if delayed else self._read(reader, direction)
        try:
            async for data in chunks:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                await self._flowing[direction].wait()
                if requests is not None:
                    data, flipped = requests.feed(data, self._flip)
                    self.flips += int(flipped)
                current = fault[direction]
                if current.cut_after is not None and len(data) >= current.cut_after:
                    head = data[: current.cut_after]
                    if head:
                        writer.write(head)
                        self._bytes[direction] += len(head)
                        with contextlib.suppress(ConnectionError):
                            await writer.drain()
                    current.cuts += 1
                    current.cut_after = current.cut_every
                    link.reset()
                    return
                if current.cut_after is not None:
                    current.cut_after -= len(data)
                writer.write(data)
                self._bytes[direction] += len(data)
                await writer.drain()
                rate = current.throttle_bytes_per_second
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except (ConnectionError, OSError, ssl.SSLError):
            link.reset()
        finally:
            await chunks.aclose()

    async def _read(
        self, reader: asyncio.StreamReader, direction: Direction
    ) -> AsyncGenerator[bytes]:
        """Chunks as they arrive (small ones under a throttle); ``b""`` at EOF."""
        while True:
            rate = self._faults[direction].throttle_bytes_per_second
            size = max(1, min(_CHUNK, rate // 20)) if rate else _CHUNK
            data = await reader.read(size)
            yield data
            if not data:
                return

    async def _delay_line(
        self, reader: asyncio.StreamReader, direction: Direction
    ) -> AsyncGenerator[bytes]:
        """Chunks (then ``b""`` at EOF), each released RTT/2 after it arrived, in order.

        A reader task keeps receiving while earlier chunks wait, so the delay is paid once
        per chunk in parallel (latency), never summed (which would cap the bandwidth).
        """
        loop = asyncio.get_running_loop()
        line: asyncio.Queue[tuple[float, bytes | BaseException]] = asyncio.Queue(_DELAY_LINE_CHUNKS)

        async def receive() -> None:
            try:
                async for data in self._read(reader, direction):
                    self._held[direction] += len(data)
                    await line.put((loop.time() + self.rtt_seconds / 2, data))
            except (ConnectionError, OSError, ssl.SSLError) as error:
                await line.put((loop.time() + self.rtt_seconds / 2, error))

        receiver = asyncio.create_task(receive())
        try:
            while True:
                due, item = await line.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if isinstance(item, BaseException):
                    raise item
                self._held[direction] -= len(item)
                yield item
                if not item:
                    return
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver


def start(target_host: str, target_port: int, *, rtt_seconds: float = 0.0) -> FaultProxy:
    """A started proxy to ``target_host:target_port`` adding ``rtt_seconds`` of round trip
    (connect to ``.port``; ``.stop()`` when done; ``.bytes_up`` / ``.bytes_down`` count)."""
    return FaultProxy(target_host, target_port, rtt_seconds=rtt_seconds).start()


def _directions(which: Which) -> tuple[Direction, ...]:
    return (UP, DOWN) if which == "both" else (which,)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.fault_proxy HOST PORT [--rtt-seconds S]``: print the port, then
    forward until stdin reaches EOF (the parent closed it or died) or SIGTERM."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.support.fault_proxy")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--rtt-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    proxy = start(args.host, args.port, rtt_seconds=args.rtt_seconds)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(proxy.port, flush=True)
    try:
        sys.stdin.buffer.read()
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()


@contextlib.contextmanager
def proxied(info: SftpServerInfo, known_hosts: Path) -> Iterator[tuple[SftpServerInfo, FaultProxy]]:
    """``info``'s server reached through a new :class:`FaultProxy`: the same server at the
    proxy's port (``known_hosts``, written here, names its key there), and the proxy, to
    throttle, delay or cut."""
    with FaultProxy(info.host, info.port) as proxy:
        lines = info.known_hosts.read_text()
        known_hosts.write_text(lines.replace(f"]:{info.port} ", f"]:{proxy.port} "))
        yield dataclasses.replace(info, port=proxy.port, known_hosts=known_hosts), proxy
