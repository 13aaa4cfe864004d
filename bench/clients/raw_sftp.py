"""Raw SFTP read limit: asyncssh pipelined reads of one file into memory, discarded."""

from __future__ import annotations

import argparse
import asyncio

import asyncssh

from .common import add_sftp_arguments, sftp_connect_options


async def read_all(args: argparse.Namespace) -> int:
    total = 0
    async with (
        asyncssh.connect(**sftp_connect_options(args)) as conn,
        conn.start_sftp_client() as sftp,
        sftp.open(args.path, "rb", block_size=args.block_size, max_requests=args.requests) as f,
    ):
        size = (await f.stat()).size or 0
        reader = await f.read_parallel(size, 0)
        async for _offset, data in reader:
            total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    parser.add_argument("--path", required=True)
    parser.add_argument("--block-size", type=int, default=-1)
    parser.add_argument("--requests", type=int, default=-1)
    args = parser.parse_args()
    print(asyncio.run(read_all(args)))


if __name__ == "__main__":
    main()
