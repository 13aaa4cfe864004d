"""Flags + environment + a profile → the request of a delivery, S3 → SFTP (``copy`` / ``watch
s3://… sftp://…``, the TUI's ``d`` / ``D``, ``StreamingS3ToSFTPOperator``), by the rules
:mod:`sftp_s3_tui.requests` keeps for both directions (which value wins, how each value is
checked, what each exit code means)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.addresses import S3Location, parse_s3_url, parse_sftp_url
from ..engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint, TransferOptions
from ..engine.errors import UsageError
from ..observe.options import ObserveOptions
from ..profiles import DeliverySettings, ProfileStore
from . import (
    CLI_OPTION_NAMES,
    ConnectionFlags,
    Env,
    ObserveFlags,
    RunFlags,
    TransferFlags,
    check_connection_flags,
    env_value,
    load_profile,
    observe_options,
    parse_every,
    push_gateway,
    s3_endpoint,
    sftp_endpoint,
    transfer_options,
)

if TYPE_CHECKING:  # the plan pulls in asyncssh: not needed to parse flags or print --help
    from ..engine.plan.delivery import DeliveryTarget
    from ..engine.plan.filters import FileFilter
    from ..engine.transfer.delivery_options import DeliveryOptions


@dataclass(frozen=True)
class DeliveryRequest:
    """``copy s3://… sftp://…``: objects delivered to an SFTP folder or file, resolved."""

    source: S3Location
    target: DeliveryTarget
    s3: S3Endpoint
    options: DeliveryOptions
    json: bool = False
    quiet: bool = False
    dry_run: bool = False
    observe: ObserveOptions = field(default_factory=ObserveOptions)  # hooks, JSON logs
    manifest: str | None = None  # --manifest PATH|s3://B/K: a JSON-lines row per object
    watch_every_seconds: float | None = None  # ``watch s3://… sftp://…``: poll this often
    push_gateway: str | None = None  # --push-gateway / PUSH_GATEWAY
    metrics_port: int | None = None  # --metrics-port: serve /metrics while it runs


def _delivery_record_dir() -> Path:
    """Where deliveries in progress are recorded (found again after a kill -9)."""
    from ..paths import delivery_record_dir

    return delivery_record_dir()


def delivery_done_suffix(done: str | None) -> str:
    """``--done-file SUFFIX`` of a delivery (the marker written after each file), checked."""
    if done is None:
        return ""
    if not done or "/" in done:
        raise UsageError(f"--done-file {done!r} is not a suffix", "e.g. --done-file .done")
    return done


def delivery_filter(flags: RunFlags) -> FileFilter | None:
    """The filters of a delivery (over a prefix's objects by their relative keys)."""
    from ..engine.plan.filters import FileFilter, read_filter_file

    built = FileFilter.build(
        rules=flags.rules,
        filters=[
            line
            for kind, value in flags.filters
            for line in (read_filter_file(value) if kind == "from" else [value])
        ],
        min_size=flags.min_size,
        max_size=flags.max_size,
        newer_than=flags.newer_than,
        older_than=flags.older_than,
    )
    return built if built.active else None


def is_delivery(paths: Sequence[str]) -> bool:
    """True when the addresses say S3 → SFTP (the direction follows the addresses)."""
    return len(paths) >= 2 and paths[-1].startswith("sftp://") and paths[0].startswith("s3://")


#: Run flags that S3 → SFTP delivery does not honour yet: refused, never silently ignored.
_NOT_YET_FOR_DELIVERY = {"move_to": "--move-to"}

#: Run flags that only mean something when S3 is the destination (or SFTP the source).
_UPLOAD_ONLY = {
    "keep_done_file": ("--keep-done-file", "it keeps an SFTP source's marker file"),
    "storage_class": ("--storage-class", "it sets how an S3 object is stored"),
    "sse": ("--sse", "it sets how an S3 object is encrypted"),
    "sse_kms_key_id": ("--sse-kms-key-id", "it sets how an S3 object is encrypted"),
    "tags": ("--tag", "it tags the S3 object written"),
    "content_type": ("--content-type", "it sets the S3 object's Content-Type"),
    "metadata": ("--metadata", "it sets the S3 object's metadata"),
}


def parse_s3_source(text: str) -> S3Location:
    """``s3://bucket/key`` or ``s3://bucket/prefix/`` as a source: the key kept byte for byte
    (no normalisation, no cleaning: it names an object that exists)."""
    bucket, _, key = text[len("s3://") :].partition("/")
    parse_s3_url(f"s3://{bucket}/")  # the bucket name checked
    return S3Location(bucket=bucket, key=key)


def delivery_request(
    paths: Sequence[str],
    flags: ConnectionFlags,
    transfer: TransferFlags,
    env: Env,
    *,
    json: bool = False,
    quiet: bool = False,
    run: RunFlags | None = None,
    store: ProfileStore | None = None,
    observe: ObserveFlags | None = None,
    watch_every: str | None = None,
) -> DeliveryRequest:
    """``copy s3://bucket/key|prefix/ sftp://[user@]host[:port]/path[/]``, resolved (or
    ``watch`` with ``watch_every``, its ``--every``).

    The conflict policy defaults to ``skip-existing`` here (not the upload default,
    ``overwrite``): a partner may already be reading the file at the final name.
    """
    from ..engine.plan.delivery import DeliveryTarget, check_addresses
    from ..engine.plan.filters import parse_duration

    check_connection_flags(flags, env)
    run = run or RunFlags()
    for name, flag in _NOT_YET_FOR_DELIVERY.items():
        if getattr(run, name) not in (None, (), False):
            raise UsageError(f"{flag} is not supported for S3 → SFTP delivery yet", "")
    for name, (flag, what) in _UPLOAD_ONLY.items():
        if getattr(run, name) not in (None, (), False):
            raise UsageError(
                f"{flag} is for copies into S3: {what}; this delivery writes to an SFTP server",
                "leave it out, or swap the addresses for an upload",
            )
    if run.stable:
        raise UsageError(
            "--stable is for SFTP sources: an S3 object never grows, it is whole once listed",
            "--min-age AGE waits until a drop's objects are AGE old",
        )
    command = "copy" if watch_every is None else "watch"
    if len(paths) != 2:
        raise UsageError(
            "Deliver one s3:// source at a time",
            f"{command} s3://bucket/key|prefix/ sftp://[user@]host[:port]/path[/]",
        )
    every = parse_every(watch_every) if watch_every is not None else None
    profile = load_profile(flags.profile, store)
    sftp_base = profile.sftp_endpoint(password=env_value(env, "SFTP_PASSWORD")) if profile else None
    checks = profile.delivery if profile else DeliverySettings()
    source = parse_s3_source(paths[0])
    location = parse_sftp_url(paths[-1])
    target = DeliveryTarget(
        endpoint=sftp_endpoint(location, flags, env, sftp_base),
        path=location.path,
        is_folder=paths[-1].endswith("/"),
    )
    check_addresses(source, target)
    if run.min_age and not source.is_prefix:
        raise UsageError(
            f"--min-age applies to a prefix's objects; {paths[0]} names one object",
            "deliver s3://bucket/prefix/ with --min-age, or the key without it",
        )
    return DeliveryRequest(
        source=source,
        target=target,
        s3=s3_endpoint(flags, env, profile.s3_endpoint() if profile else None),
        options=delivery_options(
            transfer,
            run.delete_source,
            profile.transfer_options() if profile else None,
            inplace=run.inplace,
            # A flag overrides the profile's [delivery] table for this run, either way
            # (--verify-readback adds the check, --no-verify-readback drops it).
            verify_readback=_either(run.verify_readback, checks.verify_readback),
            verify_server_hash=_either(run.verify_server_hash, checks.verify_server_hash),
            done_suffix=delivery_done_suffix(run.done_file),
            record_dir=_delivery_record_dir(),
            file_filter=delivery_filter(run),
            min_age_seconds=parse_duration(run.min_age) if run.min_age else 0.0,
        ),
        json=json,
        quiet=quiet,
        dry_run=run.dry_run,
        manifest=run.manifest,
        observe=observe_options(observe or ObserveFlags(), env, profile),
        watch_every_seconds=every,
        push_gateway=None if run.dry_run else push_gateway(flags, env),
        metrics_port=None if run.dry_run else flags.metrics_port,
    )


def _either(flag: bool | None, profile: bool) -> bool:
    """A check's setting: the flag when given (``--x`` / ``--no-x``), else the profile's."""
    return profile if flag is None else flag


def delivery_options(
    transfer: TransferFlags,
    delete_source: bool = False,
    base: TransferOptions | None = None,
    names: Mapping[str, str] = CLI_OPTION_NAMES,
    **delivery: Any,
) -> DeliveryOptions:
    """A delivery's tunables from the transfer flags, checked as every front's are; the
    conflict policy is ``skip-existing`` unless one is given. ``delivery``: the
    delivery-only fields (``inplace``, ``verify_readback``, ``verify_server_hash``,
    ``done_suffix``, ``record_dir``, ``file_filter``)."""
    from ..engine.transfer.delivery_options import DeliveryOptions

    options = transfer_options(transfer, base, names)
    return DeliveryOptions(
        **delivery,
        part_size=options.part_size,
        parts_in_flight=options.parts_in_flight,
        files_in_flight=transfer.files_in_flight or DeliveryOptions.files_in_flight,
        memory_budget=options.memory_budget,
        conflict=options.conflict if transfer.conflict else ConflictPolicy.SKIP_EXISTING,
        delete_source=delete_source,
        sftp_block_size=options.sftp_block_size,
        sftp_requests=options.sftp_requests,
    )


def task_delivery_request(
    s3_bucket: str | None,
    s3_key: str,
    target: DeliveryTarget,
    s3: S3Endpoint,
    transfer: TransferFlags,
    *,
    delete_source: bool = False,
    verify_readback: bool = False,
    verify_server_hash: bool = False,
    observe: ObserveOptions | None = None,
) -> DeliveryRequest:
    """A delivery for a task front (the Airflow operator): ``s3_bucket`` + ``s3_key`` (a key,
    or a prefix ending in ``/``; or ``s3_key`` as ``s3://bucket/key``), endpoints from its
    connections, checked by the same rules as ``copy s3://… sftp://…``
    (``verify_readback``, ``verify_server_hash``: as ``--verify-readback``,
    ``--verify-server-hash``)."""
    from ..engine.plan.delivery import check_addresses

    if s3_key.startswith("s3://"):
        if s3_bucket:
            raise UsageError(
                f"s3_key {s3_key!r} is a full s3:// address and s3_bucket is set too",
                "give the bucket in one place only",
            )
        source = parse_s3_source(s3_key)
    elif not s3_bucket:
        raise UsageError("No S3 bucket", "set s3_bucket, or give s3_key as s3://bucket/key")
    else:
        source = parse_s3_source(f"s3://{s3_bucket}/{s3_key}")
    if not source.key:
        raise UsageError(f"No S3 key in {source}", "set s3_key to a key, or a prefix ending in /")
    check_addresses(source, target)
    return DeliveryRequest(
        source=source,
        target=target,
        s3=s3,
        options=delivery_options(
            transfer,
            delete_source,
            names={},
            verify_readback=verify_readback,
            verify_server_hash=verify_server_hash,
        ),
        observe=observe or ObserveOptions(),
    )


def folder_delivery_request(
    source: S3Location,
    folder: str,
    sftp: SftpEndpoint,
    s3: S3Endpoint,
    options: TransferOptions,
    *,
    conflict: ConflictPolicy = ConflictPolicy.SKIP_EXISTING,
    record_dir: Path | None = None,
    verify_readback: bool = False,
    verify_server_hash: bool = False,
) -> DeliveryRequest:
    """The TUI's delivery: an object or a prefix of the bucket pane into the SFTP folder
    shown, with the session's endpoints and tunables (as ``copy s3://… sftp://…/folder/``
    resolves them; skip-existing unless asked: a partner may be reading the file). Each
    file in progress is recorded under ``record_dir`` (default: the CLI's folder, same
    format), which lets a paused one resume and a killed one be found again.
    ``verify_readback`` / ``verify_server_hash``: the profile's ``[delivery]`` checks, as
    ``--verify-readback`` / ``--verify-server-hash``."""
    from ..engine.plan.delivery import DeliveryTarget, check_addresses
    from ..engine.transfer.delivery_options import DeliveryOptions

    target = DeliveryTarget(endpoint=sftp, path=folder.rstrip("/") + "/", is_folder=True)
    check_addresses(source, target)
    return DeliveryRequest(
        source=source,
        target=target,
        s3=s3,
        options=DeliveryOptions(
            part_size=options.part_size,
            parts_in_flight=options.parts_in_flight,
            files_in_flight=options.files_in_flight or DeliveryOptions.files_in_flight,
            memory_budget=options.memory_budget,
            conflict=conflict,
            sftp_block_size=options.sftp_block_size,
            sftp_requests=options.sftp_requests,
            record_dir=record_dir or _delivery_record_dir(),
            verify_readback=verify_readback,
            verify_server_hash=verify_server_hash,
        ),
    )
