"""Bare concurrent PutObject loop from memory: the small-file limit of the S3 server."""

from __future__ import annotations

import argparse
import asyncio
import os

import aioboto3

from .common import add_s3_arguments, s3_config


async def put_all(args: argparse.Namespace) -> None:
    payload = os.urandom(args.size)
    slots = asyncio.Semaphore(args.concurrency)
    session = aioboto3.Session()
    async with session.client(
        "s3", endpoint_url=args.endpoint_url, config=s3_config(args.concurrency)
    ) as s3:

        async def put(index: int) -> None:
            async with slots:
                await s3.put_object(
                    Bucket=args.bucket, Key=f"{args.prefix}f{index:05d}.bin", Body=payload
                )

        await asyncio.gather(*(put(i) for i in range(args.count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_s3_arguments(parser)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64 << 10)
    asyncio.run(put_all(parser.parse_args()))


if __name__ == "__main__":
    main()
