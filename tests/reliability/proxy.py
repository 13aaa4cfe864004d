"""A fault-injecting TCP proxy on loopback, run in a thread with its own event loop.

It forwards every accepted connection to a target and can, while running:

* cut the connection after N bytes in one direction (once, or every time: ``repeat=True``),
* stall a direction (stop forwarding without closing) for T seconds or until released,
* throttle a direction to B bytes/s,
* refuse new connections (a closed port) or reset the live ones,
* retarget new connections to another server (a man in the middle),
* terminate TLS with a given certificate (an https endpoint in front of a plain server).

It counts bytes each way. The thread owns the loop, so the same proxy serves an in-process
async test (its loop is never blocked by the proxy) and a CLI subprocess alike. Setters are
thread-safe and take effect before they return.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, TypeVar

UP: Literal["up"] = "up"  # client → server
DOWN: Literal["down"] = "down"  # server → client
Direction = Literal["up", "down"]
Which = Literal["up", "down", "both"]
T = TypeVar("T")

_CHUNK = 64 * 1024


@dataclass
class _Fault:
    """The faults armed on one direction."""

    cut_after: int | None = None  # bytes left before the next cut
    cut_every: int | None = None  # re-arm value after a cut (repeat mode)
    cuts: int = 0
    throttle_bytes_per_second: int | None = None


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
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._tls = tls
        self._faults = {UP: _Fault(), DOWN: _Fault()}
        self._bytes = {UP: 0, DOWN: 0}
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
        try:
            while True:
                rate = fault[direction].throttle_bytes_per_second
                size = max(1, min(_CHUNK, rate // 20)) if rate else _CHUNK
                data = await reader.read(size)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                await self._flowing[direction].wait()
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


def _directions(which: Which) -> tuple[Direction, ...]:
    return (UP, DOWN) if which == "both" else (which,)
