"""Connection endpoints and transfer options: the engine's whole configuration surface."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

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


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to log in to an SFTP server."""

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
    sftp_concurrency: int = 16
    s3_concurrency: int = 32
    files_in_flight: int = 32
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
