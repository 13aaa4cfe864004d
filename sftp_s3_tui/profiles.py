"""Saved connection profiles: an SFTP source, an S3 destination and transfer defaults.

Profiles live in one TOML file in the user config dir (``paths.profiles_file()``), mode 0600.
Secrets are never written to it: a secret field holds a reference, ``keyring:`` (the value is
in the system keyring, service ``sftp-s3-tui``, user ``<profile>/<field>``) or ``env:VARNAME``
(read from the environment when the profile is used), or is absent (ssh-agent, AWS profile or
credential chain). A literal secret typed into a profile moves into the keyring when the
profile is saved; without a working keyring the save fails and says what to do instead.

The file may be edited by hand. A file that is not valid TOML is reported with its line and
never overwritten; a profile with a bad field is reported with its line and field, the other
profiles stay usable, and the bad profile's table is written back untouched on the next save.
"""

from __future__ import annotations

import configparser
import getpass
import logging
import os
import re
import shlex
import tomllib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, cast

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import tomli_w

from . import paths
from .engine.atomic import atomic_write
from .engine.config import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ConflictPolicy,
    HostKeyPolicy,
    S3Endpoint,
    SftpEndpoint,
    TransferOptions,
)
from .engine.errors import ConfigError, UsageError
from .engine.locations import S3Location, SftpLocation, parse_s3_url, parse_size
from .redaction import RedactingFilter, install_log_redaction, redact, register_secret

__all__ = [
    "KEYRING_SERVICE",
    "SECRET_FIELDS",
    "AwsProfile",
    "LoadResult",
    "Profile",
    "ProfileError",
    "ProfileStore",
    "RedactingFilter",
    "S3Settings",
    "Secret",
    "SecretKind",
    "SftpAuth",
    "SftpSettings",
    "SshHost",
    "TransferDefaults",
    "import_aws_profiles",
    "import_ssh_config",
    "install_log_redaction",
    "keyring_available",
    "redact",
]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "sftp-s3-tui"
FORMAT_VERSION = 1
MAX_NAME_LENGTH = 64

_FILE_HEADER = """\
# sftp-s3-tui connection profiles. Written by sftp-s3-tui (comments are not kept).
# Secrets are never stored here: a secret field holds "keyring:" (system keyring, service
# "sftp-s3-tui", user "<profile>/<field>") or "env:VARNAME" (read from the environment).

"""

# Secret fields, as "<section>.<key>", with the words used for them in messages.
SECRET_FIELDS: dict[str, str] = {
    "sftp.password": "the SFTP password",
    "sftp.passphrase": "the SSH key passphrase",
    "s3.secret_access_key": "the S3 secret access key",
}


# ---------------------------------------------------------------------------------------------
# Secrets


class SecretKind(StrEnum):
    """Where a secret's value comes from."""

    KEYRING = "keyring"
    ENV = "env"
    LITERAL = "literal"


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Secret:
    """A secret field of a profile: a reference (keyring, env) or, until saved, a literal.

    Only references are written to disk. Build one with :meth:`in_keyring`,
    :meth:`from_env`, :meth:`literal` or :meth:`parse`.
    """

    kind: SecretKind
    env_var: str | None = None
    value: str | None = field(default=None, repr=False)

    @classmethod
    def in_keyring(cls) -> Secret:
        """The value is in the system keyring under the profile's name and the field."""
        return cls(SecretKind.KEYRING)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """The value is read from environment variable ``name`` when the profile is used."""
        if not _ENV_NAME.match(name):
            raise ConfigError(
                f"Not an environment variable name: {name!r}",
                "use letters, digits and underscores, not starting with a digit",
            )
        return cls(SecretKind.ENV, env_var=name)

    @classmethod
    def literal(cls, value: str) -> Secret:
        """A value typed by the user; saving the profile moves it into the keyring."""
        register_secret(value)
        return cls(SecretKind.LITERAL, value=value)

    @classmethod
    def parse(cls, reference: str) -> Secret:
        """Parse a stored reference, ``keyring:`` or ``env:VARNAME``.

        Anything else is refused without echoing it: it may be a secret pasted by hand.
        """
        if reference == "keyring:":
            return cls.in_keyring()
        if reference.startswith("env:") and _ENV_NAME.match(reference[4:]):
            return cls.from_env(reference[4:])
        raise ConfigError(
            "must be a reference, 'keyring:' or 'env:VARNAME', never the secret itself",
            "remove the value from the file and set the secret in the app, or use env:VARNAME",
        )

    @property
    def reference(self) -> str:
        """The text stored in the profile file."""
        if self.kind is SecretKind.KEYRING:
            return "keyring:"
        if self.kind is SecretKind.ENV:
            return f"env:{self.env_var}"
        raise ConfigError("A literal secret has no stored form", "save it to the keyring first")

    def __str__(self) -> str:
        return "(unsaved secret)" if self.kind is SecretKind.LITERAL else self.reference


def keyring_available() -> bool:
    """Whether a system keyring backend is usable here (False on most headless Linux)."""
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    return not isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring)


def _keyring_user(profile: str, field_id: str) -> str:
    return f"{profile}/{field_id}"


def _no_keyring(profile: str, field_id: str, detail: str = "") -> ConfigError:
    what = SECRET_FIELDS[field_id]
    because = f" ({detail})" if detail else ""
    return ConfigError(
        f"No working system keyring to store {what} of profile {profile!r}{because}; "
        "sftp-s3-tui never writes secrets to the profile file",
        f"put the secret in an environment variable and set the field to env:VARNAME"
        f"{', or use ssh-agent' if field_id.startswith('sftp.') else ', or use an AWS profile'}",
    )


def _keyring_set(profile: str, field_id: str, value: str) -> None:
    """Store a secret and read it back, so a backend that silently drops it is caught."""
    if not keyring_available():
        raise _no_keyring(profile, field_id)
    user = _keyring_user(profile, field_id)
    try:
        keyring.set_password(KEYRING_SERVICE, user, value)
        stored = keyring.get_password(KEYRING_SERVICE, user)
    except Exception as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", [value])
        raise _no_keyring(profile, field_id, detail) from None
    if stored != value:
        raise _no_keyring(profile, field_id, "the keyring did not keep the value")


def _keyring_get(profile: str, field_id: str) -> str | None:
    try:
        return keyring.get_password(KEYRING_SERVICE, _keyring_user(profile, field_id))
    except Exception as exc:
        raise ConfigError(
            f"Cannot read {SECRET_FIELDS[field_id]} of profile {profile!r} from the system "
            f"keyring ({type(exc).__name__})",
            "unlock the keyring, or set the field to env:VARNAME",
        ) from None


def _keyring_delete(profile: str, field_id: str) -> None:
    """Remove a keyring entry if it exists; failures are logged, not raised."""
    if not keyring_available():
        return  # no keyring here, so no entry to remove
    try:
        keyring.delete_password(KEYRING_SERVICE, _keyring_user(profile, field_id))
    except keyring.errors.PasswordDeleteError:
        pass
    except Exception as exc:
        log.warning(
            "Could not delete keyring entry %s/%s (%s)",
            KEYRING_SERVICE,
            _keyring_user(profile, field_id),
            type(exc).__name__,
        )


def _check_keyring_entries(profile: Profile, known: set[str]) -> None:
    """Refuse ``keyring:`` references that point at nothing (e.g. a profile saved under a
    new name instead of renamed); fields in ``known`` were already stored that way."""
    for field_id, secret in profile.secrets().items():
        if secret is None or secret.kind is not SecretKind.KEYRING or field_id in known:
            continue
        if not keyring_available() or _keyring_get(profile.name, field_id) is None:
            raise ConfigError(
                f"Profile {profile.name!r} not saved: {SECRET_FIELDS[field_id]} is set to "
                f"'keyring:' but the keyring has no entry "
                f"{KEYRING_SERVICE} / {_keyring_user(profile.name, field_id)}",
                "enter the secret so it can be stored, or use env:VARNAME "
                "(use rename or duplicate to give a profile a new name)",
            )


def _resolve(secret: Secret | None, profile: str, field_id: str) -> str | None:
    """The value of a secret field now: from the keyring, the environment or the literal."""
    if secret is None:
        return None
    what = SECRET_FIELDS[field_id]
    if secret.kind is SecretKind.LITERAL:
        value = secret.value
    elif secret.kind is SecretKind.ENV:
        value = os.environ.get(secret.env_var or "")
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise ConfigError(
                f"Profile {profile!r} takes {what} from the environment variable "
                f"{secret.env_var}, which {state}",
                f"set {secret.env_var} before starting sftp-s3-tui, or edit the profile",
            )
    else:
        if not keyring_available():
            raise ConfigError(
                f"Profile {profile!r} keeps {what} in the system keyring, but no keyring is "
                "available here",
                "set the field to env:VARNAME for this machine, or run where the keyring is",
            )
        value = _keyring_get(profile, field_id)
        if value is None:
            raise ConfigError(
                f"Profile {profile!r} keeps {what} in the system keyring, but the entry "
                f"{KEYRING_SERVICE} / {_keyring_user(profile, field_id)} is missing",
                "edit the profile and enter the secret again, or set it to env:VARNAME",
            )
    register_secret(value)
    return value


# ---------------------------------------------------------------------------------------------
# Profiles


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


@dataclass(frozen=True)
class TransferDefaults:
    """Transfer tunables a profile overrides; None keeps the engine's default."""

    part_size: int | None = None
    memory_budget: int | None = None
    parts_in_flight: int | None = None
    sftp_concurrency: int | None = None
    s3_concurrency: int | None = None
    conflict: ConflictPolicy | None = None


_NAME = re.compile(r"^\w[\w .@+-]*$")


@dataclass(frozen=True)
class Profile:
    """A named connection profile: SFTP source, S3 destination, transfer defaults."""

    name: str
    sftp: SftpSettings
    s3: S3Settings = field(default_factory=S3Settings)
    transfer: TransferDefaults = field(default_factory=TransferDefaults)

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
        )

    def s3_endpoint(self) -> S3Endpoint:
        """The engine's S3 endpoint, resolving the secret key reference now."""
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
        )

    def transfer_options(self, base: TransferOptions | None = None) -> TransferOptions:
        """``base`` (default: engine defaults) with this profile's transfer defaults applied."""
        overrides = {
            f.name: getattr(self.transfer, f.name)
            for f in fields(self.transfer)
            if getattr(self.transfer, f.name) is not None
        }
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


# ---------------------------------------------------------------------------------------------
# TOML mapping


class _Invalid(Exception):
    """A field value that cannot be used; the message says why."""


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be a non-empty string")
    return value


def _any_text(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    return value


def _port(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise _Invalid("must be an integer from 1 to 65535")
    return value


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Invalid("must be an integer of at least 1")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        try:
            return parse_size(value)
        except UsageError:
            pass
    raise _Invalid('must be a size such as "64MiB" or a number of bytes')


def _choice(enum: type[StrEnum]) -> Callable[[object], StrEnum]:
    def convert(value: object) -> StrEnum:
        allowed = [member.value for member in enum]
        if not isinstance(value, str) or value not in allowed:
            raise _Invalid("must be one of " + ", ".join(repr(a) for a in allowed))
        return enum(value)

    return convert


def _secret(value: object) -> Secret:
    if not isinstance(value, str):
        raise _Invalid("must be a reference string, 'keyring:' or 'env:VARNAME'")
    try:
        return Secret.parse(value)
    except ConfigError as exc:
        register_secret(value)  # it may be a real secret typed into the file
        raise _Invalid(str(exc)) from None


_Converter = Callable[[object], object]

_SCHEMA: dict[str, tuple[type, dict[str, _Converter]]] = {
    "sftp": (
        SftpSettings,
        {
            "host": _text,
            "port": _port,
            "user": _text,
            "auth": _choice(SftpAuth),
            "key_file": _text,
            "passphrase": _secret,
            "password": _secret,
            "known_hosts": _text,
            "host_key_policy": _choice(HostKeyPolicy),
            "remote_folder": _text,
        },
    ),
    "s3": (
        S3Settings,
        {
            "aws_profile": _text,
            "access_key_id": _text,
            "secret_access_key": _secret,
            "region": _text,
            "endpoint_url": _text,
            "path_style": _flag,
            "verify_tls": _flag,
            "bucket": _text,
            "prefix": _any_text,
            "storage_class": _text,
            "server_side_encryption": _text,
        },
    ),
    "transfer": (
        TransferDefaults,
        {
            "part_size": _size,
            "memory_budget": _size,
            "parts_in_flight": _count,
            "sftp_concurrency": _count,
            "s3_concurrency": _count,
            "conflict": _choice(ConflictPolicy),
        },
    ),
}

_SIZE_FIELDS = {"part_size", "memory_budget"}
_SIZE_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def _size_text(count: int) -> str | int:
    """``67108864`` → ``"64MiB"``; sizes that are not whole units stay integers."""
    for unit, factor in _SIZE_UNITS:
        if count % factor == 0:
            return f"{count // factor}{unit}"
    return count


def _profile_from_table(name: str, table: object) -> tuple[Profile | None, list[tuple[str, str]]]:
    """Build a profile from its TOML table, or return every problem found in it."""
    if not isinstance(table, dict):
        return None, [("", "must be a table ([profiles.NAME] with sftp, s3, transfer)")]
    problems: list[tuple[str, str]] = []
    name_problem = _check_name(name)
    if name_problem:
        problems.append(("", name_problem))
    for key in table:
        if key not in _SCHEMA:
            problems.append((key, "unknown section (expected sftp, s3 or transfer)"))
    sections: dict[str, Any] = {}
    for section, (cls, converters) in _SCHEMA.items():
        raw = table.get(section, {})
        if not isinstance(raw, dict):
            problems.append((section, "must be a table"))
            continue
        values: dict[str, object] = {}
        for key, value in raw.items():
            converter = converters.get(key)
            if converter is None:
                known = ", ".join(converters)
                problems.append((f"{section}.{key}", f"unknown field (known: {known})"))
                continue
            try:
                values[key] = converter(value)
            except _Invalid as exc:
                problems.append((f"{section}.{key}", str(exc)))
        if section == "sftp" and "host" not in raw:
            problems.append(("sftp.host", "is required"))
            continue
        if not any(f.startswith(f"{section}.") for f, _ in problems):
            sections[section] = cls(**values)
    if problems:
        return None, problems
    profile = Profile(name=name, **sections).normalized()
    problems = [(f, m) for f, m in profile.validate() if f != "name"]
    return (None, problems) if problems else (profile, [])


def _profile_to_table(profile: Profile) -> dict[str, Any]:
    """The TOML table of a profile whose secrets are all references."""
    table: dict[str, Any] = {}
    for section in _SCHEMA:
        values: dict[str, Any] = {}
        settings = getattr(profile, section)
        for f in fields(settings):
            value = getattr(settings, f.name)
            if value is None or value == f.default:
                continue  # unset or default: the file shows only what was chosen
            if isinstance(value, Secret):
                value = value.reference
            elif isinstance(value, StrEnum):
                value = value.value
            elif f.name in _SIZE_FIELDS:
                value = _size_text(value)
            values[f.name] = value
        if values:
            table[section] = values
    return table


def _keyring_fields(table: object) -> list[str]:
    """Secret fields of a raw profile table that point at the keyring."""
    found = []
    if isinstance(table, dict):
        for field_id in SECRET_FIELDS:
            section, key = field_id.split(".")
            values = table.get(section)
            if isinstance(values, dict) and values.get(key) == "keyring:":
                found.append(field_id)
    return found


def _key_path(text: str) -> list[str] | None:
    """Split a TOML (dotted, maybe quoted) key into its parts by letting tomllib parse it."""
    try:
        node: Any = tomllib.loads(f"{text} = 0")
    except tomllib.TOMLDecodeError:
        return None
    parts = []
    while isinstance(node, dict) and len(node) == 1:
        key, node = next(iter(node.items()))
        parts.append(key)
    return parts


_TABLE_HEADER = re.compile(r"^\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")


def _locate(text: str, target: list[str]) -> int | None:
    """Best-effort line number of a key path in TOML text (tomllib reports none)."""
    table: list[str] = []
    fallback: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _TABLE_HEADER.match(stripped)
        if header:
            table = _key_path(header.group(1)) or []
            if table[: len(target)] == target:
                return number
            if table and table == target[: len(table)]:
                fallback = number
            continue
        key, equals, _ = stripped.partition("=")
        if not equals:
            continue
        full = table + (_key_path(key.strip()) or [])
        if len(full) > len(table) and full == target[: len(full)]:
            return number
    return fallback


def _salvage(text: str) -> tuple[dict[str, Any], list[str]]:
    """Profile tables from a file that is not valid TOML as a whole, and the names skipped.

    Each profile's lines (from its ``[profiles.NAME…]`` headers to the next profile's) are
    parsed alone, so one broken profile does not hide the others.
    """
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        header = _TABLE_HEADER.match(line.strip())
        if header:
            path = _key_path(header.group(1)) or []
            current = path[1] if len(path) >= 2 and path[0] == "profiles" else None
        if current is not None:
            blocks.setdefault(current, []).append(line)
    tables: dict[str, Any] = {}
    skipped: list[str] = []
    for name, lines in blocks.items():
        try:
            tables[name] = tomllib.loads("\n".join(lines))["profiles"][name]
        except (tomllib.TOMLDecodeError, KeyError, TypeError):
            skipped.append(name)
    return tables, skipped


# ---------------------------------------------------------------------------------------------
# The store


class ProfileError(ConfigError):
    """A problem in the profile file, located by line, profile and field where known."""

    title = "Profile problem"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
        profile: str | None = None,
        field: str | None = None,
    ) -> None:
        where = [str(path)] if path else []
        if line:
            where.append(f"line {line}" + (f", column {column}" if column else ""))
        if profile is not None:
            where.append(f"profile {profile!r}")
        if field:
            where.append(field)
        super().__init__(f"{', '.join(where)}: {message}" if where else message, hint)
        self.path = path
        self.line = line
        self.column = column
        self.profile = profile
        self.field = field


class LoadResult(NamedTuple):
    """What :meth:`ProfileStore.load` found: usable profiles, and problems to show."""

    profiles: dict[str, Profile]
    problems: list[ProfileError]


@dataclass
class _FileState:
    """The profile file as read: raw tables (kept for writing back) and their meaning."""

    tables: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    problems: list[ProfileError] = field(default_factory=list)
    fatal: ProfileError | None = None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_FIX_HINT = "fix the file in an editor, then reload"


class ProfileStore:
    """Load and change the profile file; every change re-reads it and writes atomically.

    Changes are refused while the file cannot be parsed, so a hand edit is never lost.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else paths.profiles_file()
        self.profiles: dict[str, Profile] = {}
        self.problems: list[ProfileError] = []
        self._loaded = False

    def load(self) -> LoadResult:
        """Read the file: usable profiles and a list of problems (never raises for content)."""
        state = self._read()
        self.profiles = state.profiles
        self.problems = ([state.fatal] if state.fatal else []) + state.problems
        self._loaded = True
        log.debug(
            "Loaded %d profiles (%d problems) from %s",
            len(self.profiles),
            len(self.problems),
            self.path,
        )
        return LoadResult(dict(self.profiles), list(self.problems))

    def get(self, name: str) -> Profile:
        """A usable profile by name (as of the last :meth:`load`, which runs if none has)."""
        if not self._loaded:
            self.load()
        if name in self.profiles:
            return self.profiles[name]
        found = [p for p in self.problems if p.profile == name]
        if found:
            raise ConfigError(f"Profile {name!r} cannot be used: {found[0].message}", _FIX_HINT)
        raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")

    def save(self, profile: Profile, *, overwrite: bool = True) -> Profile:
        """Create or replace a profile; literal secrets move into the keyring first.

        Returns the profile as stored (literal secrets replaced by ``keyring:``). Raises
        :class:`ConfigError` when the profile is invalid, the file cannot be parsed, the name
        is taken (``overwrite=False``), or a literal secret cannot go to a keyring.
        """
        profile = profile.normalized()
        problems = profile.validate()
        if problems:
            detail = "; ".join(f"{f}: {m}" for f, m in problems)
            raise ConfigError(f"Profile {profile.name!r} not saved: {detail}", "correct it")
        state = self._writable_state()
        if not overwrite and profile.name in state.tables:
            raise ConfigError(
                f"A profile named {profile.name!r} already exists", "choose another name"
            )
        literals = {
            field_id: secret.value or ""
            for field_id, secret in profile.secrets().items()
            if secret is not None and secret.kind is SecretKind.LITERAL
        }
        stored = profile
        for field_id in literals:
            stored = stored.with_secret(field_id, Secret.in_keyring())
        table = _profile_to_table(stored)
        reloaded, problems = _profile_from_table(stored.name, table)
        if reloaded != stored:  # whatever is saved must load back the same
            detail = "; ".join(f"{f}: {m}" for f, m in problems) or "it would not load back"
            raise ConfigError(f"Profile {profile.name!r} not saved: {detail}", "correct it")
        old_keyring = _keyring_fields(state.tables.get(profile.name))
        _check_keyring_entries(stored, set(old_keyring) | set(literals))
        if literals and not keyring_available():
            raise _no_keyring(profile.name, next(iter(literals)))
        try:
            for field_id, value in literals.items():
                _keyring_set(profile.name, field_id, value)
            self._write(state, {**state.tables, profile.name: table})
        except BaseException:
            # New entries would be orphans; a replaced entry stays (the old value is gone).
            for field_id in set(literals) - set(old_keyring):
                _keyring_delete(profile.name, field_id)
            raise
        for field_id in set(old_keyring) - set(_keyring_fields(table)):
            _keyring_delete(profile.name, field_id)
        log.info("Saved profile %r to %s", profile.name, self.path)
        return stored

    def delete(self, name: str) -> None:
        """Remove a profile and its keyring entries."""
        state = self._writable_state()
        if name not in state.tables:
            raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")
        tables = dict(state.tables)
        table = tables.pop(name)
        self._write(state, tables)
        for field_id in _keyring_fields(table):
            _keyring_delete(name, field_id)
        log.info("Deleted profile %r from %s", name, self.path)

    def rename(self, name: str, new_name: str) -> Profile | None:
        """Rename a profile, moving its keyring entries; returns it if it is usable."""
        self._copy(name, new_name, move=True)
        return self.profiles.get(new_name)

    def duplicate(self, name: str, new_name: str) -> Profile | None:
        """Copy a profile under a new name, copying its keyring entries."""
        self._copy(name, new_name, move=False)
        return self.profiles.get(new_name)

    # -- internals ----------------------------------------------------------------------------

    def _copy(self, name: str, new_name: str, *, move: bool) -> None:
        name_problem = _check_name(new_name)
        if name_problem:
            raise ConfigError(f"Cannot use {new_name!r} as a profile name", name_problem)
        state = self._writable_state()
        if name not in state.tables:
            raise ConfigError(f"No profile named {name!r}", f"saved profiles are in {self.path}")
        if new_name in state.tables:
            raise ConfigError(f"A profile named {new_name!r} already exists", "choose another")
        table = state.tables[name]
        in_keyring = _keyring_fields(table)
        tables = {(new_name if key == name and move else key): t for key, t in state.tables.items()}
        tables[new_name] = table
        copied: list[str] = []
        try:
            for field_id in in_keyring:
                value = _keyring_get(name, field_id) if keyring_available() else None
                if value is None:
                    continue  # nothing to carry over; resolving will say the entry is missing
                register_secret(value)
                _keyring_set(new_name, field_id, value)
                copied.append(field_id)
            self._write(state, tables)
        except BaseException:
            for field_id in copied:
                _keyring_delete(new_name, field_id)
            raise
        if move:
            for field_id in in_keyring:
                _keyring_delete(name, field_id)
        verb = "Renamed" if move else "Duplicated"
        log.info("%s profile %r as %r in %s", verb, name, new_name, self.path)

    def _writable_state(self) -> _FileState:
        state = self._read()
        if state.fatal:
            raise ConfigError(
                f"Not changing the profile file: {state.fatal.message}",
                "the file is kept as it is so no hand edit is lost; fix it in an editor "
                "(or move it aside to start afresh), then try again",
            )
        return state

    def _read(self) -> _FileState:
        state = _FileState()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return state
        except UnicodeDecodeError:
            state.fatal = ProfileError("is not UTF-8 text", _FIX_HINT, path=self.path)
            return state
        except OSError as exc:
            state.fatal = ProfileError(
                f"cannot be read ({exc.strerror})", "check its permissions", path=self.path
            )
            return state
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            line: int | None = getattr(exc, "lineno", None)  # Python 3.14+
            column: int | None = getattr(exc, "colno", None)
            position = _TOML_POSITION.search(message)
            if position:
                line, column = int(position.group(1)), int(position.group(2))
                message = message[: position.start()]
            state.fatal = ProfileError(
                f"not valid TOML: {message}", _FIX_HINT, path=self.path, line=line, column=column
            )
            salvaged, skipped = _salvage(text)
            self._check_profiles(state, text, salvaged)
            for name in skipped:
                state.problems.append(
                    ProfileError(
                        "skipped until the file is valid TOML again",
                        _FIX_HINT,
                        path=self.path,
                        line=_locate(text, ["profiles", name]),
                        profile=name,
                    )
                )
            return state
        version = document.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            state.fatal = ProfileError(
                f"format version {version!r} is not supported (this build reads {FORMAT_VERSION})",
                "use the sftp-s3-tui version that wrote it",
                path=self.path,
                line=_locate(text, ["version"]),
            )
            return state
        profiles = document.get("profiles", {})
        if not isinstance(profiles, dict):
            state.fatal = ProfileError(
                "'profiles' must be a table",
                _FIX_HINT,
                path=self.path,
                line=_locate(text, ["profiles"]),
            )
            return state
        state.extra = {k: v for k, v in document.items() if k not in ("version", "profiles")}
        for key in state.extra:
            state.problems.append(
                ProfileError(
                    f"unknown top-level key {key!r} (kept as it is)",
                    _FIX_HINT,
                    path=self.path,
                    line=_locate(text, [key]),
                )
            )
        self._check_profiles(state, text, profiles)
        return state

    def _check_profiles(self, state: _FileState, text: str, profiles: dict[str, Any]) -> None:
        state.tables = dict(profiles)
        for name, table in profiles.items():
            profile, problems = _profile_from_table(name, table)
            if profile is not None:
                state.profiles[name] = profile
            for field_id, message in problems:
                target = ["profiles", name, *(field_id.split(".") if field_id else [])]
                state.problems.append(
                    ProfileError(
                        message,
                        _FIX_HINT,
                        path=self.path,
                        line=_locate(text, target),
                        profile=name,
                        field=field_id or None,
                    )
                )

    def _write(self, state: _FileState, tables: dict[str, Any]) -> None:
        document = {"version": FORMAT_VERSION, **state.extra, "profiles": tables}
        data = (_FILE_HEADER + tomli_w.dumps(document)).encode("utf-8")
        target = Path(os.path.realpath(self.path))  # keep a symlinked file a symlink
        try:
            _atomic_write(target, data)
        except OSError as exc:
            raise ConfigError(
                f"Could not save profiles to {self.path} ({exc.strerror or exc})",
                "the previous file is unchanged; check the disk and the directory's rights",
            ) from exc
        self.load()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing, 0600, in a private folder."""
    paths.ensure_private_dir(path.parent)
    atomic_write(path, data)


# ---------------------------------------------------------------------------------------------
# Imports from ~/.ssh/config and ~/.aws


@dataclass(frozen=True)
class SshHost:
    """A ``Host`` entry of an OpenSSH client config, as ssh would resolve it."""

    alias: str
    hostname: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None
    known_hosts: str | None = None

    def to_sftp_settings(self) -> SftpSettings:
        """The SFTP part of a profile: key auth with the first IdentityFile, else the agent.

        ProxyJump is not carried over (the engine does not support jump hosts yet); check
        ``proxy_jump`` and tell the user.
        """
        key_file = self.identity_files[0] if self.identity_files else None
        return SftpSettings(
            host=self.hostname,
            port=self.port or 22,
            user=self.user,
            auth=SftpAuth.KEY if key_file else SftpAuth.AGENT,
            key_file=key_file,
            known_hosts=self.known_hosts,
        )

    def to_profile(self, name: str | None = None) -> Profile:
        """A new profile (named after the alias) with this host as its source."""
        return Profile(name=name or self.alias, sftp=self.to_sftp_settings())


_SSH_KEYWORD = re.compile(r"^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$")
_MAX_INCLUDE_DEPTH = 16


def _ssh_aliases(path: Path, found: list[str], depth: int = 0) -> None:
    """Collect concrete ``Host`` aliases (no wildcards or negations), following Include."""
    if depth > _MAX_INCLUDE_DEPTH:
        return
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        match = _SSH_KEYWORD.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        keyword, rest = match.group(1).lower(), match.group(2)
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:
            continue  # asyncssh reports the bad line when the host is resolved
        if keyword == "host":
            for word in words:
                for pattern in word.split(","):
                    if pattern and not set(pattern) & set("*?!") and pattern not in found:
                        found.append(pattern)
        elif keyword == "include":
            for word in words:
                include = Path(word).expanduser()
                if not include.is_absolute():
                    include = Path.home() / ".ssh" / include
                anchor = Path(include.anchor)
                for included in sorted(anchor.glob(str(include.relative_to(anchor)))):
                    if included.is_file():
                        _ssh_aliases(included, found, depth + 1)


def import_ssh_config(path: Path | str | None = None) -> list[SshHost]:
    """Hosts of an OpenSSH client config (default ``~/.ssh/config``); wildcards skipped.

    Each alias is resolved with asyncssh's config parser, as ssh would (``Host *``
    defaults, Include, Match — including ``Match exec``, which runs its command as ssh
    does). A missing file gives an empty list.
    """
    from asyncssh.config import ConfigParseError, SSHClientConfig

    config_path = Path(path).expanduser() if path else Path.home() / ".ssh" / "config"
    if not config_path.is_file():
        return []
    aliases: list[str] = []
    _ssh_aliases(config_path, aliases)
    try:
        local_user = getpass.getuser()
    except Exception:
        local_user = ""
    hosts = []
    for alias in aliases:
        try:
            config = SSHClientConfig.load(
                None, [config_path], False, False, False, local_user, (), alias, ()
            )
        except ConfigParseError as exc:
            raise ConfigError(f"Cannot read SSH config: {exc}", "fix the file and retry") from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot read SSH config {config_path} ({exc.strerror})", "check its permissions"
            ) from None
        port = config.get("Port")
        user = config.get("User")
        identity = cast(list[str], config.get("IdentityFile") or [])
        jump = config.get("ProxyJump")
        known_hosts = cast(list[str], config.get("UserKnownHostsFile") or [])
        hosts.append(
            SshHost(
                alias=alias,
                hostname=str(config.get("Hostname") or alias),
                port=port if isinstance(port, int) else None,
                user=str(user) if user else None,
                identity_files=tuple(str(i) for i in identity if str(i).lower() != "none"),
                proxy_jump=str(jump) if jump and str(jump).lower() != "none" else None,
                known_hosts=str(known_hosts[0]) if known_hosts else None,
            )
        )
    return hosts


@dataclass(frozen=True)
class AwsProfile:
    """A named AWS profile; only its name is referenced, never its keys."""

    name: str
    region: str | None = None
    endpoint_url: str | None = None

    def to_s3_settings(self) -> S3Settings:
        """The S3 part of a profile that uses this AWS profile for credentials."""
        return S3Settings(aws_profile=self.name, region=self.region, endpoint_url=self.endpoint_url)


_INI_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")


def _read_aws_config(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return parser
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read AWS config {path} ({exc})", "check the file") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        # Never echo the offending line: it may hold a key.
        line = getattr(exc, "lineno", None)
        errors = getattr(exc, "errors", None)
        if line is None and errors:
            line = errors[0][0]
        where = f" line {line}" if line else ""
        raise ConfigError(
            f"Cannot read AWS config {path}{where}: not in INI format ({type(exc).__name__})",
            "fix the file, e.g. with `aws configure`",
        ) from None
    return parser


def _services_endpoint(parser: configparser.RawConfigParser, services: str) -> str | None:
    """``endpoint_url`` of ``s3`` in a ``[services NAME]`` section, if any."""
    section = f"services {services}"
    if not parser.has_section(section):
        return None
    for line in parser.get(section, "s3", fallback="").splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip() == "endpoint_url":
            return value.strip()
    return None


def import_aws_profiles(
    config: Path | str | None = None, credentials: Path | str | None = None
) -> list[AwsProfile]:
    """Profiles of the AWS config and credentials files (names, region, endpoint URL).

    Defaults follow the AWS CLI: ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` or
    ``~/.aws/config`` / ``~/.aws/credentials``. Only section names are taken from the
    credentials file; no key is read into a profile.
    """
    config_path = Path(config or os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    credentials_path = Path(
        credentials or os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    ).expanduser()
    parser = _read_aws_config(config_path)
    names: list[str] = []
    sections: dict[str, str] = {}
    for section in parser.sections():
        if section == "default":
            name = "default"
        elif section.startswith("profile "):
            name = section[len("profile ") :].strip()
        else:
            continue  # sso-session, services, …
        sections.setdefault(name, section)
        if name not in names:
            names.append(name)
    with suppress(FileNotFoundError, UnicodeDecodeError):
        for line in credentials_path.read_text(encoding="utf-8").splitlines():
            header = _INI_SECTION.match(line)
            if header and header.group(1) not in names:
                names.append(header.group(1))
    profiles = []
    for name in names:
        config_section = sections.get(name)
        region: str | None = None
        endpoint_url: str | None = None
        if config_section:
            region = parser.get(config_section, "region", fallback=None) or None
            endpoint_url = parser.get(config_section, "endpoint_url", fallback=None) or None
            services = parser.get(config_section, "services", fallback=None)
            if not endpoint_url and services:
                endpoint_url = _services_endpoint(parser, services)
        profiles.append(AwsProfile(name=name, region=region, endpoint_url=endpoint_url))
    return profiles
