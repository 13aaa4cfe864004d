"""The profile model: an SFTP source, an S3 destination and transfer defaults, checked, and
turned into the engine's endpoints and options."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..engine.addresses import S3Location, SftpLocation, parse_s3_url
from ..engine.config import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ChecksumChoice,
    ConflictPolicy,
    HostKeyPolicy,
    S3Endpoint,
    SftpEndpoint,
    TransferOptions,
)
from ..engine.errors import UsageError
from ..engine.object_options import ObjectOptions
from .secrets import Secret, _resolve

MAX_NAME_LENGTH = 64


class SftpAuth(StrEnum):
    """How to log in to the SFTP server."""

    AGENT = "agent"
    KEY = "key"
    PASSWORD = "password"


@dataclass(frozen=True)
class SftpSettings:
    """The SFTP source of a profile.

    ``password`` (auth ``password``) and ``passphrase`` (auth ``key``, for an encrypted key)
    may be None: the caller then asks the user when connecting.
    """

    host: str
    port: int = 22
    user: str | None = None
    auth: SftpAuth = SftpAuth.AGENT
    key_file: str | None = None
    passphrase: Secret | None = None
    password: Secret | None = None
    known_hosts: str | None = None
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    remote_folder: str = "/"
    # The link tunables (None: the engine's default), see SftpEndpoint.
    connections: int | None = None
    window: int | None = None  # SSH receive window, bytes
    bwlimit: int | None = None  # bytes per second, 0 = unlimited
    jump: str | None = None  # a bastion, [user@]host[:port]
    follow_symlinks: bool = False

    def link_fields(self) -> dict[str, Any]:
        """The SftpEndpoint fields these settings set (the link tunables only)."""
        values: dict[str, Any] = {"jump": self.jump, "follow_symlinks": self.follow_symlinks}
        for name, field_name in (
            ("connections", "connections"),
            ("window", "window_bytes"),
            ("bwlimit", "bwlimit_bytes_per_second"),
        ):
            if getattr(self, name) is not None:
                values[field_name] = getattr(self, name)
        return values


@dataclass(frozen=True)
class S3Settings:
    """The S3 destination of a profile; unset fields fall through to the AWS chain."""

    aws_profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    region: str | None = None
    endpoint_url: str | None = None
    path_style: bool = False
    verify_tls: bool = True
    bucket: str | None = None
    prefix: str = ""
    storage_class: str | None = None
    server_side_encryption: str | None = None
    sse_kms_key_id: str | None = None
    content_type: str | None = None  # None: guessed from each file's name
    tags: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    def object_options(self) -> ObjectOptions:
        """The options of every object this destination gets (checked: UsageError)."""
        return ObjectOptions.build(
            storage_class=self.storage_class,
            sse=self.server_side_encryption,
            sse_kms_key_id=self.sse_kms_key_id,
            tags=dict(self.tags),
            content_type=self.content_type,
            metadata=dict(self.metadata),
        )


@dataclass(frozen=True)
class TransferDefaults:
    """Transfer tunables a profile overrides; None keeps the engine's default."""

    part_size: int | None = None
    memory_budget: int | None = None
    parts_in_flight: int | None = None
    sftp_concurrency: int | None = None
    s3_concurrency: int | None = None
    conflict: ConflictPolicy | None = None
    checksum: ChecksumChoice | None = None


@dataclass(frozen=True)
class NotifySettings:
    """Who hears of a copy or watch run with this profile: a healthchecks-style hook URL,
    which pings it gets, and the drops a watch expects (``[COUNT] GLOB by WHEN [ZONE]``)."""

    hook_url: str | None = None
    notify_on: str | None = None  # late,fail,success
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliverySettings:
    """How an S3 → SFTP delivery to this profile's server is checked before each file is
    renamed into place (``[delivery]``, as ``--verify-readback`` / ``--verify-server-hash``).

    Kept with the profile because the choice belongs to the partner: a server known to
    truncate or corrupt writes gets a read-back, a ProFTPD one can hash the file itself."""

    verify_readback: bool = False  # read the temporary file back, compare its SHA-256
    verify_server_hash: bool = False  # ask the server for the file's SHA-256


#: SftpEndpoint link field → the profile's field name.
_LINK_NAMES = {"window_bytes": "window", "bwlimit_bytes_per_second": "bwlimit"}

_NAME = re.compile(r"^\w[\w .@+-]*$")


@dataclass(frozen=True)
class Profile:
    """A named connection profile: SFTP source, S3 destination, transfer defaults, hooks,
    and how deliveries (S3 → SFTP) to the server are checked."""

    name: str
    sftp: SftpSettings
    s3: S3Settings = field(default_factory=S3Settings)
    transfer: TransferDefaults = field(default_factory=TransferDefaults)
    notify: NotifySettings = field(default_factory=NotifySettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    def normalized(self) -> Profile:
        """A copy with text fields stripped and blank ones back at their default (None),
        as a form's empty inputs would be meant."""

        def clean(settings: Any) -> Any:
            changes: dict[str, Any] = {}
            for f in fields(settings):
                value = getattr(settings, f.name)
                if type(value) is str:  # not the StrEnum choices
                    value = value.strip()
                    if not value and f.default is not MISSING:
                        value = f.default
                    changes[f.name] = value
            return replace(settings, **changes)

        return replace(
            self,
            name=self.name.strip(),
            sftp=clean(self.sftp),
            s3=clean(self.s3),
            transfer=clean(self.transfer),
            notify=clean(self.notify),
        )

    def describe(self) -> str:
        """One line for lists: ``sftp://etl@host:2222/exports → s3://landing/in/``."""
        destination = self.default_destination()
        where = str(destination) if destination else self.s3.endpoint_url or "s3"
        return f"{self.default_source()} → {where}"

    def secrets_to_ask(self) -> list[str]:
        """Secret fields the user must type when connecting (password auth, none stored).

        An encrypted key without a stored passphrase is only found out when it is loaded.
        """
        if self.sftp.auth is SftpAuth.PASSWORD and self.sftp.password is None:
            return ["sftp.password"]
        return []

    def secrets(self) -> dict[str, Secret | None]:
        """Every secret field by id (``sftp.password`` …)."""
        return {
            "sftp.password": self.sftp.password,
            "sftp.passphrase": self.sftp.passphrase,
            "s3.secret_access_key": self.s3.secret_access_key,
        }

    def with_secret(self, field_id: str, secret: Secret | None) -> Profile:
        """A copy with one secret field (by id) replaced."""
        changes: dict[str, Any] = {field_id.split(".")[1]: secret}
        if field_id.startswith("sftp."):
            return replace(self, sftp=replace(self.sftp, **changes))
        return replace(self, s3=replace(self.s3, **changes))

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(field, message)`` pairs; empty when the profile is usable."""
        problems: list[tuple[str, str]] = []
        name_problem = _check_name(self.name)
        if name_problem:
            problems.append(("name", name_problem))
        sftp, s3, transfer = self.sftp, self.s3, self.transfer
        if not sftp.host.strip():
            problems.append(("sftp.host", "is required"))
        if not 1 <= sftp.port <= 65535:
            problems.append(("sftp.port", "must be from 1 to 65535"))
        if sftp.auth is SftpAuth.KEY and not sftp.key_file:
            problems.append(("sftp.key_file", "is required when auth is 'key'"))
        for key, needs in (("key_file", SftpAuth.KEY), ("passphrase", SftpAuth.KEY)):
            if getattr(sftp, key) is not None and sftp.auth is not needs:
                problems.append((f"sftp.{key}", f"is only used when auth is '{needs}'"))
        if sftp.password is not None and sftp.auth is not SftpAuth.PASSWORD:
            problems.append(("sftp.password", "is only used when auth is 'password'"))
        if not sftp.remote_folder.startswith("/"):
            problems.append(("sftp.remote_folder", "must be an absolute path (start with /)"))
        link = SftpEndpoint(host=sftp.host or "-", **sftp.link_fields())
        for key, message in link.link_problems():
            problems.append((f"sftp.{_LINK_NAMES.get(key, key)}", message))
        if s3.access_key_id and s3.secret_access_key is None:
            problems.append(("s3.secret_access_key", "is required with access_key_id"))
        if s3.secret_access_key is not None and not s3.access_key_id:
            problems.append(("s3.access_key_id", "is required with secret_access_key"))
        if s3.aws_profile and s3.access_key_id:
            problems.append(("s3.aws_profile", "choose an AWS profile or access keys, not both"))
        if s3.endpoint_url and not re.match(r"^https?://[^/\s]+", s3.endpoint_url):
            problems.append(("s3.endpoint_url", "must be an http:// or https:// URL"))
        if s3.prefix and not s3.bucket:
            problems.append(("s3.bucket", "is required when a prefix is set"))
        if s3.bucket:
            try:
                parse_s3_url(f"s3://{s3.bucket}/{s3.prefix}")
            except UsageError as exc:
                problems.append(("s3.bucket" if not s3.prefix else "s3.prefix", str(exc)))
        try:
            s3.object_options()
        except UsageError as exc:
            words = {
                "storage class": "storage_class",
                "encryption": "server_side_encryption",
                "KMS": "sse_kms_key_id",
                "Tag": "tags",
                "tags": "tags",
            }
            name = next((f for w, f in words.items() if w in exc.message), "metadata")
            problems.append((f"s3.{name}", exc.message))
        if transfer.part_size is not None and not (
            MIN_PART_SIZE <= transfer.part_size <= MAX_PART_SIZE
        ):
            problems.append(("transfer.part_size", "must be from 5MiB to 5GiB"))
        # The engine's own rule (the one every front applies), in the profile's words.
        for key, message in self.transfer_options().problems():
            problems.append((f"transfer.{key}", message))
        return problems

    def sftp_endpoint(
        self, *, password: str | None = None, passphrase: str | None = None
    ) -> SftpEndpoint:
        """The engine's SFTP endpoint, resolving secret references now.

        ``password`` / ``passphrase`` (typed at a prompt) win over stored ones. Raises
        :class:`ConfigError` when a referenced env var or keyring entry is missing.
        """
        sftp = self.sftp
        identity_files: tuple[str, ...] = ()
        if sftp.auth is SftpAuth.KEY and sftp.key_file:
            identity_files = (str(Path(sftp.key_file).expanduser()),)
            passphrase = passphrase or _resolve(sftp.passphrase, self.name, "sftp.passphrase")
        else:
            passphrase = None
        if sftp.auth is SftpAuth.PASSWORD:
            password = password or _resolve(sftp.password, self.name, "sftp.password")
        else:
            password = None
        return SftpEndpoint(
            host=sftp.host,
            port=sftp.port,
            username=sftp.user,
            password=password,
            identity_files=identity_files,
            passphrase=passphrase,
            use_agent=sftp.auth is SftpAuth.AGENT,
            known_hosts=str(Path(sftp.known_hosts).expanduser()) if sftp.known_hosts else None,
            host_key_policy=sftp.host_key_policy,
            **sftp.link_fields(),
        )

    def s3_endpoint(self) -> S3Endpoint:
        """The engine's S3 endpoint, resolving the secret key reference now; an unset
        endpoint URL or region comes from the AWS variables, as in every front."""
        s3 = self.s3
        return S3Endpoint(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            profile=s3.aws_profile,
            access_key_id=s3.access_key_id,
            secret_access_key=_resolve(s3.secret_access_key, self.name, "s3.secret_access_key"),
            path_style=s3.path_style,
            verify_tls=s3.verify_tls,
            storage_class=s3.storage_class,
            server_side_encryption=s3.server_side_encryption,
        ).with_env_defaults(os.environ)

    def transfer_options(self, base: TransferOptions | None = None) -> TransferOptions:
        """``base`` (default: engine defaults) with this profile's transfer defaults applied."""
        overrides = {
            f.name: getattr(self.transfer, f.name)
            for f in fields(self.transfer)
            if getattr(self.transfer, f.name) is not None
        }
        with contextlib.suppress(UsageError):  # validate() reports invalid object options
            overrides["object_options"] = self.s3.object_options()
        return replace(base or TransferOptions(), **overrides)

    def default_source(self) -> SftpLocation:
        """The SFTP folder to open first (port left out when it is 22)."""
        sftp = self.sftp
        port = sftp.port if sftp.port != 22 else None
        return SftpLocation(host=sftp.host, path=sftp.remote_folder, port=port, username=sftp.user)

    def default_destination(self) -> S3Location | None:
        """The bucket and prefix to land files in, if the profile names a bucket."""
        if not self.s3.bucket:
            return None
        return parse_s3_url(f"s3://{self.s3.bucket}/{self.s3.prefix}")


def _check_name(name: str) -> str | None:
    if not name or not _NAME.match(name) or name != name.strip():
        return (
            "a profile name uses letters, digits, spaces and . _ @ + - "
            "(no '/'), and does not start or end with a space"
        )
    if len(name) > MAX_NAME_LENGTH:
        return f"a profile name has at most {MAX_NAME_LENGTH} characters"
    return None
