"""``sftp://`` and ``s3://`` addresses, and the SFTP path → S3 key mapping."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import UsageError

MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class SftpLocation:
    """A parsed ``sftp://[user@]host[:port]/absolute/path``."""

    host: str
    path: str
    port: int | None = None
    username: str | None = None

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        return f"sftp://{user}{self.host}{port}{self.path}"


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/key`` (exact key) or ``s3://bucket/prefix/`` (a folder)."""

    bucket: str
    key: str = ""

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_sftp_url(text: str, *, default_host: str | None = None) -> SftpLocation:
    """Parse an SFTP source; ``sftp:///path`` or a bare ``/path`` uses ``default_host``."""
    if text.startswith("/") and default_host:
        return SftpLocation(host=default_host, path=posixpath.normpath(text))
    parts = urlsplit(text)
    if parts.scheme != "sftp":
        raise UsageError(
            f"Not an SFTP address: {text!r}", "write it as sftp://[user@]host[:port]/path"
        )
    host = parts.hostname or default_host
    if not host:
        raise UsageError(f"No host in {text!r}", "write it as sftp://[user@]host[:port]/path")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"Bad port in {text!r}", "the port must be a number 1-65535") from exc
    path = unquote(parts.path) or "/"
    if not path.startswith("/"):
        raise UsageError(f"The path in {text!r} is not absolute", "start it with /")
    username = unquote(parts.username) if parts.username else None
    return SftpLocation(host=host, path=path, port=port, username=username)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")


def parse_s3_url(text: str) -> S3Location:
    """Parse a destination ``s3://bucket/key`` or ``s3://bucket/prefix/``."""
    if not text.startswith("s3://"):
        raise UsageError(
            f"Not an S3 address: {text!r}", "write it as s3://bucket/key or s3://bucket/prefix/"
        )
    rest = text[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise UsageError(f"Not a valid bucket name: {bucket!r}", "bucket names are 3-63 chars")
    if key:
        key = sanitize_key(key, keep_trailing_slash=True)
    return S3Location(bucket=bucket, key=key)


def sanitize_key(key: str, *, keep_trailing_slash: bool = False) -> str:
    """Return a safe S3 key: no leading ``/``, no ``.``/``..``/empty segments, no controls.

    Control characters are refused rather than silently replaced, so a user never gets an
    object under a name they did not expect. The name is otherwise kept byte for byte: no
    Unicode normalisation (an S3 key is any UTF-8 string, and rclone keeps names as given),
    so ``café.csv`` in NFC and in NFD (as macOS writes it) are two files and two keys.
    """
    bad = next((ch for ch in key if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        raise UsageError(
            f"The name {key!r} contains a control character ({bad!r})",
            "rename the file or choose an explicit destination key",
        )
    trailing = keep_trailing_slash and key.endswith("/")
    segments = [s for s in key.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise UsageError(
            f"The key {key!r} contains a '..' segment",
            "S3 keys are not paths; choose a key without '..'",
        )
    clean = "/".join(segments) + ("/" if trailing and segments else "")
    if len(clean.encode()) > MAX_KEY_BYTES:
        raise UsageError(
            f"The key for {key[:60]!r}… is {len(clean.encode())} bytes",
            f"S3 keys are at most {MAX_KEY_BYTES} bytes; choose a shorter prefix or name",
        )
    return clean


def key_for(source_path: str, dest: S3Location, *, relative_to: str | None = None) -> str:
    """Map an SFTP path to its S3 key under ``dest``.

    An exact destination key is used as is. Under a prefix, the key is the prefix plus the
    path relative to ``relative_to`` (the expanded directory), or the file name alone.
    """
    if not dest.is_prefix:
        return dest.key
    if relative_to is not None:
        relative = posixpath.relpath(source_path, relative_to)
    else:
        relative = posixpath.basename(source_path.rstrip("/"))
    return sanitize_key(dest.key + relative)
