"""The command line's grammar: every flag declared once, and the parsed flags as requests.

Only what building the parser needs is imported at module level: ``--help`` and a usage
error answer without loading requests, profiles or asyncio (:mod:`sftp_s3_tui.requests` is
imported inside the functions that build requests).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..engine.config import ChecksumChoice, ConflictPolicy, TransferOptions
from ..engine.errors import UsageError
from ..engine.units import parse_size
from ..exit_codes import CLEANUP_EXIT_CODES_HELP, EXIT_CODES_HELP, EXIT_USAGE
from ..observe.flags import add_observe_options, observe_flags

if TYPE_CHECKING:
    from ..requests import ConnectionFlags, CopyRequest, RunFlags, TransferFlags
    from ..requests.delivery import DeliveryRequest


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (its default prints usage too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"sftp-s3-tui: error: {message}\n(see sftp-s3-tui --help)\n")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class _Rule(argparse.Action):
    """--include / --exclude into one ordered list (the first matching rule decides)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        rules = list(getattr(namespace, "rules", None) or [])
        rules.append((option_string == "--include", str(values)))
        namespace.rules = rules


class _Filter(argparse.Action):
    """--filter / --filter-from into one ordered list of ("rule" | "from", value)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        filters = list(getattr(namespace, "filters", None) or [])
        filters.append(("from" if option_string == "--filter-from" else "rule", str(values)))
        namespace.filters = filters


def _add_run_options(parser: argparse.ArgumentParser, *, watch: bool) -> None:
    """The nightly-run options of ``copy`` and ``watch``: filters, gate, source, record."""
    pick = parser.add_argument_group("which files")
    pick.add_argument(
        "--include",
        action=_Rule,
        metavar="GLOB",
        help="copy only matching files (repeatable; rclone rules: '*.csv', '/top/**', 'dir/')",
    )
    pick.add_argument(
        "--exclude", action=_Rule, metavar="GLOB", help="skip matching files (repeatable)"
    )
    pick.add_argument(
        "--filter",
        action=_Filter,
        metavar="RULE",
        help="'+ GLOB' includes, '- GLOB' excludes, tried in order after --include/--exclude; "
        "the first match decides (repeatable)",
    )
    pick.add_argument(
        "--filter-from",
        action=_Filter,
        metavar="FILE",
        help="--filter rules from FILE, one a line (# comments)",
    )
    pick.add_argument("--min-size", type=_size, metavar="SIZE", help="skip smaller files")
    pick.add_argument("--max-size", type=_size, metavar="SIZE", help="skip larger files")
    pick.add_argument(
        "--newer-than", metavar="AGE|DATE", help="only files modified after, e.g. 24h, 2026-11-30"
    )
    pick.add_argument("--older-than", metavar="AGE|DATE", help="only files modified before")
    gate = parser.add_argument_group("readiness (files still being written wait)")
    gate.add_argument(
        "--min-age",
        metavar="AGE",
        help="only files unmodified for AGE, e.g. 5m (s3:// sources: objects whose "
        "LastModified is AGE ago)",
    )
    gate.add_argument(
        "--stable", metavar="AGE", help="only files whose size+mtime stay unchanged for AGE"
    )
    gate.add_argument(
        "--done-file",
        metavar="SUFFIX",
        help="copy x.csv only once x.csv SUFFIX exists, e.g. .done "
        "(s3:// → sftp://: write x.csv SUFFIX once x.csv is in place)",
    )
    gate.add_argument(
        "--keep-done-file",
        action="store_true",
        help="leave the done file when the source is moved or deleted",
    )
    after = parser.add_argument_group("after each verified file")
    after.add_argument(
        "--delete-source", action="store_true", help="delete the source once its object is verified"
    )
    after.add_argument(
        "--move-to", metavar="DIR", help="move the source into DIR on the SFTP server once verified"
    )
    after.add_argument(
        "--manifest", metavar="PATH|s3://B/K", help="append a JSON-lines record of every file"
    )
    after.add_argument(
        "--inplace",
        action="store_true",
        help="s3:// → sftp:// only: write to the final name, for servers that forbid "
        "rename (a partner may see a partial file)",
    )
    # --no-… forms turn off a check a profile's [delivery] table turns on, for one run.
    after.add_argument(
        "--verify-readback",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="s3:// → sftp:// only: read each file back over SFTP before it is renamed "
        "into place and compare its SHA-256 with the bytes read from S3 (a second pass "
        "over the link); --no-verify-readback: not even if the profile asks",
    )
    after.add_argument(
        "--verify-server-hash",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="s3:// → sftp:// only: ask the server for the SHA-256 of each file before it is "
        "renamed into place (check-file-handle: ProFTPD) and compare it with the bytes read "
        "from S3; a server that cannot is said in the result; --no-verify-server-hash: not "
        "even if the profile asks",
    )
    obj = parser.add_argument_group("objects")
    obj.add_argument("--storage-class", metavar="CLASS", help="e.g. STANDARD_IA, GLACIER_IR")
    obj.add_argument("--sse", metavar="AES256|aws:kms", help="server-side encryption")
    obj.add_argument("--sse-kms-key-id", metavar="KEY", help="KMS key for --sse aws:kms")
    obj.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="object tag (repeatable)"
    )
    obj.add_argument(
        "--content-type", metavar="TYPE", help="Content-Type (default: guessed from the name)"
    )
    obj.add_argument(
        "--metadata", action="append", default=[], metavar="K=V", help="x-amz-meta-K (repeatable)"
    )
    if watch:
        parser.add_argument(
            "--every", default="1m", metavar="AGE", help="poll interval, e.g. 30s, 1m, 1h (1m)"
        )
    else:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print the plan and totals; write nothing",
        )


def run_flags(args: argparse.Namespace) -> RunFlags:
    """The nightly-run flags of ``copy`` / ``watch``."""
    from ..requests import RunFlags

    return RunFlags(
        rules=tuple(getattr(args, "rules", None) or ()),
        filters=tuple(getattr(args, "filters", None) or ()),
        min_size=args.min_size,
        max_size=args.max_size,
        newer_than=args.newer_than,
        older_than=args.older_than,
        min_age=args.min_age,
        stable=args.stable,
        done_file=args.done_file,
        keep_done_file=args.keep_done_file,
        delete_source=args.delete_source,
        move_to=args.move_to,
        manifest=args.manifest,
        dry_run=getattr(args, "dry_run", False),
        inplace=getattr(args, "inplace", False),
        verify_readback=getattr(args, "verify_readback", None),
        verify_server_hash=getattr(args, "verify_server_hash", None),
        storage_class=args.storage_class,
        sse=args.sse,
        sse_kms_key_id=args.sse_kms_key_id,
        tags=tuple(args.tag),
        content_type=args.content_type,
        metadata=tuple(args.metadata),
    )


def _common_options(*, in_command: bool, s3_only: bool = False) -> _Parser:
    """The options every command takes, declared once.

    They may stand before or after the command (``sftp-s3-tui --user x copy …`` and
    ``sftp-s3-tui copy --user x …``). The copy under a command has no defaults, so it only
    sets what was given there and never hides what was given before the command.
    ``s3_only``: what ``cleanup`` takes (no SFTP, no metrics: it would refuse them).
    """
    parser = _Parser(add_help=False)
    default: object = argparse.SUPPRESS if in_command else None

    def flag(default_value: object) -> object:
        return argparse.SUPPRESS if in_command else default_value

    if not s3_only:
        _add_sftp_options(parser, default, flag, in_command=in_command)
    _add_s3_and_settings_options(parser, default, flag, metrics=not s3_only)
    return parser


def _add_sftp_options(
    parser: argparse.ArgumentParser,
    default: object,
    flag: Callable[[object], object],
    *,
    in_command: bool,
) -> None:
    sftp = parser.add_argument_group("SFTP")
    sftp.add_argument(
        "--user", default=default, help="SFTP user (default: the URL, SFTP_USER or $USER)"
    )
    sftp.add_argument(
        "--port", type=int, default=default, help="SFTP port (default: the URL, SFTP_PORT, 22)"
    )
    sftp.add_argument(
        "--identity",
        "-i",
        action="append",
        dest="identity_in_command" if in_command else "identity",
        default=flag([]),
        metavar="FILE",
        help="private key file (repeatable); the password comes from SFTP_PASSWORD",
    )
    sftp.add_argument(
        "--known-hosts", metavar="FILE", default=default, help="known_hosts (~/.ssh/known_hosts)"
    )
    sftp.add_argument(
        "--accept-new-host-key",
        action="store_true",
        default=flag(False),
        help="trust and record an unknown host key (a changed key is still refused)",
    )
    sftp.add_argument(
        "--no-agent", action="store_true", default=flag(False), help="do not use ssh-agent"
    )
    sftp.add_argument(
        "--connections",
        type=int,
        metavar="N",
        default=default,
        help="SSH connections per host at most (4); a far host's big file reads over all",
    )
    sftp.add_argument(
        "--window",
        metavar="SIZE",
        default=default,
        help="SSH receive window per connection (16MiB): at most this much per round trip",
    )
    sftp.add_argument(
        "--bwlimit",
        metavar="RATE",
        default=default,
        help="read at most RATE bytes/s per host: 20M = 20 MB/s, 8Mi = 8 MiB/s (0: no limit)",
    )
    sftp.add_argument(
        "--jump",
        metavar="[USER@]HOST[:PORT]",
        default=default,
        help="reach the host through this bastion (like ssh -J; same keys and known_hosts)",
    )
    sftp.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=flag(False),
        help="descend into linked folders (default: skip and count them)",
    )


def _add_s3_and_settings_options(
    parser: argparse.ArgumentParser,
    default: object,
    flag: Callable[[object], object],
    *,
    metrics: bool,
) -> None:
    s3 = parser.add_argument_group("S3")
    s3.add_argument(
        "--endpoint-url", default=default, help="S3-compatible endpoint (AWS_ENDPOINT_URL)"
    )
    s3.add_argument("--region", default=default, help="AWS region (AWS_REGION / profile)")
    s3.add_argument("--aws-profile", default=default, help="AWS profile name (AWS_PROFILE)")
    s3.add_argument(
        "--path-style",
        action="store_true",
        default=flag(False),
        help="path-style bucket addressing",
    )
    s3.add_argument(
        "--no-verify-tls",
        action="store_true",
        default=flag(False),
        help="do not verify the endpoint's TLS certificate (unsafe)",
    )
    other = parser.add_argument_group("settings")
    other.add_argument("--profile", default=default, help="a saved connection profile to use")
    other.add_argument(
        "--env-file",
        metavar="PATH",
        default=default,
        help="read KEY=value settings (SFTP_HOST, S3_BUCKET, …) from this file",
    )
    if metrics:
        other.add_argument(
            "--push-gateway",
            metavar="URL",
            default=default,
            help="push metrics to this Prometheus push gateway (PUSH_GATEWAY)",
        )
        other.add_argument(
            "--metrics-port", type=int, metavar="N", default=default, help="serve /metrics on N"
        )
    other.add_argument("-v", "--verbose", action="count", default=flag(0), help="more log output")


def _add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """Tuning and output options of ``copy`` and ``watch``."""
    tuning = parser.add_argument_group("transfer")
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
    defaults = TransferOptions()
    tuning.add_argument(
        "--sftp-concurrency",
        type=int,
        metavar="N",
        help=f"parallel SFTP reads ({defaults.sftp_concurrency})",
    )
    tuning.add_argument(
        "--s3-concurrency",
        type=int,
        metavar="N",
        help=f"parallel S3 uploads ({defaults.s3_concurrency})",
    )
    tuning.add_argument(
        "--files", type=int, metavar="N", help=f"files in flight ({defaults.files_in_flight})"
    )
    tuning.add_argument(
        "--conflict",
        choices=[p.value for p in ConflictPolicy],
        help="when the key exists (copy: if-different, i.e. skip what is there with the same "
        "size and not older than the source, or the same sha256; watch: overwrite)",
    )
    tuning.add_argument(
        "--checksum",
        choices=[c.value for c in ChecksumChoice],
        help="the checksum every part carries (auto: the strongest the store honours)",
    )
    tuning.add_argument(
        "--sha256-metadata",
        action="store_true",
        help="store the sha256 as x-amz-meta-sha256 on multipart objects too",
    )
    tuning.add_argument(
        "--resume-in-s3",
        action="store_true",
        help="keep each upload's resume state in S3 beside the object, so a retry on another "
        "machine continues it",
    )
    tuning.add_argument(
        "--no-resume", action="store_true", help="do not journal (no crash-safe resume)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sftp-s3-tui",
        description="Stream files from SFTP straight into S3. Without a command: the TUI.",
        epilog=EXIT_CODES_HELP,
        parents=[_common_options(in_command=False)],
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the app against embedded SFTP and S3 servers it starts itself",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common_options(in_command=True)

    copy = commands.add_parser(
        "copy",
        help="copy files from SFTP to S3 without the TUI",
        description="Copy SOURCE… (sftp://[user@]host[:port]/path, a folder or a glob) to DEST "
        "(s3://bucket/key, or s3://bucket/prefix/ with a trailing slash); or deliver "
        "s3://bucket/key|prefix/ to sftp://[user@]host[:port]/path[/] (the direction "
        "follows the addresses).",
        epilog=EXIT_CODES_HELP,
        parents=[common],
    )
    copy.add_argument("paths", nargs="+", metavar="SOURCE… DEST")
    _add_transfer_options(copy)
    _add_run_options(copy, watch=False)
    add_observe_options(copy, watch=False)

    watch = commands.add_parser(
        "watch",
        help="poll SFTP folders (or an s3:// prefix) and ship each new or changed file once",
        description="Every --every, list SOURCE… with the same filters and readiness gate as "
        "copy, and copy each new or changed file to DEST once (state in the user state dir, "
        "so a restart ships nothing twice). watch s3://bucket/prefix/ sftp://host/path/ "
        "delivers each new object version (its ETag) to the SFTP folder once. Stops cleanly "
        "on SIGTERM or Ctrl-C.",
        epilog=EXIT_CODES_HELP,
        parents=[common],
    )
    watch.add_argument("paths", nargs="+", metavar="SOURCE… DEST")
    _add_transfer_options(watch)
    _add_run_options(watch, watch=True)
    add_observe_options(watch, watch=True)

    cleanup = commands.add_parser(
        "cleanup",
        help="list (and abort) stale multipart uploads",
        description="List multipart uploads in BUCKET older than --older-than; abort them with "
        "--abort. Without BUCKET: the --profile's bucket.",
        epilog=CLEANUP_EXIT_CODES_HELP,
        parents=[_common_options(in_command=True, s3_only=True)],
    )
    cleanup.add_argument("bucket", nargs="?", metavar="s3://BUCKET[/PREFIX]")
    cleanup.add_argument("--older-than", default="24h", help="age, e.g. 30m, 24h, 7d (24h)")
    cleanup.add_argument("--abort", action="store_true", help="abort them (default: only list)")
    for name, what in (
        ("monitoring", "the Grafana dashboard and provisioning and the Prometheus config"),
        ("examples", "the example Airflow DAGs"),
    ):
        bundle = commands.add_parser(
            name, help=f"{what}: export them", description=f"{what.capitalize()}."
        )
        actions = bundle.add_subparsers(dest="bundle_action", metavar="ACTION", required=True)
        export = actions.add_parser(
            "export",
            help=f"copy {what} into DIR",
            description=f"Copy {what} into DIR (created); an existing file is kept unless --force.",
        )
        export.add_argument("dir", metavar="DIR")
        export.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def connection_flags(args: argparse.Namespace) -> ConnectionFlags:
    """The connection flags, wherever on the command line they were given."""
    from ..requests import ConnectionFlags

    identity = [*args.identity, *getattr(args, "identity_in_command", [])]
    return ConnectionFlags(
        user=args.user,
        port=args.port,
        identity=tuple(identity),
        known_hosts=args.known_hosts,
        accept_new_host_key=args.accept_new_host_key,
        no_agent=args.no_agent,
        connections=args.connections,
        window=args.window,
        bwlimit=args.bwlimit,
        jump=args.jump,
        follow_symlinks=args.follow_symlinks,
        endpoint_url=args.endpoint_url,
        region=args.region,
        aws_profile=args.aws_profile,
        path_style=args.path_style,
        no_verify_tls=args.no_verify_tls,
        profile=args.profile,
        push_gateway=args.push_gateway,
        metrics_port=args.metrics_port,
    )


def transfer_flags(args: argparse.Namespace) -> TransferFlags:
    from ..requests import TransferFlags

    return TransferFlags(
        part_size=args.part_size,
        parts_in_flight=args.concurrency,
        memory_budget=args.memory,
        sftp_concurrency=args.sftp_concurrency,
        s3_concurrency=args.s3_concurrency,
        files_in_flight=args.files,
        conflict=args.conflict,
        checksum=args.checksum,
        sha256_metadata=args.sha256_metadata,
        resume_in_s3=getattr(args, "resume_in_s3", False),
    )


def copy_request_of(args: argparse.Namespace, env: Mapping[str, str]) -> CopyRequest:
    """The typed request of a parsed ``copy`` or ``watch`` command line."""
    from ..requests import copy_request

    return copy_request(
        args.paths,
        connection_flags(args),
        transfer_flags(args),
        env,
        resume=not args.no_resume,
        json=args.json,
        quiet=args.quiet,
        run=run_flags(args),
        watch_every=getattr(args, "every", None),
        observe=observe_flags(args),
    )


def delivery_request_of(args: argparse.Namespace, env: Mapping[str, str]) -> DeliveryRequest:
    """The typed request of ``copy s3://… sftp://…`` (delivery to a partner's SFTP), or of
    ``watch s3://… sftp://…`` (its ``--every``)."""
    from ..requests.delivery import delivery_request

    return delivery_request(
        args.paths,
        connection_flags(args),
        transfer_flags(args),
        env,
        json=args.json,
        quiet=args.quiet,
        run=run_flags(args),
        observe=observe_flags(args),
        watch_every=getattr(args, "every", None),
    )
