"""What the baseline clients share: SFTP login options and the S3 client configuration."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from sftp_s3_tui.engine.sftp.connect import encryption_algs

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig


def add_sftp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("--cipher", default="", help="force one SSH cipher")


def sftp_connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """``asyncssh.connect`` keywords: key login, the test known_hosts, no agent or ~/.ssh."""
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "username": args.user,
        "client_keys": [args.identity],
        "known_hosts": args.known_hosts,
        "agent_path": None,
        "config": None,
    }
    # The product's cipher preference (AES-GCM first), unless one is forced.
    options["encryption_algs"] = [args.cipher] if args.cipher else encryption_algs()
    return options


def add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--concurrency", type=int, default=8)


def s3_config(connections: int) -> AioConfig:
    """Like the product's client: path style, no botocore-computed checksums."""
    from aiobotocore.config import AioConfig  # here: the SFTP-only clients never pay its import

    return AioConfig(
        max_pool_connections=connections,
        s3={"addressing_style": "path"},
        retries={"mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
