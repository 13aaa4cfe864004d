"""The product's engine on one source with explicit TransferOptions (for the knob sweep).

Same engine as ``sftp-s3-tui copy --no-resume``, minus the CLI, so knobs the CLI does not
expose (SFTP block size and requests, reads per file) can be tried.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from sftp_s3_tui.demo import DEMO_REGION
from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.sftp import connect as sftp_connect
from sftp_s3_tui.engine.transfer import file as pipeline
from sftp_s3_tui.engine.transfer import finish
from sftp_s3_tui.engine.transfer.queue import TransferQueue

from .common import add_sftp_arguments


async def run(args: argparse.Namespace) -> None:
    sftp = SftpEndpoint(
        host=args.host,
        port=args.port,
        username=args.user,
        identity_files=(args.identity,),
        known_hosts=args.known_hosts,
        use_agent=False,
    )
    s3 = S3Endpoint(
        endpoint_url=args.endpoint_url,
        region=DEMO_REGION,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        path_style=True,
    )
    options = TransferOptions(
        part_size=args.part_size,
        parts_in_flight=args.parts_in_flight,
        sftp_block_size=args.sftp_block_size,
        sftp_requests=args.sftp_requests,
        sftp_concurrency=args.sftp_concurrency,
        s3_concurrency=args.s3_concurrency,
        files_in_flight=args.files_in_flight,
    )
    async with TransferQueue(s3, options) as queue:
        jobs = await queue.expand(sftp, args.path, parse_s3_url(args.dest))
        results = await queue.run(jobs)
    bad = [r for r in results if r.status is not TransferState.DONE]
    if bad:
        raise SystemExit(f"failed: {bad[0].message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    parser.add_argument("--path", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--part-size", type=int, default=8 << 20)
    parser.add_argument("--parts-in-flight", type=int, default=8)
    parser.add_argument("--sftp-block-size", type=int, default=0)
    parser.add_argument("--sftp-requests", type=int, default=0)
    parser.add_argument("--reads-per-file", type=int, default=pipeline.READS_PER_FILE)
    defaults = TransferOptions()
    parser.add_argument("--sftp-concurrency", type=int, default=defaults.sftp_concurrency)
    parser.add_argument("--s3-concurrency", type=int, default=defaults.s3_concurrency)
    parser.add_argument("--files-in-flight", type=int, default=defaults.files_in_flight)
    parser.add_argument(
        "--no-sha256-copy",
        action="store_true",
        help="what-if: skip the CopyObject that stores x-amz-meta-sha256 (and the HEAD verify)",
    )
    args = parser.parse_args()
    pipeline.READS_PER_FILE = args.reads_per_file
    if args.cipher:
        sftp_connect.encryption_algs = lambda: [args.cipher]
    if args.no_sha256_copy:

        async def skip(*_args: object) -> None:
            return None

        finish.Finish.store_sha256 = skip  # type: ignore[method-assign,assignment]
        finish.Finish.verify = skip  # type: ignore[method-assign,assignment]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
