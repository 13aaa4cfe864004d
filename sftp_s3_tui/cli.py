"""Command line: ``sftp-s3-tui`` (the TUI), ``sftp-s3-tui copy …`` (headless), ``--demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dotenv import load_dotenv

from .engine.config import (
    ConflictPolicy,
    HostKeyPolicy,
    S3Endpoint,
    SftpEndpoint,
    TransferOptions,
)
from .engine.errors import TransferError, UsageError
from .engine.locations import S3Location, SftpLocation, parse_s3_url, parse_sftp_url, parse_size
from .redaction import install_log_redaction, register_secret

log = logging.getLogger("sftp_s3_tui")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (its default prints usage too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"sftp-s3-tui: error: {message}\n(see sftp-s3-tui --help)\n")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    sftp = parser.add_argument_group("SFTP")
    sftp.add_argument("--user", help="SFTP user (default: from the URL, SFTP_USER or $USER)")
    sftp.add_argument("--port", type=int, help="SFTP port (default: from the URL, SFTP_PORT, 22)")
    sftp.add_argument(
        "--identity",
        "-i",
        action="append",
        default=[],
        metavar="FILE",
        help="private key file (repeatable); the password comes from SFTP_PASSWORD",
    )
    sftp.add_argument("--known-hosts", metavar="FILE", help="known_hosts file (~/.ssh/known_hosts)")
    sftp.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust and record an unknown host key (a changed key is still refused)",
    )
    sftp.add_argument("--no-agent", action="store_true", help="do not use ssh-agent")
    s3 = parser.add_argument_group("S3")
    s3.add_argument("--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL)")
    s3.add_argument("--region", help="AWS region (default: AWS_REGION / profile)")
    s3.add_argument("--aws-profile", help="AWS profile name (default: AWS_PROFILE)")
    s3.add_argument("--path-style", action="store_true", help="path-style bucket addressing")
    s3.add_argument(
        "--no-verify-tls",
        action="store_true",
        help="do not verify the endpoint's TLS certificate (unsafe)",
    )
    parser.add_argument("--profile", help="a saved connection profile to start from")
    parser.add_argument(
        "--push-gateway",
        metavar="URL",
        help="push metrics to this Prometheus push gateway (PUSH_GATEWAY)",
    )
    parser.add_argument("--metrics-port", type=int, metavar="N", help="serve /metrics on port N")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sftp-s3-tui",
        description="Stream files from SFTP straight into S3. Without a command: the TUI.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the app against embedded SFTP and S3 servers it starts itself",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_connection_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    copy = commands.add_parser(
        "copy",
        help="copy files from SFTP to S3 without the TUI",
        description="Copy SOURCE… (sftp://[user@]host[:port]/path, a folder or a glob) to DEST "
        "(s3://bucket/key, or s3://bucket/prefix/ with a trailing slash).",
    )
    copy.add_argument("paths", nargs="+", metavar="SOURCE… DEST")
    _add_connection_options(copy)
    tuning = copy.add_argument_group("transfer")
    tuning.add_argument("--part-size", type=_size, metavar="SIZE", help="part size (8MiB)")
    tuning.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="parts in flight per file (8): memory ≈ part size × N",
    )
    tuning.add_argument(
        "--memory", type=_size, metavar="SIZE", help="memory budget for all part buffers (512MiB)"
    )
    tuning.add_argument(
        "--sftp-concurrency", type=int, metavar="N", help="parallel SFTP reads (16)"
    )
    tuning.add_argument("--s3-concurrency", type=int, metavar="N", help="parallel S3 uploads (32)")
    tuning.add_argument("--files", type=int, metavar="N", help="files in flight (32)")
    tuning.add_argument(
        "--conflict",
        choices=[p.value for p in ConflictPolicy],
        help="when the key exists (overwrite)",
    )
    tuning.add_argument(
        "--no-resume", action="store_true", help="do not journal (no crash-safe resume)"
    )
    copy.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    copy.add_argument("--quiet", "-q", action="store_true", help="no progress display")

    cleanup = commands.add_parser(
        "cleanup",
        help="list (and abort) stale multipart uploads",
        description="List multipart uploads in BUCKET older than --older-than; abort them with "
        "--abort.",
    )
    cleanup.add_argument("bucket", metavar="s3://BUCKET[/PREFIX]")
    cleanup.add_argument("--older-than", default="24h", help="age, e.g. 30m, 24h, 7d (24h)")
    cleanup.add_argument("--abort", action="store_true", help="abort them (default: only list)")
    _add_connection_options(cleanup)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def sftp_endpoint_for(
    location: SftpLocation, args: argparse.Namespace, base: SftpEndpoint | None = None
) -> SftpEndpoint:
    """The SFTP endpoint for a source: URL first, then options, then the seed's variables.

    With a profile (``base``) for the same host, the profile fills what the URL and the
    options leave open.
    """
    if base is not None and base.host == location.host:
        changes: dict[str, object] = {}
        if location.port or args.port:
            changes["port"] = location.port or args.port
        if location.username or args.user:
            changes["username"] = location.username or args.user
        if args.identity:
            changes["identity_files"] = tuple(args.identity)
        if args.known_hosts:
            changes["known_hosts"] = args.known_hosts
        if args.accept_new_host_key:
            changes["host_key_policy"] = HostKeyPolicy.ACCEPT_NEW
        if _env("SFTP_PASSWORD") and not base.password:
            changes["password"] = _env("SFTP_PASSWORD")
        return replace(base, **changes)  # type: ignore[arg-type]
    port = location.port or args.port or int(_env("SFTP_PORT") or 22)
    username = location.username or args.user or _env("SFTP_USER") or _env("USER")
    return SftpEndpoint(
        host=location.host,
        port=port,
        username=username,
        password=_env("SFTP_PASSWORD"),
        identity_files=tuple(args.identity),
        use_agent=not args.no_agent,
        known_hosts=args.known_hosts,
        host_key_policy=HostKeyPolicy.ACCEPT_NEW
        if args.accept_new_host_key
        else HostKeyPolicy.STRICT,
    )


def s3_endpoint_for(args: argparse.Namespace, base: S3Endpoint | None = None) -> S3Endpoint:
    """The S3 endpoint from options (over a profile's); unset ones fall to the AWS chain."""
    if base is not None:
        changes: dict[str, object] = {}
        for arg, name in (
            ("endpoint_url", "endpoint_url"),
            ("region", "region"),
            ("aws_profile", "profile"),
        ):
            if getattr(args, arg):
                changes[name] = getattr(args, arg)
        if args.path_style:
            changes["path_style"] = True
        if args.no_verify_tls:
            changes["verify_tls"] = False
        return replace(base, **changes)  # type: ignore[arg-type]
    endpoint_url = args.endpoint_url or _env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL")
    return S3Endpoint(
        endpoint_url=endpoint_url,
        region=args.region or _env("AWS_REGION") or _env("AWS_DEFAULT_REGION"),
        profile=args.aws_profile,
        path_style=args.path_style,
        verify_tls=not args.no_verify_tls,
    )


def options_for(args: argparse.Namespace, base: TransferOptions | None = None) -> TransferOptions:
    options = base or TransferOptions()
    changes: dict[str, object] = {}
    for arg, name in (
        ("part_size", "part_size"),
        ("concurrency", "parts_in_flight"),
        ("memory", "memory_budget"),
        ("sftp_concurrency", "sftp_concurrency"),
        ("s3_concurrency", "s3_concurrency"),
        ("files", "files_in_flight"),
    ):
        value = getattr(args, arg, None)
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{arg.replace('_', '-')} must be positive", "")
            changes[name] = value
    if getattr(args, "conflict", None):
        changes["conflict"] = ConflictPolicy(args.conflict)
    if getattr(args, "sha256_metadata", False):
        changes["sha256_metadata"] = True
    options = replace(options, **changes)  # type: ignore[arg-type]
    if options.part_size * min(options.parts_in_flight, 2) > options.memory_budget:
        raise UsageError(
            "The memory budget is smaller than two parts", "raise --memory or lower --part-size"
        )
    return options


def split_copy_paths(
    paths: Sequence[str],
    *,
    default_host: str | None = None,
    default_dest: S3Location | None = None,
) -> tuple[list[SftpLocation], S3Location]:
    """SOURCE… DEST; bare /paths use SFTP_HOST (or the profile's host) and DEST may be
    omitted when S3_BUCKET (or the profile's bucket) names one."""
    paths = list(paths)
    bucket = _env("S3_BUCKET")
    if paths[-1].startswith("s3://"):
        dest = parse_s3_url(paths.pop())
    elif default_dest is not None:
        dest = default_dest
    elif bucket:
        dest = parse_s3_url(f"s3://{bucket}/")
    else:
        raise UsageError("No destination", "end with s3://bucket/key or s3://bucket/prefix/")
    if not paths:
        raise UsageError("No source", "give at least one sftp://host/path")
    host = default_host or _env("SFTP_HOST")
    sources = [parse_sftp_url(p, default_host=host) for p in paths]
    return sources, dest


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("asyncssh", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    load_dotenv(Path.cwd() / ".env", override=False)
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    install_log_redaction()
    register_secret(_env("SFTP_PASSWORD"))
    register_secret(_env("AWS_SECRET_ACCESS_KEY"))
    register_secret(_env("AWS_SESSION_TOKEN"))
    try:
        if args.command == "copy":
            from .headless import run_copy

            return _run(run_copy(args))
        if args.command == "cleanup":
            from .headless import run_cleanup

            return _run(run_cleanup(args))
        from .ui.app import run_app

        return run_app(args)
    except UsageError as exc:
        print(f"sftp-s3-tui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TransferError as exc:
        print(f"sftp-s3-tui: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run(coro: object) -> int:
    """Run a headless command; SIGTERM cancels like Ctrl-C (uploads are aborted)."""

    async def guarded() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await coro  # type: ignore[misc]

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("sftp-s3-tui: interrupted; unfinished uploads were aborted", file=sys.stderr)
        return EXIT_INTERRUPTED


def json_line(result: object) -> str:
    return json.dumps(result, ensure_ascii=False)


__all__ = ["EXIT_FAILED", "EXIT_OK", "build_parser", "main"]
