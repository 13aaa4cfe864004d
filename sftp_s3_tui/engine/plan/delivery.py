"""S3 sources → delivery jobs, and the S3 key → SFTP path mapping (S3 → SFTP).

A key is the object's name under its prefix, kept byte for byte as a relative path under
the target folder (like the SFTP → S3 folder rule, the other way). S3 lets a key hold
anything; a partner's server must never see a path that climbs out of the target folder or
carries a control character, so such a key is refused by name rather than "cleaned" into a
name nobody asked for.
"""

from __future__ import annotations

import posixpath
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..addresses import S3Location
from ..config import SftpEndpoint
from ..errors import UnsafeKey, UsageError
from .filters import FileFilter

if TYPE_CHECKING:  # the S3 stack is imported when a plan runs, not when a request is made
    from ..s3.operations import S3Client  # (a delivery's login starts before that: cli.main)
    from ..s3.reader import ListedObject


@dataclass(frozen=True)
class DeliveryTarget:
    """Where objects go: a file path, or a folder (the address ended with ``/``)."""

    endpoint: SftpEndpoint
    path: str
    is_folder: bool

    @property
    def display(self) -> str:
        return f"{self.endpoint.display}{self.path}"


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One object to deliver and the path it will have on the destination; a prefix's
    listing also says which version it saw (``etag``, ``size``, ``mtime``: what a watch
    remembers it by; empty for an exact key, which is described when delivered)."""

    bucket: str
    key: str
    remote_path: str
    etag: str = ""
    size: int = 0
    mtime: float = 0.0


@dataclass(frozen=True, slots=True)
class RefusedKey:
    """An object whose key cannot be a path under the target: reported, never written."""

    bucket: str
    key: str
    error: UnsafeKey


def check_relative_name(relative: str, key: str) -> None:
    """Refuse (by the key's name) a relative path that is not plain segments under a folder."""
    shown = repr(key)
    bad = next((ch for ch in relative if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        raise UnsafeKey(
            f"The key {shown} holds a control character ({bad!r})",
            "a partner's server must not see it; rename the object",
        )
    if relative.startswith("/"):
        raise UnsafeKey(
            f"The key {shown} starts with '/'",
            "it would name a path outside the target folder; rename the object",
        )
    segments = relative.split("/")
    if ".." in segments:
        raise UnsafeKey(
            f"The key {shown} has a '..' segment",
            "it would write outside the target folder; rename the object",
        )
    if "." in segments or "" in segments:
        raise UnsafeKey(
            f"The key {shown} has an empty or '.' segment",
            "two keys could map to one file; rename the object",
        )


def remote_path_for(key: str, source: S3Location, target: DeliveryTarget) -> str:
    """The destination path of ``key`` (an object under ``source``), or :class:`UnsafeKey`.

    An exact source key into a file path: that path. Into a folder: the folder plus the
    key's last segment (exact key) or the key relative to the source prefix.
    """
    if not target.is_folder:
        return target.path
    relative = key[len(source.key) :] if source.is_prefix else key.rsplit("/", 1)[-1]
    check_relative_name(relative, key)
    path = posixpath.join(target.path, relative)
    folder = target.path.rstrip("/") or "/"
    # Belt and braces: the checks above already keep the path under the folder.
    if posixpath.commonpath([folder, posixpath.normpath(path)]) != folder:
        raise UnsafeKey(f"The key {key!r} maps outside {target.path}", "rename the object")
    return path


def check_addresses(source: S3Location, target: DeliveryTarget) -> None:
    """A prefix is delivered into a folder only (one line before anything runs)."""
    if source.is_prefix and not target.is_folder:
        raise UsageError(
            f"{source} is a prefix but {target.display} is not a folder",
            "end the sftp:// destination with / to deliver every object into it",
        )
    if not target.path.startswith("/"):
        raise UsageError(f"The path in {target.display} is not absolute", "start it with /")


async def plan_delivery(
    client: S3Client,
    source: S3Location,
    target: DeliveryTarget,
    *,
    file_filter: FileFilter | None = None,
    on_excluded: Callable[[str, str], None] | None = None,
    min_age_seconds: float = 0.0,
) -> AsyncIterator[DeliveryJob | RefusedKey]:
    """The objects under ``source`` as jobs, as the listing streams (nothing held per key).

    Folder markers (keys ending in ``/``) are not files and are passed over. An exact key is
    one job; it is described (HEAD) when it is delivered, so a missing key fails there.
    ``file_filter`` (``--include`` / ``--exclude`` / ``--filter``, sizes, times) applies to
    a prefix's objects by their path relative to the prefix, as the other direction does to
    a folder's files; an exact key was named, so it is not filtered. ``on_excluded`` hears
    ``(key, why)`` of each object left out.

    ``min_age_seconds`` (``--min-age``) leaves out a prefix's objects whose LastModified is
    younger than that, as of this listing: an S3 object is whole once listed, so the age is
    the sender's own settling time (a drop written object by object). A watch lists again
    each poll, so such an object is delivered once it is old enough.
    """
    from ..s3.reader import list_object_entries

    check_addresses(source, target)
    if not source.is_prefix:
        entries: AsyncIterator[ListedObject] = _one(source.key)
    else:
        entries = list_object_entries(client, source.bucket, source.key)
    active = file_filter is not None and file_filter.active
    now = time.time()
    async for entry in entries:
        key = entry.key
        if key.endswith("/"):
            continue
        if min_age_seconds and source.is_prefix and now - entry.mtime < min_age_seconds:
            if on_excluded is not None:
                on_excluded(key, _too_young(now - entry.mtime, min_age_seconds))
            continue
        if active and source.is_prefix:
            assert file_filter is not None
            why = file_filter.why_excluded_entry(key[len(source.key) :], entry.size, entry.mtime)
            if why is not None:
                if on_excluded is not None:
                    on_excluded(key, why)
                continue
        try:
            path = remote_path_for(key, source, target)
        except UnsafeKey as exc:
            yield RefusedKey(source.bucket, key, exc)
            continue
        yield DeliveryJob(source.bucket, key, path, entry.etag, entry.size, entry.mtime)


async def _one(key: str) -> AsyncIterator[ListedObject]:
    from ..s3.reader import ListedObject

    yield ListedObject(key, 0, 0.0)


def _too_young(age_seconds: float, min_age_seconds: float) -> str:
    """Why an object under ``--min-age`` waits (a LastModified ahead of our clock said so)."""
    if age_seconds < 0:
        return (
            f"LastModified is {-age_seconds:.0f} s in the future (the store's clock may be "
            f"ahead of ours); waiting until it is {min_age_seconds:g} s old (--min-age)"
        )
    return f"modified {age_seconds:.0f} s ago, younger than --min-age {min_age_seconds:g} s"
