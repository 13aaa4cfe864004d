"""What the floor clients (:mod:`.crt_copy`, :mod:`.crt_deliver`) share: awscrt's S3 client
with the environment's keys, a CRT request's end as a future on the loop, the SFTP login,
and the command line's S3 arguments and timing line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import asyncssh
from awscrt import auth, s3
from awscrt import io as crt_io

from .common import sftp_connect_options


def add_crt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--part-size", type=int, default=8 * 1024 * 1024)


def crt_client(args: argparse.Namespace) -> tuple[s3.S3Client, str]:
    """awscrt's S3 client for ``--endpoint-url`` (static keys from the environment, plain
    http without TLS) and the Host header its requests carry."""
    group = crt_io.EventLoopGroup()
    bootstrap = crt_io.ClientBootstrap(group, crt_io.DefaultHostResolver(group))
    credentials = auth.AwsCredentialsProvider.new_static(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    where = urlsplit(args.endpoint_url)
    tls = s3.S3RequestTlsMode.DISABLED if where.scheme == "http" else s3.S3RequestTlsMode.ENABLED
    client = s3.S3Client(
        bootstrap=bootstrap,
        region=args.region,
        credential_provider=credentials,
        tls_mode=tls,
        part_size=args.part_size,
        multipart_upload_threshold=args.part_size,
    )
    return client, where.netloc


def crt_done(
    loop: asyncio.AbstractEventLoop, what: str
) -> tuple[asyncio.Future[None], Callable[..., None]]:
    """A future settled on ``loop`` by the ``on_done`` callback returned with it (which the
    CRT calls from its own thread): an error, or an HTTP status of 300 and above, fails it."""
    done: asyncio.Future[None] = loop.create_future()

    def on_done(error: BaseException | None = None, status_code: int = 0, **_: Any) -> None:
        def settle() -> None:
            if error is not None:
                done.set_exception(error)
            elif status_code >= 300:
                done.set_exception(OSError(f"{what}: HTTP {status_code}"))
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(settle)

    return done, on_done


@contextlib.asynccontextmanager
async def sftp_session(args: argparse.Namespace) -> AsyncIterator[asyncssh.SFTPClient]:
    """One SSH login and its SFTP channel."""
    async with (
        asyncssh.connect(**sftp_connect_options(args)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        yield sftp


def run_timed(work: Coroutine[Any, Any, int], unit: str) -> None:
    """Run ``work`` and say how many ``unit`` it moved in how long (stderr)."""
    started = time.perf_counter()
    total = asyncio.run(work)
    seconds = time.perf_counter() - started
    print(f"moved {total} {unit} in {seconds:.2f} s", file=sys.stderr)
