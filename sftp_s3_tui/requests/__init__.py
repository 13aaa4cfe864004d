"""Flags + environment + ``.env`` + a profile → the typed requests the fronts run.

The CLI (``copy``, ``cleanup``, the TUI start) and the Airflow operator turn what the user
gave into engine requests here and nowhere else, so they agree on every rule: which value
wins (URL, then flag, then profile, then the seed's variables, then the AWS chain), how the
transfer options are checked, and what each exit code means. Nothing here parses argv
(that is ``cli/parser.py``) or runs anything (that is ``cli/run.py``, ``ui/app.py``, ``airflow/``).

This module holds what both directions share and the SFTP → S3 requests; :mod:`.delivery`
builds the S3 → SFTP ones from it (it imports this module, never the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.addresses import S3Location, SftpLocation, parse_s3_url, parse_sftp_url
from ..engine.config import (
    ChecksumChoice,
    ConflictPolicy,
    HostKeyPolicy,
    S3Endpoint,
    SftpEndpoint,
    TransferOptions,
    check_endpoint_url,
    check_region,
)
from ..engine.errors import (
    ConfigError,
    S3Error,
    SftpConnectError,
    SourceNotFound,
    TransferError,
    UsageError,
)
from ..engine.object_options import ObjectOptions
from ..engine.units import parse_rate, parse_size
from ..exit_codes import (  # re-exported: the fronts import them from here
    CLEANUP_EXIT_CODES_HELP,
    EXIT_CODES_HELP,
    EXIT_CONNECTION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_MATCHED,
    EXIT_OK,
    EXIT_USAGE,
)
from ..observe.options import ObserveOptions
from ..profiles import (
    Profile,
    ProfileStore,
    S3Settings,
    Secret,
    SftpAuth,
    SftpSettings,
)

if TYPE_CHECKING:  # the plan pulls in asyncssh: not needed to parse flags or print --help
    from ..engine.nightly.options import RunOptions
    from ..engine.plan.sources import PlanSource

#: ``copy``'s conflict policy unless --conflict or the profile says otherwise: a rerun skips
#: what is already there and unchanged, as rclone users expect (same size, and the source not
#: newer or the same sha256). The engine's default (and Airflow's ``replace``) stays as it is.
COPY_DEFAULT_CONFLICT = ConflictPolicy.IF_DIFFERENT

Env = Mapping[str, str]


def exit_code_for(error: TransferError) -> int:
    """The exit code of an error that stopped a whole command (not one file's failure)."""
    if isinstance(error, UsageError | ConfigError):
        return EXIT_USAGE
    if isinstance(error, SourceNotFound):
        return EXIT_NOTHING_MATCHED
    if isinstance(error, SftpConnectError | S3Error):
        return EXIT_CONNECTION
    return EXIT_FAILED


def env_value(env: Env, *names: str) -> str | None:
    """The first of ``names`` that is set to something non-empty."""
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class ConnectionFlags:
    """Connection options as the user gave them (None / empty: not given)."""

    user: str | None = None
    port: int | None = None
    identity: tuple[str, ...] = ()
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    no_agent: bool = False
    endpoint_url: str | None = None
    region: str | None = None
    aws_profile: str | None = None
    path_style: bool = False
    no_verify_tls: bool = False
    profile: str | None = None
    push_gateway: str | None = None
    metrics_port: int | None = None
    # How hard to pull from a (far) SFTP host; None / False keeps the profile's or engine's.
    connections: int | None = None
    window: str | None = None  # SSH receive window as given: 16MiB
    bwlimit: str | None = None  # as given: 20M (20 MB/s), 8Mi, 0 = unlimited
    jump: str | None = None  # [user@]host[:port]
    follow_symlinks: bool = False

    def link_changes(self) -> dict[str, object]:
        """The SftpEndpoint fields these flags set (the link tunables only), parsed."""
        changes: dict[str, object] = {}
        if self.connections is not None:
            changes["connections"] = self.connections
        if self.window is not None:
            try:
                changes["window_bytes"] = parse_size(self.window)
            except UsageError as exc:
                raise UsageError(f"--window {self.window!r} is not a size", exc.hint) from exc
        if self.bwlimit is not None:
            changes["bwlimit_bytes_per_second"] = parse_rate(self.bwlimit, "--bwlimit")
        if self.jump is not None:
            changes["jump"] = self.jump
        if self.follow_symlinks:
            changes["follow_symlinks"] = True
        return changes


#: What the CLI calls the engine's settings, for messages: the SftpEndpoint link fields
#: (:func:`check_link`) and the settings an engine error can be about
#: (``TransferError.setting``): its flags, its environment variables, a profile's keys.
CLI_NAMES: dict[str, str] = {
    "connections": "--connections",
    "window_bytes": "--window",
    "bwlimit_bytes_per_second": "--bwlimit",
    "jump": "--jump",
    "sftp_login": "SFTP_PASSWORD / --identity",
    "identity": "--identity",
    "accept_new_host_key": "pass --accept-new-host-key",
    "endpoint_url": "--endpoint-url",
    "password_env": "the profile's sftp.password",
    "passphrase_env": "the profile's sftp.passphrase",
    "secret_access_key_env": "the profile's s3.secret_access_key",
}


#: SftpEndpoint link field → the profile's SftpSettings field.
_PROFILE_LINK_NAMES = {"window_bytes": "window", "bwlimit_bytes_per_second": "bwlimit"}


def check_link(endpoint: SftpEndpoint, names: Mapping[str, str] = CLI_NAMES) -> SftpEndpoint:
    """``endpoint``, or :class:`UsageError` naming its first bad link tunable."""
    problems = endpoint.link_problems()
    if problems:
        name, message = problems[0]
        raise UsageError(f"{names.get(name, name)} {message}", "")
    return endpoint


@dataclass(frozen=True)
class TransferFlags:
    """Transfer options as the user gave them; None keeps the profile's or engine's value."""

    part_size: int | None = None
    parts_in_flight: int | None = None
    memory_budget: int | None = None
    sftp_concurrency: int | None = None
    s3_concurrency: int | None = None
    files_in_flight: int | None = None
    conflict: str | None = None
    checksum: str | None = None
    sha256_metadata: bool = False
    resume_in_s3: bool = False


#: The CLI's names for TransferOptions fields, for messages.
CLI_OPTION_NAMES: dict[str, str] = {
    "part_size": "--part-size",
    "parts_in_flight": "--concurrency",
    "memory_budget": "--memory",
    "sftp_concurrency": "--sftp-concurrency",
    "s3_concurrency": "--s3-concurrency",
    "files_in_flight": "--files",
}


@dataclass(frozen=True)
class RunFlags:
    """The nightly-run flags of ``copy`` and ``watch`` (filters, gate, manifest, source
    action, dry run, object options) as given; see :func:`run_options`."""

    rules: tuple[tuple[bool, str], ...] = ()  # (include?, pattern) in command-line order
    # --filter RULE / --filter-from FILE in command-line order: ("rule" | "from", value)
    filters: tuple[tuple[str, str], ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    newer_than: str | None = None
    older_than: str | None = None
    min_age: str | None = None
    stable: str | None = None
    done_file: str | None = None
    keep_done_file: bool = False
    delete_source: bool = False
    move_to: str | None = None
    manifest: str | None = None
    dry_run: bool = False
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    tags: tuple[str, ...] = ()
    content_type: str | None = None
    metadata: tuple[str, ...] = ()
    inplace: bool = False  # S3 → SFTP delivery only: write to the final name
    # S3 → SFTP delivery only; None: as the profile's [delivery] table says
    verify_readback: bool | None = None  # read the file back, SHA-256
    verify_server_hash: bool | None = None  # the server's SHA-256


def _run_options_class() -> type[RunOptions]:
    from ..engine.nightly.options import RunOptions

    return RunOptions


def run_options(flags: RunFlags, source_paths: Sequence[str] = ()) -> RunOptions:
    """The engine's :class:`RunOptions` from the flags, each value checked (one line);
    ``source_paths`` (the SFTP paths copied) to refuse a ``--move-to`` inside them."""
    from ..engine.nightly.options import RunOptions
    from ..engine.nightly.source_actions import SourceAction
    from ..engine.plan.filters import FileFilter, parse_duration, read_filter_file
    from ..engine.plan.readiness import ReadinessGate

    done = flags.done_file
    if done is not None and (not done or "/" in done):
        raise UsageError(f"--done-file {done!r} is not a suffix", "e.g. --done-file .done")
    if flags.inplace:
        raise UsageError("--inplace is for S3 → SFTP delivery", "copy s3://… sftp://… --inplace")
    if flags.verify_readback:
        raise UsageError(
            "--verify-readback is for S3 → SFTP delivery",
            "copy s3://… sftp://… --verify-readback (S3 objects are verified by HEAD)",
        )
    if flags.verify_server_hash:
        raise UsageError(
            "--verify-server-hash is for S3 → SFTP delivery",
            "copy s3://… sftp://… --verify-server-hash (S3 objects are verified by HEAD)",
        )
    options = RunOptions(
        file_filter=FileFilter.build(
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
        ),
        gate=ReadinessGate(
            min_age_seconds=parse_duration(flags.min_age) if flags.min_age else 0.0,
            stable_seconds=parse_duration(flags.stable) if flags.stable else 0.0,
            done_suffix=done or "",
        ),
        source_action=SourceAction(
            delete=flags.delete_source,
            move_to=flags.move_to,
            done_files=not flags.keep_done_file,
        ),
        manifest=flags.manifest,
        dry_run=flags.dry_run,
    )
    options.source_action.check_archive(source_paths)
    return options


def object_options(flags: RunFlags, base: ObjectOptions | None = None) -> ObjectOptions:
    """Object options: the flags over ``base`` (the profile's), checked."""
    base = base or ObjectOptions()
    given = ObjectOptions.build(
        storage_class=flags.storage_class,
        sse=flags.sse,
        sse_kms_key_id=flags.sse_kms_key_id,
        tags=flags.tags,
        content_type=flags.content_type,
        metadata=flags.metadata,
    )
    return ObjectOptions(
        storage_class=given.storage_class or base.storage_class,
        sse=given.sse or base.sse,
        sse_kms_key_id=given.sse_kms_key_id or base.sse_kms_key_id,
        tags=given.tags or base.tags,
        content_type=given.content_type if given.content_type is not None else base.content_type,
        metadata=given.metadata or base.metadata,
    )


@dataclass(frozen=True)
class CopyRequest:
    """Everything ``copy`` needs, resolved and checked."""

    sources: tuple[PlanSource, ...]
    dest: S3Location
    s3: S3Endpoint
    options: TransferOptions
    resume: bool = True
    json: bool = False
    quiet: bool = False
    push_gateway: str | None = None
    metrics_port: int | None = None
    run: RunOptions = field(default_factory=lambda: _run_options_class()())
    watch_every_seconds: float | None = None  # ``watch``: poll this often
    observe: ObserveOptions = field(default_factory=ObserveOptions)  # hooks, JSON logs, drops


@dataclass(frozen=True)
class ObserveFlags:
    """``--hook-url``, ``--notify-on``, ``--log-format`` and a drop expectation (``--expect``
    GLOB, ``--expect-count``, ``--expect-by``, ``--expect-tz``) as given."""

    hook_url: str | None = None
    notify_on: str | None = None
    log_format: str | None = None
    expect: str | None = None
    expect_count: str | None = None
    expect_by: str | None = None
    expect_tz: str | None = None


def observe_options(
    flags: ObserveFlags, env: Env, profile: Profile | None = None
) -> ObserveOptions:
    """The checked observing settings: the flags, else ``SFTP_S3_HOOK_URL``, else the
    profile's ``[notify]`` table (``hook_url``, ``notify_on``, ``expect``)."""
    from ..observe.expectations import Expectation
    from ..observe.options import observe_options as build

    notify = profile.notify if profile is not None else None
    expectations: tuple[Expectation, ...] = ()
    if notify is not None and not flags.expect:
        expectations = tuple(Expectation.parse(line) for line in notify.expect)
    if flags.expect:
        if not flags.expect_by:
            raise UsageError("--expect needs --expect-by", "e.g. --expect-by 'weekdays 06:00'")
        expectations = (
            Expectation.build(flags.expect, flags.expect_count, flags.expect_by, flags.expect_tz),
        )
    elif flags.expect_count or flags.expect_by or flags.expect_tz:
        raise UsageError("--expect-count/--expect-by/--expect-tz need --expect GLOB", "")
    return build(
        hook_url=flags.hook_url
        or env_value(env, "SFTP_S3_HOOK_URL")
        or (notify.hook_url if notify else None),
        notify_on=flags.notify_on or (notify.notify_on if notify else None),
        log_format=flags.log_format,
        expectations=expectations,
    )


@dataclass(frozen=True)
class CleanupRequest:
    """Everything ``cleanup`` needs: where to look, how old is stale, whether to abort."""

    s3: S3Endpoint
    location: S3Location
    older_than: timedelta
    abort: bool = False


@dataclass(frozen=True)
class AppRequest:
    """How the TUI starts: the demo, a saved profile (with the flags over it), or a form
    pre-filled from flags and the seed's variables."""

    demo: bool = False
    profile_name: str | None = None
    initial: Profile | None = None
    flags: ConnectionFlags = field(default_factory=ConnectionFlags)
    push_gateway: str | None = None
    metrics_port: int | None = None

    def with_flags(self, profile: Profile) -> Profile:
        """A saved profile with the command line's connection flags applied over it."""
        return apply_flags(profile, self.flags)


# --------------------------------------------------------------------------------------------
# .env


def load_env_file(path: str | Path, env: MutableMapping[str, str]) -> int:
    """Read ``KEY=value`` lines of a ``.env`` file into ``env`` (set variables win).

    Returns how many variables it set. A missing or unreadable file is a usage error.
    """
    from dotenv import dotenv_values

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"No env file at {file}", "give --env-file the path of a KEY=value file")
    try:
        values = dotenv_values(file)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read the env file {file}: {exc}", "") from exc
    count = 0
    for name, value in values.items():
        if value is not None and name not in env:
            env[name] = value
            count += 1
    return count


# --------------------------------------------------------------------------------------------
# Checks of single values (one clear line each, never a traceback later)


def check_aws_profile(name: str | None) -> str | None:
    """An AWS profile must exist in ~/.aws/config or ~/.aws/credentials."""
    if name is None:
        return None
    import botocore.session

    try:
        known = botocore.session.Session().available_profiles
    except Exception:  # an unreadable AWS config: let the credential chain report it
        return name
    if name not in known:
        raise UsageError(
            f"No AWS profile named {name!r}",
            "check ~/.aws/config (known: " + (", ".join(sorted(known)) or "none") + ")",
        )
    return name


def check_known_hosts(path: str | None) -> str | None:
    """A known_hosts file given by the user must be a readable file (or not exist yet)."""
    if path is None:
        return None
    file = Path(path).expanduser()
    if file.is_dir():
        raise UsageError(f"--known-hosts {file} is a folder", "give the known_hosts file")
    if file.exists():
        try:
            with file.open("rb"):
                pass
        except OSError as exc:
            raise UsageError(
                f"Cannot read --known-hosts {file}: {exc.strerror}", "check its permissions"
            ) from exc
    return path


def check_identity(
    paths: Sequence[str], hint: str = "check the --identity path"
) -> tuple[str, ...]:
    """Every --identity must be a readable file (a missing key is not a network error)."""
    for path in paths:
        file = Path(path).expanduser()
        if not file.exists():
            raise UsageError(f"No key file at {file}", hint)
        if file.is_dir():
            raise UsageError(f"The key file {file} is a folder", "give the private key file")
        try:
            with file.open("rb"):
                pass
        except OSError as exc:
            raise UsageError(
                f"Cannot read the key file {file}: {exc.strerror}", "check its permissions"
            ) from exc
    return tuple(paths)


def check_connection_flags(flags: ConnectionFlags, env: Env) -> None:
    """Every connection flag that can be checked before connecting, checked."""
    check_endpoint_url(flags.endpoint_url)
    check_region(flags.region)
    check_aws_profile(flags.aws_profile)
    check_known_hosts(flags.known_hosts)
    check_identity(flags.identity)
    if flags.port is not None and not 1 <= flags.port <= 65535:
        raise UsageError(f"--port {flags.port} is not a port", "use 1 to 65535")
    if flags.metrics_port is not None and not 0 <= flags.metrics_port <= 65535:
        raise UsageError(f"--metrics-port {flags.metrics_port} is not a port", "use 1 to 65535")
    check_link(replace(SftpEndpoint(host="-"), **flags.link_changes()))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Endpoints


def load_profile(name: str | None, store: ProfileStore | None = None) -> Profile | None:
    """The named saved profile, or None when no name was given."""
    if not name:
        return None
    return (store or ProfileStore()).get(name)


def sftp_endpoint(
    location: SftpLocation,
    flags: ConnectionFlags,
    env: Env,
    base: SftpEndpoint | None = None,
) -> SftpEndpoint:
    """The SFTP endpoint for one source: the URL first, then flags, then (for the profile's
    own host) the profile, then the seed's variables, then ``$USER``."""
    endpoint = _sftp_endpoint(location, flags, env, base)
    # How to reach and pull from the host: jump host, links, connections, window, rate limit.
    return check_link(replace(endpoint, **flags.link_changes()))  # type: ignore[arg-type]


def _sftp_endpoint(
    location: SftpLocation,
    flags: ConnectionFlags,
    env: Env,
    base: SftpEndpoint | None = None,
) -> SftpEndpoint:
    password = env_value(env, "SFTP_PASSWORD")
    if base is not None and base.host == location.host:
        changes: dict[str, object] = {}
        if location.port or flags.port:
            changes["port"] = location.port or flags.port
        username = location.username or flags.user or base.username or env_value(env, "USER")
        if username != base.username:
            changes["username"] = username
        if flags.identity:
            changes["identity_files"] = tuple(flags.identity)
        if flags.known_hosts:
            changes["known_hosts"] = flags.known_hosts
        if flags.accept_new_host_key:
            changes["host_key_policy"] = HostKeyPolicy.ACCEPT_NEW
        if flags.no_agent:
            changes["use_agent"] = False
        if password and not base.password:
            changes["password"] = password
        return replace(base, **changes)  # type: ignore[arg-type]
    return SftpEndpoint(
        host=location.host,
        port=location.port or flags.port or _port(env_value(env, "SFTP_PORT")),
        username=location.username
        or flags.user
        or env_value(env, "SFTP_USER")
        or env_value(env, "USER"),
        password=password,
        identity_files=tuple(flags.identity),
        use_agent=not flags.no_agent,
        known_hosts=flags.known_hosts,
        host_key_policy=HostKeyPolicy.ACCEPT_NEW
        if flags.accept_new_host_key
        else HostKeyPolicy.STRICT,
    )


def _port(text: str | None) -> int:
    if not text:
        return 22
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f"SFTP_PORT={text!r} is not a port", "use 1 to 65535")
    return port


def s3_endpoint(flags: ConnectionFlags, env: Env, base: S3Endpoint | None = None) -> S3Endpoint:
    """The S3 endpoint: flags over the profile's (``base``), then the AWS variables; what is
    still unset falls to the AWS chain."""
    endpoint = base or S3Endpoint()
    changes: dict[str, object] = {}
    if flags.endpoint_url:
        changes["endpoint_url"] = check_endpoint_url(flags.endpoint_url)
    if flags.region:
        changes["region"] = check_region(flags.region)
    if flags.aws_profile:
        changes["profile"] = check_aws_profile(flags.aws_profile)
    if flags.path_style:
        changes["path_style"] = True
    if flags.no_verify_tls:
        changes["verify_tls"] = False
    return with_aws_defaults(replace(endpoint, **changes), env)  # type: ignore[arg-type]


def with_aws_defaults(endpoint: S3Endpoint, env: Env) -> S3Endpoint:
    """Fill an unset endpoint URL and region from the standard AWS variables (every front)."""
    return endpoint.with_env_defaults(env)


def transfer_options(
    flags: TransferFlags,
    base: TransferOptions | None = None,
    names: Mapping[str, str] = CLI_OPTION_NAMES,
) -> TransferOptions:
    """``base`` (the profile's or the engine's defaults) with the flags over it, checked."""
    options = base or TransferOptions()
    changes: dict[str, object] = {}
    for f in fields(TransferFlags):
        value = getattr(flags, f.name)
        if f.name in ("conflict", "checksum", "sha256_metadata", "resume_in_s3") or value is None:
            continue
        changes[f.name] = value
    if flags.conflict:
        try:
            changes["conflict"] = ConflictPolicy(flags.conflict)
        except ValueError as exc:
            choices = ", ".join(p.value for p in ConflictPolicy)
            raise UsageError(f"Unknown conflict policy {flags.conflict!r}", choices) from exc
    if flags.checksum:
        try:
            changes["checksum"] = ChecksumChoice(flags.checksum)
        except ValueError as exc:
            choices = ", ".join(c.value for c in ChecksumChoice)
            raise UsageError(f"Unknown checksum {flags.checksum!r}", choices) from exc
    if flags.sha256_metadata:
        changes["sha256_metadata"] = True
    if flags.resume_in_s3:
        changes["resume_in_s3"] = True
    return replace(options, **changes).validated(names)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Requests


def split_copy_paths(
    paths: Sequence[str],
    env: Env,
    *,
    default_host: str | None = None,
    default_dest: S3Location | None = None,
) -> tuple[list[SftpLocation], S3Location]:
    """SOURCE… DEST; bare /paths use SFTP_HOST (or the profile's host) and DEST may be
    omitted when the profile's bucket (or S3_BUCKET) names one."""
    paths = list(paths)
    bucket = env_value(env, "S3_BUCKET")
    if paths and paths[-1].startswith("s3://"):
        dest = parse_s3_url(paths.pop())
    elif default_dest is not None:
        dest = default_dest
    elif bucket:
        dest = parse_s3_url(f"s3://{bucket}/")
    else:
        raise UsageError("No destination", "end with s3://bucket/key or s3://bucket/prefix/")
    if not paths:
        raise UsageError("No source", "give at least one sftp://host/path")
    host = default_host or env_value(env, "SFTP_HOST")
    return [parse_sftp_url(p, default_host=host) for p in paths], dest


def copy_request(
    paths: Sequence[str],
    flags: ConnectionFlags,
    transfer: TransferFlags,
    env: Env,
    *,
    resume: bool = True,
    json: bool = False,
    quiet: bool = False,
    store: ProfileStore | None = None,
    run: RunFlags | None = None,
    watch_every: str | None = None,
    observe: ObserveFlags | None = None,
) -> CopyRequest:
    """``copy SOURCE… DEST`` (or ``watch``) with its flags, the environment and
    ``--profile``, resolved."""
    check_connection_flags(flags, env)
    profile = load_profile(flags.profile, store)
    sftp_base = profile.sftp_endpoint(password=env_value(env, "SFTP_PASSWORD")) if profile else None
    locations, dest = split_copy_paths(
        paths,
        env,
        default_host=profile.sftp.host if profile else None,
        default_dest=profile.default_destination() if profile else None,
    )
    s3 = s3_endpoint(flags, env, profile.s3_endpoint() if profile else None)
    options = transfer_options(transfer, profile.transfer_options() if profile else None)
    if (
        watch_every is None
        and not transfer.conflict
        and not (profile and profile.transfer.conflict)
    ):
        options = replace(options, conflict=COPY_DEFAULT_CONFLICT)
    from ..engine.plan.sources import PlanSource, exact_key_error

    run = run or RunFlags()
    options = replace(options, object_options=object_options(run, options.object_options))
    every = parse_every(watch_every) if watch_every is not None else None
    if len(locations) > 1 and not dest.is_prefix:
        raise exact_key_error(len(locations), dest, "end DEST with / to copy into a prefix")
    sources = tuple(
        PlanSource(sftp_endpoint(loc, flags, env, sftp_base), loc.path) for loc in locations
    )
    if profile is not None and not flags.identity:  # the profile's key_file
        for source in sources:
            check_identity(source.endpoint.identity_files, f"check profile {profile.name!r}")
    return CopyRequest(
        sources=sources,
        dest=dest,
        s3=s3,
        options=options,
        resume=resume,
        json=json,
        quiet=quiet,
        push_gateway=push_gateway(flags, env),
        metrics_port=flags.metrics_port,
        run=run_options(run, [s.path for s in sources]),
        watch_every_seconds=every,
        observe=observe_options(observe or ObserveFlags(), env, profile),
    )


def parse_every(text: str, name: str = "--every") -> float:
    """A watch's poll interval in seconds (``30s``, ``1m``), checked to be positive."""
    from ..engine.plan.filters import parse_duration

    every = parse_duration(text)
    if every <= 0:
        raise UsageError(f"{name} {text!r} must be positive", "e.g. --every 1m")
    return every


def push_gateway(flags: ConnectionFlags, env: Env) -> str | None:
    """``--push-gateway``, else PUSH_GATEWAY (the seed's variable)."""
    from ..metrics import push_gateway_from_env

    return push_gateway_from_env(flags.push_gateway, env)


def parse_age(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` → a duration."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError) as exc:
        raise UsageError(f"Not an age: {text!r}", "write it like 30m, 24h or 7d") from exc
    if seconds < 0:
        raise UsageError(f"Not an age: {text!r}", "write it like 30m, 24h or 7d")
    return timedelta(seconds=seconds)


def cleanup_request(
    bucket: str | None,
    flags: ConnectionFlags,
    env: Env,
    *,
    older_than: str = "24h",
    abort: bool = False,
    store: ProfileStore | None = None,
) -> CleanupRequest:
    """``cleanup [s3://BUCKET[/PREFIX]]``: the profile's S3 (and bucket) unless given."""
    if flags.push_gateway or flags.metrics_port is not None:
        raise UsageError(
            "cleanup exports no metrics", "drop --push-gateway / --metrics-port for cleanup"
        )
    check_connection_flags(flags, env)
    profile = load_profile(flags.profile, store)
    if bucket:
        location = parse_s3_url(bucket if bucket.startswith("s3://") else f"s3://{bucket}")
    elif profile is not None and profile.default_destination() is not None:
        location = profile.default_destination()  # type: ignore[assignment]
    else:
        raise UsageError("No bucket", "give s3://BUCKET[/PREFIX] (or a --profile with a bucket)")
    assert location is not None
    return CleanupRequest(
        s3=s3_endpoint(flags, env, profile.s3_endpoint() if profile else None),
        location=location,
        older_than=parse_age(older_than),
        abort=abort,
    )


def apply_flags(profile: Profile, flags: ConnectionFlags) -> Profile:
    """A profile with the command line's connection flags over it (for the TUI)."""
    sftp, s3 = profile.sftp, profile.s3
    sftp_changes: dict[str, object] = {}
    if flags.user:
        sftp_changes["user"] = flags.user
    if flags.port:
        sftp_changes["port"] = flags.port
    if flags.known_hosts:
        sftp_changes["known_hosts"] = flags.known_hosts
    if flags.accept_new_host_key:
        sftp_changes["host_key_policy"] = HostKeyPolicy.ACCEPT_NEW
    if flags.identity:
        sftp_changes.update(auth=SftpAuth.KEY, key_file=flags.identity[0], password=None)
    elif flags.no_agent and sftp.auth is SftpAuth.AGENT:
        sftp_changes.update(auth=SftpAuth.PASSWORD)  # no agent: ask for the password
    for name, value in flags.link_changes().items():
        sftp_changes[_PROFILE_LINK_NAMES.get(name, name)] = value
    s3_changes: dict[str, object] = {}
    for flag, name in (
        ("endpoint_url", "endpoint_url"),
        ("region", "region"),
        ("aws_profile", "aws_profile"),
    ):
        if getattr(flags, flag):
            s3_changes[name] = getattr(flags, flag)
    if flags.aws_profile:
        s3_changes.update(access_key_id=None, secret_access_key=None)
    if flags.path_style:
        s3_changes["path_style"] = True
    if flags.no_verify_tls:
        s3_changes["verify_tls"] = False
    return replace(
        profile,
        sftp=replace(sftp, **sftp_changes),  # type: ignore[arg-type]
        s3=replace(s3, **s3_changes),  # type: ignore[arg-type]
    )


def app_request(flags: ConnectionFlags, env: Env, *, demo: bool = False) -> AppRequest:
    """How the TUI starts, from its flags and the environment."""
    if flags.profile and demo:
        raise ConfigError("--demo and --profile cannot be combined", "choose one")
    check_connection_flags(flags, env)
    initial = None if demo or flags.profile else initial_profile(flags, env)
    return AppRequest(
        demo=demo,
        profile_name=flags.profile,
        initial=initial,
        flags=flags,
        push_gateway=push_gateway(flags, env),
        metrics_port=flags.metrics_port,
    )


def initial_profile(flags: ConnectionFlags, env: Env) -> Profile | None:
    """The connect form pre-filled from the flags and the seed's variables (None: nothing
    was given, the form starts empty)."""
    host = env_value(env, "SFTP_HOST")
    endpoint_url = flags.endpoint_url or env_value(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    given = (
        host,
        flags.user,
        flags.identity,
        endpoint_url,
        flags.aws_profile,
        flags.accept_new_host_key,
        flags.no_agent,
        flags.no_verify_tls,
    )
    if not any(given):
        return None
    password = env_value(env, "SFTP_PASSWORD")
    auth = SftpAuth.PASSWORD if password or flags.no_agent else SftpAuth.AGENT
    base = Profile(
        name="command line",
        sftp=SftpSettings(
            host=host or "",
            port=_port(env_value(env, "SFTP_PORT")),
            user=env_value(env, "SFTP_USER", "USER"),
            auth=auth,
            password=Secret.from_env("SFTP_PASSWORD") if password else None,
        ),
        s3=S3Settings(
            region=env_value(env, "AWS_REGION", "AWS_DEFAULT_REGION"),
            endpoint_url=check_endpoint_url(endpoint_url, "AWS_ENDPOINT_URL"),
            bucket=env_value(env, "S3_BUCKET"),
        ),
    )
    return apply_flags(base, flags)


__all__ = [
    "CLEANUP_EXIT_CODES_HELP",
    "CLI_NAMES",
    "EXIT_CODES_HELP",
    "EXIT_CONNECTION",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_MATCHED",
    "EXIT_OK",
    "EXIT_USAGE",
    "AppRequest",
    "CleanupRequest",
    "ConnectionFlags",
    "CopyRequest",
    "TransferFlags",
    "app_request",
    "apply_flags",
    "check_link",
    "cleanup_request",
    "copy_request",
    "exit_code_for",
    "initial_profile",
    "load_env_file",
    "s3_endpoint",
    "sftp_endpoint",
    "transfer_options",
    "with_aws_defaults",
]
