"""Download to a temp file, then upload it: what Airflow's SFTPToS3Operator does by default.

The download is asyncssh's ``get`` (pipelined, like paramiko's prefetching ``get``); the upload
is boto3's ``upload_file`` with its default transfer configuration, as Airflow's S3Hook uses.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

import asyncssh
import boto3
from botocore.config import Config

from .common import add_sftp_arguments, sftp_connect_options


async def download(args: argparse.Namespace, local: str) -> None:
    async with (
        asyncssh.connect(**sftp_connect_options(args)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        await sftp.get(args.path, local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sftp_arguments(parser)
    parser.add_argument("--path", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile(prefix="bench-spool-") as spool:
        asyncio.run(download(args, spool.name))
        s3 = boto3.client(
            "s3", endpoint_url=args.endpoint_url, config=Config(s3={"addressing_style": "path"})
        )
        s3.upload_file(spool.name, args.bucket, args.key)


if __name__ == "__main__":
    main()
