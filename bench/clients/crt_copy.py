"""The given stack's best SFTP → S3 copy: asyncssh reads straight into awscrt's S3 client.

No botocore, no aiohttp, no product code on the path: one file read with pipelined asyncssh
reads (``--block-size``, 128 in flight) and handed in order to one CRT ``PUT_OBJECT`` meta
request (multipart above ``--part-size``, CRC64NVME of every part, C SigV4 with the keys from
the environment). Its whole-process time is the floor a Python client built on the given
stack starts from at a size where start-up matters (issue 26's 64 MiB row); it keeps no
journal, verifies nothing beyond the CRT's checksums and handles no fault, so it is a limit,
not a client a user would pick.

With ``--folder`` it copies every file of a folder instead (issue 29's per-file row): one
readdir, then per file an open, one read of the listed size and a close, each file's bytes
in one CRT ``PUT_OBJECT`` (CRC64NVME), ``--files-in-flight`` at once. Its CPU per file is
the given stack's floor for a small file: asyncssh's three requests and the CRT's request.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import threading

from awscrt import http, s3

from .common import add_sftp_arguments
from .crt_common import add_crt_arguments, crt_client, crt_done, run_timed, sftp_session


class _Pipe(io.RawIOBase):
    """Bytes from the event loop to the CRT's reading thread, in order; ``readinto`` blocks
    until there are some (or the end)."""

    def __init__(self, data: bytes | None = None) -> None:
        super().__init__()
        self._chunks: list[memoryview] = [memoryview(data)] if data is not None else []
        self._ended = data is not None
        self._ready = threading.Condition()

    def put(self, data: bytes) -> None:
        with self._ready:
            self._chunks.append(memoryview(data))
            self._ready.notify()

    def end(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify()

    def readable(self) -> bool:
        return True

    def readinto(self, into: memoryview) -> int:  # type: ignore[override]
        with self._ready:
            while not self._chunks and not self._ended:
                self._ready.wait()
            if not self._chunks:
                return 0
            head = self._chunks[0]
            n = min(len(into), len(head))
            into[:n] = head[:n]
            if n == len(head):
                self._chunks.pop(0)
            else:
                self._chunks[0] = head[n:]
            return n


def _put(client: s3.S3Client, host: str, path: str, body: _Pipe, size: int) -> asyncio.Future[None]:
    """One PUT_OBJECT of ``size`` bytes from ``body`` at ``path``; settled on the loop."""
    done, on_done = crt_done(asyncio.get_running_loop(), f"PUT {path}")
    request = http.HttpRequest(
        "PUT",
        path,
        headers=http.HttpHeaders([("Host", host), ("Content-Length", str(size))]),
        body_stream=body,
    )
    client.make_request(
        type=s3.S3RequestType.PUT_OBJECT,
        request=request,
        checksum_config=s3.S3ChecksumConfig(
            algorithm=s3.S3ChecksumAlgorithm.CRC64NVME, location=s3.S3ChecksumLocation.HEADER
        ),
        on_done=on_done,
    )
    return done


async def copy_folder(args: argparse.Namespace) -> int:
    """List the folder once, then copy each file (open, read, close, PUT) N at a time."""
    client, host = crt_client(args)
    async with sftp_session(args) as sftp:
        names = [
            (str(entry.filename), entry.attrs.size or 0)
            for entry in await sftp.readdir(args.path)
            if entry.filename not in (".", "..")
        ]
        slots = asyncio.Semaphore(args.files_in_flight)

        async def one(name: str, size: int) -> None:
            async with slots:
                async with sftp.open(f"{args.path}/{name}", "rb") as f:
                    data = await f.read(size)
                assert isinstance(data, bytes)  # opened "rb"
                path = f"/{args.bucket}/{args.key}/{name}"
                await _put(client, host, path, _Pipe(data), len(data))

        await asyncio.gather(*(one(name, size) for name, size in names))
    return len(names)


async def copy(args: argparse.Namespace) -> int:
    """Log in, stat, stream the file's bytes in order into one PUT_OBJECT; its size."""
    client, host = crt_client(args)
    async with sftp_session(args) as sftp:
        size = (await sftp.stat(args.path)).size or 0
        pipe = _Pipe()
        done = _put(client, host, f"/{args.bucket}/{args.key}", pipe, size)
        waiting: dict[int, bytes] = {}
        at = 0
        async with sftp.open(args.path, "rb", block_size=args.block_size, max_requests=128) as f:
            async for offset, data in await f.read_parallel(size, 0):
                waiting[offset] = data
                while at in waiting:
                    chunk = waiting.pop(at)
                    pipe.put(chunk)
                    at += len(chunk)
        pipe.end()
        await done
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    add_crt_arguments(parser)
    parser.add_argument("--path", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--block-size", type=int, default=256 * 1024, help="SFTP read size")
    parser.add_argument("--folder", action="store_true", help="--path is a folder of files")
    parser.add_argument("--files-in-flight", type=int, default=64)
    args = parser.parse_args()
    if args.folder:
        run_timed(copy_folder(args), "files")
    else:
        run_timed(copy(args), "bytes")


if __name__ == "__main__":
    main()
