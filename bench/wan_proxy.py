"""A far SFTP server on loopback: a TCP delay line in its own process.

``python -m bench.wan_proxy --target-port P --rtt-ms 50`` (or :func:`start` from Python).

Each chunk read from one side is forwarded to the other RTT/2 after it arrived, per direction,
in order, with no bandwidth cap and no serialisation of the delay (a delay line, not a sleep per
chunk). The SSH flow-control window and the requests in flight are then what limits a client,
as on a real long link. It runs as its own process so its CPU is not counted as the client's
(like sshd's), and prints its port on the first line of stdout.

The machine's kernel has no ``sch_netem`` (``tc qdisc … netem`` answers "unknown qdisc"), so a
network namespace with netem is not an option here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Read size per chunk; loopback reads return at most what is queued.
CHUNK_BYTES = 256 * 1024
#: Bytes in flight per direction before the reader waits (a "link" far larger than any window).
LINE_BYTES = 256 * 1024 * 1024


async def _delay_line(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_seconds: float
) -> None:
    """Forward ``reader`` → ``writer``, every chunk ``delay_seconds`` after it was read."""
    loop = asyncio.get_running_loop()
    line: collections.deque[tuple[float, bytes]] = collections.deque()
    queued = asyncio.Event()
    room = asyncio.Event()
    room.set()
    in_line = 0
    done = False

    async def take() -> None:
        nonlocal in_line, done
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                line.append((loop.time() + delay_seconds, chunk))
                in_line += len(chunk)
                queued.set()
                if in_line > LINE_BYTES:
                    room.clear()
                    await room.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            done = True
            queued.set()

    taker = asyncio.create_task(take())
    try:
        while True:
            if not line:
                if done:
                    break
                queued.clear()
                await queued.wait()
                continue
            due, chunk = line[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            line.popleft()
            in_line -= len(chunk)
            if in_line <= LINE_BYTES:
                room.set()
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        taker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await taker


async def serve(target_host: str, target_port: int, rtt_seconds: float) -> None:
    """Accept on a free loopback port, print it, forward every connection through two lines."""

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_w.close()
            return
        half = rtt_seconds / 2
        try:
            await asyncio.gather(
                _delay_line(client_r, server_w, half), _delay_line(server_r, client_w, half)
            )
        except asyncio.CancelledError:
            pass  # the proxy is stopping: end quietly (no traceback from the stream callback)
        finally:
            for writer in (client_w, server_w):
                writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


@dataclass
class LatencyProxy:
    """A running ``bench.wan_proxy`` process in front of one server."""

    port: int
    rtt_seconds: float
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(target_host: str, target_port: int, rtt_seconds: float) -> LatencyProxy:
    """Start a delay line in its own process in front of ``target_host:target_port``."""
    from sftp_s3_tui.demo import die_with_parent

    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.wan_proxy",
            "--target-host",
            target_host,
            "--target-port",
            str(target_port),
            "--rtt-ms",
            f"{rtt_seconds * 1000:g}",
        ],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=die_with_parent,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"the latency proxy did not start (said {line!r})")
    return LatencyProxy(int(line), rtt_seconds, process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.target_host, args.target_port, args.rtt_ms / 1000))


if __name__ == "__main__":
    main()
