"""The given stack's best S3 → SFTP delivery: awscrt's GETs written straight by asyncssh.

The mirror of :mod:`bench.clients.crt_copy` for issue 28: no botocore, no aiohttp, no
product code. ``--key`` delivers one object: one CRT ``GET_OBJECT`` meta request (ranged
parts in parallel, C SigV4), each body chunk written at its offset as it arrives
(``SFTPClientFile.write``, many in flight) into ``TARGET.partial``, then
``posix-rename@openssh.com`` onto ``TARGET``. ``--prefix`` delivers every object under it
into the folder ``TARGET``: a ListObjectsV2 through the CRT, then per object a GET, an
open, one write, a close and a rename, ``--files-in-flight`` at once. It verifies nothing
beyond the CRT's own checks, keeps no record and handles no fault: a limit, not a client.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from awscrt import http, s3

from .common import add_sftp_arguments
from .crt_common import add_crt_arguments, crt_client, crt_done, run_timed, sftp_session

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _get(
    client: s3.S3Client,
    host: str,
    path: str,
    on_chunk: Callable[[bytes, int], None],
    kind: s3.S3RequestType = s3.S3RequestType.GET_OBJECT,
) -> asyncio.Future[None]:
    """One GET (``on_chunk(data, offset)`` from the CRT's threads); a future on the loop."""
    done, on_done = crt_done(asyncio.get_running_loop(), f"GET {path}")
    request = http.HttpRequest("GET", path, headers=http.HttpHeaders([("Host", host)]))
    client.make_request(
        type=kind,
        request=request,
        operation_name="ListObjectsV2" if kind == s3.S3RequestType.DEFAULT else None,
        on_body=lambda chunk, offset, **_: on_chunk(bytes(chunk), offset),
        on_done=on_done,
    )
    return done


async def _body(client: s3.S3Client, host: str, path: str) -> bytes:
    """The whole answer of one ListObjectsV2 request (a DEFAULT meta request)."""
    chunks: list[bytes] = []
    await _get(
        client, host, path, lambda data, _offset: chunks.append(data), s3.S3RequestType.DEFAULT
    )
    return b"".join(chunks)


async def _list(client: s3.S3Client, host: str, args: argparse.Namespace) -> list[str]:
    """Every key under ``--prefix`` (ListObjectsV2 pages through the CRT)."""
    keys: list[str] = []
    token = ""
    while True:
        query = f"list-type=2&prefix={quote(args.prefix, safe='')}"
        if token:
            query += f"&continuation-token={quote(token, safe='')}"
        page = ElementTree.fromstring(await _body(client, host, f"/{args.bucket}?{query}"))
        keys += [node.findtext(f"{_NS}Key") or "" for node in page.iter(f"{_NS}Contents")]
        token = page.findtext(f"{_NS}NextContinuationToken") or ""
        if not token:
            return keys


async def deliver_folder(args: argparse.Namespace) -> int:
    """List the prefix, then deliver each object (GET, open, write, close, rename)."""
    client, host = crt_client(args)
    async with sftp_session(args) as sftp:
        keys = await _list(client, host, args)
        await sftp.makedirs(args.target, exist_ok=True)
        slots = asyncio.Semaphore(args.files_in_flight)

        async def one(key: str) -> None:
            async with slots:
                parts: list[bytes] = []
                path = f"/{args.bucket}/{quote(key)}"
                await _get(client, host, path, lambda data, _offset: parts.append(data))
                final = f"{args.target}/{key.rsplit('/', 1)[-1]}"
                async with sftp.open(final + ".partial", "wb") as f:
                    await f.write(b"".join(parts), 0)
                await sftp.posix_rename(final + ".partial", final)

        await asyncio.gather(*(one(key) for key in keys))
    return len(keys)


async def deliver(args: argparse.Namespace) -> int:
    """Stream one object's body chunks into pipelined writes at their offsets."""
    client, host = crt_client(args)
    loop = asyncio.get_running_loop()
    async with sftp_session(args) as sftp:
        sizes: list[int] = []
        await sftp.makedirs(args.target.rsplit("/", 1)[0], exist_ok=True)
        async with sftp.open(args.target + ".partial", "wb") as f:
            writes: list[asyncio.Future[Any]] = []

            def on_chunk(data: bytes, offset: int) -> None:
                def write() -> None:
                    writes.append(asyncio.ensure_future(f.write(data, offset)))
                    sizes.append(len(data))

                loop.call_soon_threadsafe(write)

            # the CRT calls on_done after the last on_body: its settle() comes after them
            await _get(client, host, f"/{args.bucket}/{quote(args.key)}", on_chunk)
            await asyncio.gather(*writes)
        await sftp.posix_rename(args.target + ".partial", args.target)
    return sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    add_crt_arguments(parser)
    parser.add_argument("--key", default="", help="one object")
    parser.add_argument("--prefix", default="", help="every object under it")
    parser.add_argument("--target", required=True, help="the file (--key) or folder (--prefix)")
    parser.add_argument("--files-in-flight", type=int, default=16)
    args = parser.parse_args()
    if args.key:
        run_timed(deliver(args), "bytes")
    else:
        run_timed(deliver_folder(args), "objects")


if __name__ == "__main__":
    main()
