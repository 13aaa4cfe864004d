"""Raw SFTP read limit: asyncssh pipelined reads of one file into memory, discarded.

With ``--connections N`` the file is cut into N contiguous ranges, each read over its own SSH
connection (logins staggered by ``--stagger-ms``); ``--window`` sets the SSH receive window
of every channel. Together with 255 KiB blocks and many requests in flight this is the best
the link allows an asyncssh client: the SFTP side's ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import asyncssh

from .common import add_sftp_arguments, sftp_connect_options

STARTED = time.perf_counter()


async def read_range(
    args: argparse.Namespace, conn: asyncssh.SSHClientConnection, offset: int, length: int
) -> int:
    """Read ``length`` bytes at ``offset`` over ``conn`` (its own SFTP channel)."""
    total = 0
    async with (
        conn.start_sftp_client() as sftp,
        sftp.open(args.path, "rb", block_size=args.block_size, max_requests=args.requests) as f,
    ):
        began = time.perf_counter()
        async for _offset, data in await f.read_parallel(length, offset):
            total += len(data)
        if args.verbose:
            print(
                f"range {offset}: {total} B in {time.perf_counter() - began:.2f} s "
                f"from {began - STARTED:.2f} s",
                file=sys.stderr,
            )
    return total


async def read_all(args: argparse.Namespace) -> int:
    """Log in N times (staggered, at once), stat over the first, read one range over each."""
    options = sftp_connect_options(args)
    if args.window:
        options["window"] = args.window
    if args.max_pktsize:
        options["max_pktsize"] = args.max_pktsize

    async def login(index: int) -> asyncssh.SSHClientConnection:
        await asyncio.sleep(index * args.stagger_ms / 1000)
        return await asyncssh.connect(**options)

    conns = await asyncio.gather(*(login(i) for i in range(max(args.connections, 1))))
    try:
        async with conns[0].start_sftp_client() as sftp:
            size = (await sftp.stat(args.path)).size or 0
        step = max(-(-size // len(conns)), 1)
        ranges = [(start, min(step, size - start)) for start in range(0, size, step)]
        totals = await asyncio.gather(
            *(read_range(args, conn, *where) for conn, where in zip(conns, ranges, strict=False))
        )
    finally:
        for conn in conns:
            conn.close()
    return sum(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    parser.add_argument("--path", required=True)
    parser.add_argument("--block-size", type=int, default=-1, help="-1: the server's limit")
    parser.add_argument("--requests", type=int, default=-1, help="reads in flight per file")
    parser.add_argument("--window", type=int, default=0, help="SSH receive window (bytes)")
    parser.add_argument("--max-pktsize", type=int, default=0, help="SSH max packet (bytes)")
    parser.add_argument("--connections", type=int, default=1, help="SSH connections")
    parser.add_argument("--stagger-ms", type=float, default=20.0, help="between logins")
    parser.add_argument("--verbose", action="store_true", help="time each range")
    args = parser.parse_args()
    started = time.perf_counter()
    total = asyncio.run(read_all(args))
    seconds = time.perf_counter() - started
    print(total)
    print(f"read {total} bytes in {seconds:.2f} s (logins included)", file=sys.stderr)


if __name__ == "__main__":
    main()
