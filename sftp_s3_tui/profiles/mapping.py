"""Profiles ↔ TOML tables: converting and checking each field, and salvaging what can be
read from a file that is not valid TOML."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import fields
from enum import StrEnum
from typing import Any

from ..engine.config import (
    ChecksumChoice,
    ConflictPolicy,
    HostKeyPolicy,
)
from ..engine.errors import ConfigError, UsageError
from ..engine.units import format_rate_limit, parse_rate, parse_size
from ..redaction import register_secret
from .model import (
    DeliverySettings,
    NotifySettings,
    Profile,
    S3Settings,
    SftpAuth,
    SftpSettings,
    TransferDefaults,
    _check_name,
)
from .secrets import SECRET_FIELDS, Secret


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


def _rate(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return parse_rate(value)
        except UsageError:
            pass
    raise _Invalid('must be a rate in bytes per second such as "20M" (20 MB/s) or "8Mi"')


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


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    """A TOML table of strings (``tags = { team = "data" }``) as ordered pairs."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _Invalid('must be a table of strings, e.g. { team = "data" }')
    return tuple(value.items())


def _expectations(value: object) -> tuple[str, ...]:
    """Drop expectations, each checked: ``["3 invoice_*.csv by weekdays 06:00 Europe/Berlin"]``."""
    from ..engine.errors import UsageError
    from ..observe.expectations import Expectation

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid('must be a list of strings, e.g. ["3 invoice_*.csv by weekdays 06:00"]')
    for line in value:
        try:
            Expectation.parse(line)
        except UsageError as exc:
            raise _Invalid(str(exc)) from None
    return tuple(value)


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
            "connections": _count,
            "window": _size,
            "bwlimit": _rate,
            "jump": _text,
            "follow_symlinks": _flag,
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
            "sse_kms_key_id": _text,
            "content_type": _any_text,
            "tags": _pairs,
            "metadata": _pairs,
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
            "checksum": _choice(ChecksumChoice),
        },
    ),
    "notify": (
        NotifySettings,
        {"hook_url": _text, "notify_on": _text, "expect": _expectations},
    ),
    "delivery": (
        DeliverySettings,
        {"verify_readback": _flag, "verify_server_hash": _flag},
    ),
}

_SIZE_FIELDS = {"part_size", "memory_budget", "window"}
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
            problems.append(
                (key, "unknown section (expected sftp, s3, transfer, notify or delivery)")
            )
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
            elif f.name == "bwlimit":
                value = format_rate_limit(value)
            elif f.name in ("tags", "metadata"):
                value = dict(value)
            elif f.name == "expect":
                value = list(value)
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
