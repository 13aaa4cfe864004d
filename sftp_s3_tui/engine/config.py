"""Connection endpoints and transfer options: the engine's whole configuration surface."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path

from .errors import UsageError
from .object_options import ObjectOptions

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000


class ConflictPolicy(StrEnum):
    """What to do when the destination key already exists."""

    OVERWRITE = "overwrite"
    SKIP_EXISTING = "skip-existing"
    IF_NEWER = "if-newer"
    IF_DIFFERENT = "if-different"


class ChecksumChoice(StrEnum):
    """Which checksum every part and object carries (``auto``: the strongest the store honours).

    Content-MD5 goes with every choice but ``none``; ``none`` sends no checksum at all.
    """

    AUTO = "auto"
    CRC64NVME = "crc64nvme"
    CRC32C = "crc32c"
    CRC32 = "crc32"
    SHA256 = "sha256"
    MD5 = "md5"
    NONE = "none"


class HostKeyPolicy(StrEnum):
    """How an unknown SSH host key is treated (a changed key is always refused)."""

    STRICT = "strict"
    ACCEPT_NEW = "accept-new"


#: Bounds of the SFTP link tunables (a server's MaxStartups is 10 by default).
MAX_CONNECTIONS = 64
MIN_WINDOW_BYTES = 256 * KiB
MAX_WINDOW_BYTES = GiB
_JUMP = re.compile(r"^(?:ssh://)?(?:[^@\s/]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^@\s/:\[\]]+)(?::\d{1,5})?$")


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to log in to an SFTP server, and how hard to pull from it.

    Memory beside the budget: SFTP data is copied into its part's pooled buffer block by
    block as it arrives. Before that, asyncssh holds at most the answers to the read
    requests in flight (each reading part asks for at most its own length, so at most
    ``sftp_concurrency × part_size`` in all, 256 MiB with the defaults, and in practice a
    few blocks), and the server can send at most ``window_bytes`` ahead per connection.
    """

    host: str
    port: int = 22
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_files: tuple[str, ...] = ()
    #: Private keys as text (OpenSSH/PEM), for keys kept in a secret store rather than a file.
    private_keys: tuple[str, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)
    use_agent: bool = True
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    trusted_host_keys: tuple[str, ...] = ()
    connect_timeout_seconds: float = 15.0
    request_timeout_seconds: float = 60.0  # no answer for this long: the server stalled
    keepalive_seconds: float = 15.0
    #: SSH receive window per channel: at most this many bytes per round trip on one
    #: connection, so it should cover bandwidth × RTT (16 MiB: ~160 MB/s at 100 ms).
    #: The server's unread data is bounded by it (``connections × window_bytes`` per host).
    window_bytes: int = 16 * MiB
    max_packet_bytes: int = 256 * KiB
    #: SSH connections opened to this host at most (servers cap MaxStartups / MaxSessions);
    #: a big file is read over all of them at once, small files are spread across them.
    connections: int = 4
    login_stagger_seconds: float = 0.25  # between two logins to the same host
    #: Read at most this many bytes per second from this host (0 = unlimited).
    bwlimit_bytes_per_second: int = 0
    #: A bastion to reach the host through (OpenSSH's ProxyJump): ``[user@]host[:port]``;
    #: same keys and known_hosts as the endpoint. ``~/.ssh/config``'s ProxyJump also applies.
    jump: str | None = None
    #: Descend into linked folders (loops detected); without it they are skipped and counted.
    follow_symlinks: bool = False
    #: Read in blocks of this many bytes instead of probing the server for its largest read
    #: (0 = probe): for a server that misbehaves under probing.
    read_block_bytes: int = 0

    def link_problems(self) -> list[tuple[str, str]]:
        """What is wrong with the link tunables, as ``(field, message)`` pairs (empty: usable)."""
        found: list[tuple[str, str]] = []
        if not 1 <= self.connections <= MAX_CONNECTIONS:
            found.append(
                ("connections", f"must be from 1 to {MAX_CONNECTIONS}, not {self.connections}")
            )
        if not MIN_WINDOW_BYTES <= self.window_bytes <= MAX_WINDOW_BYTES:
            found.append(("window_bytes", "must be from 256KiB to 1GiB"))
        if self.bwlimit_bytes_per_second < 0:
            found.append(("bwlimit_bytes_per_second", "must not be negative"))
        if self.jump is not None and not _JUMP.match(self.jump):
            found.append(("jump", f"{self.jump!r} is not [user@]host[:port]"))
        return found

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts or Path.home() / ".ssh" / "known_hosts").expanduser()

    @property
    def display(self) -> str:
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"sftp://{user}{self.host}{port}"


@dataclass(frozen=True)
class S3Endpoint:
    """Which S3 (or S3-compatible store) to talk to and with which credentials.

    Unset fields fall through to the standard AWS chain (AWS_PROFILE, AWS_ENDPOINT_URL,
    AWS_REGION, ~/.aws/config, instance roles).
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    path_style: bool = False
    verify_tls: bool = True
    storage_class: str | None = None
    server_side_encryption: str | None = None
    max_attempts: int = 5
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0

    @property
    def display(self) -> str:
        return self.endpoint_url or (f"aws ({self.region})" if self.region else "aws")

    def with_env_defaults(self, env: Mapping[str, str]) -> S3Endpoint:
        """An unset endpoint URL and region filled from the standard AWS variables
        (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION), checked."""
        changes: dict[str, object] = {}
        if self.endpoint_url is None:
            url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
            if url:
                changes["endpoint_url"] = check_endpoint_url(url, "AWS_ENDPOINT_URL")
        if self.region is None:
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            if region:
                changes["region"] = check_region(region, "AWS_REGION")
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]


_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_URL = re.compile(r"^https?://[^/\s:]+(:\d{1,5})?(/\S*)?$")


def check_endpoint_url(url: str | None, name: str = "--endpoint-url") -> str | None:
    """An S3 endpoint must be an http:// or https:// URL (``localhost:9000`` is not)."""
    if url is None:
        return None
    if not _URL.match(url):
        raise UsageError(
            f"{name} {url!r} is not an http:// or https:// URL",
            f"write it like http://{url}" if "://" not in url else "",
        )
    return url


def check_region(region: str | None, name: str = "--region") -> str | None:
    """An AWS region name (``eu-west-1``); ``us east`` is refused before any request."""
    if region is None:
        return None
    if not _REGION.match(region):
        raise UsageError(f"{name} {region!r} is not an AWS region name", "e.g. eu-west-1")
    return region


@dataclass(frozen=True)
class TransferOptions:
    """Tunables of a transfer queue.

    ``parts_in_flight`` caps the part buffers one file holds (reading, waiting or uploading),
    so one file's memory is at most ``part_size × parts_in_flight``; ``memory_budget`` caps
    all buffers of all files together.
    """

    part_size: int = 8 * MiB
    parts_in_flight: int = 8
    memory_budget: int = 512 * MiB
    # 32 reads, 64 uploads and 128 files, not 16/32/64: with more small files in flight each
    # turn of the event loop and each SSH write serve more of them. 2,000 × 64 KiB from
    # OpenSSH into SeaweedFS on loopback: 705 → 761 files/s (medians of 4 interleaved runs),
    # CPU per file 1.19 → 1.15 ms (bench/NOTES.md, seventh session).
    sftp_concurrency: int = 32
    s3_concurrency: int = 64
    # On a far host a small file is ~3 round trips of open, read and the unchanged-check,
    # so files in flight cap files/s (Little's law): 32 → 64 took 2,000 × 64 KiB at 50 ms
    # from 169 to 226–233 files/s. Memory stays within memory_budget either way: buffers
    # are taken from the pool.
    files_in_flight: int = 128
    conflict: ConflictPolicy = ConflictPolicy.OVERWRITE
    attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    verify: bool = True
    sha256_metadata: bool = False  # multipart too: x-amz-meta-sha256 by a server-side copy
    sftp_block_size: int = 0
    sftp_requests: int = 0
    # One upload attempt of a part or small file (botocore's own retries included) may take
    # this long; 0 = 120 s + 1 s per MiB. Bounds a stalled S3, which socket timeouts miss
    # while the request body is being sent.
    upload_timeout_seconds: float = 0.0
    checksum: ChecksumChoice = ChecksumChoice.AUTO
    # Also keep each multipart upload's resume state beside its object in S3, so a run on
    # another machine (an Airflow retry on another worker) continues it: see shared_resume.
    resume_in_s3: bool = False
    #: Storage class, encryption, tags, content type and metadata of the objects written.
    object_options: ObjectOptions = field(default_factory=ObjectOptions)

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong with these options, as ``(field, message)`` pairs (empty: usable)."""
        found: list[tuple[str, str]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _POSITIVE and value <= 0:
                found.append((f.name, f"must be positive, not {value}"))
            elif f.name in _NOT_NEGATIVE and value < 0:
                found.append((f.name, f"must not be negative, not {value}"))
        if not found and self.memory_budget < self.part_size:
            found.append(
                (
                    "memory_budget",
                    f"({self.memory_budget} bytes) is smaller than one part "
                    f"({self.part_size} bytes)",
                )
            )
        return found

    def validated(self, names: Mapping[str, str] | None = None) -> TransferOptions:
        """These options, or :class:`UsageError` naming the first problem; ``names`` maps
        fields to the front's own words (``parts_in_flight`` → ``--concurrency``)."""
        problems = self.problems()
        if not problems:
            return self
        name, message = problems[0]
        shown = (names or {}).get(name, name)
        if name == "memory_budget" and "one part" in message:
            part = (names or {}).get("part_size", "part_size")
            raise UsageError(f"The memory budget {message}", f"raise {shown} or lower {part}")
        raise UsageError(f"{shown} {message}", "")


#: Fields that must be above zero / at least zero (0 means "automatic" for the latter).
_POSITIVE = frozenset(
    {
        "part_size",
        "parts_in_flight",
        "memory_budget",
        "sftp_concurrency",
        "s3_concurrency",
        "files_in_flight",
        "attempts",
    }
)
_NOT_NEGATIVE = frozenset(
    {
        "backoff_seconds",
        "backoff_max_seconds",
        "sftp_block_size",
        "sftp_requests",
        "upload_timeout_seconds",
    }
)
