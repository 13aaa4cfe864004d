"""What happens to each file under the conflict policy, decided before a byte is read.

A rerun under ``skip-existing``, ``if-newer`` or ``if-different`` must not read and upload a
file only to find its key taken. :class:`DestinationIndex` answers "what is at this key?" from
one bounded ListObjectsV2 of the destination prefix (cheap for many files) and falls back to a
HEAD per key; :func:`decide` turns the answer into a :class:`Decision`. The conditional write
(If-None-Match) stays in the upload as the guard against a writer that races us.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..config import ConflictPolicy
from ..errors import S3AccessDenied
from ..object_options import META_MTIME, META_SHA256
from ..s3.operations import S3Client, head_object, map_s3_error

log = logging.getLogger(__name__)

LIST_PAGE_KEYS = 1000  # ListObjectsV2 returns at most this many keys per request


class Action(StrEnum):
    """What the copy does with one file."""

    COPY = "copy"  # nothing at the key
    OVERWRITE = "overwrite"  # replaces the object at the key
    COMPARE = "compare"  # same size, sha256 recorded: the source is hashed, copied if different
    SKIP = "skip"  # left as it is
    EXCLUDED = "excluded"  # a filter left it out
    WAITING = "waiting"  # not ready yet (too young, still growing, no done file)
    INVALID = "invalid"  # it cannot be copied (e.g. its name makes no valid key)

    @property
    def reads_source(self) -> bool:
        return self in (Action.COPY, Action.OVERWRITE, Action.COMPARE)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class ExistingObject:
    """What S3 holds at a key, from a listing (size, date, ETag) or a HEAD (plus metadata)."""

    key: str
    size: int
    last_modified: float  # epoch seconds
    etag: str = ""
    source_mtime: int | None = None  # recorded by our upload (x-amz-meta-source-mtime)
    sha256: str | None = None  # recorded by our upload (metadata or tag)
    from_head: bool = False


def decide(
    policy: ConflictPolicy, size: int, mtime: int, existing: ExistingObject | None
) -> Decision:
    """The action for a source of ``size`` bytes modified at ``mtime`` (epoch seconds).

    Pure: given what S3 holds at the key (``None``: nothing). ``if-newer`` compares with the
    source mtime our upload recorded, else the object's date; ``if-different`` skips on the
    same size and recorded mtime (rsync's quick check), or, known from a listing only, the
    same size and an object written after the source last changed (rclone's rerun), and
    otherwise compares the sha256.
    """
    if existing is None:
        return Decision(Action.COPY, "new")
    if policy is ConflictPolicy.OVERWRITE:
        return Decision(Action.OVERWRITE, "replaces the existing object")
    if policy is ConflictPolicy.SKIP_EXISTING:
        return Decision(Action.SKIP, "the key already exists")
    if policy is ConflictPolicy.IF_NEWER:
        theirs = (
            existing.source_mtime
            if existing.source_mtime is not None
            else int(existing.last_modified)
        )
        if mtime > theirs:
            return Decision(Action.OVERWRITE, "the source is newer")
        return Decision(Action.SKIP, "the object is as new as the source")
    if existing.size != size:
        return Decision(Action.OVERWRITE, f"the size differs ({existing.size} → {size} bytes)")
    # rsync's quick check, trusted only when the object was written at least a full second
    # after that mtime: a rewrite in the same second would keep the same mtime.
    if (
        existing.source_mtime is not None
        and existing.source_mtime == mtime
        and existing.last_modified >= mtime + 2
    ):
        return Decision(Action.SKIP, "the object has the same size and modification time")
    if existing.source_mtime is None and _written_after(existing, mtime):
        # What a listing tells (rclone's rerun: size, and the source not newer): an object
        # of the same size written after the source last changed holds it. No HEAD needed.
        return Decision(Action.SKIP, "same size, and the source is not newer than the object")
    if existing.sha256:
        return Decision(Action.COMPARE, "same size: the sha256 is compared")
    return Decision(Action.OVERWRITE, "same size, but no sha256 recorded to compare")


def needs_head(policy: ConflictPolicy, size: int, mtime: int, listed: ExistingObject) -> bool:
    """Whether a listed object's metadata (a HEAD) could change the decision."""
    if listed.from_head or policy in (ConflictPolicy.OVERWRITE, ConflictPolicy.SKIP_EXISTING):
        return False
    if policy is ConflictPolicy.IF_NEWER:
        # The recorded source mtime is never later than the upload, so a source newer than
        # the object's date is newer than both.
        return mtime <= int(listed.last_modified)
    # if-different: the listing alone decides a different size, and a same-size object
    # written after the source last changed (:func:`decide`); only the rest need a HEAD.
    return listed.size == size and not _written_after(listed, mtime)


def _written_after(existing: ExistingObject, mtime: int) -> bool:
    """Whether the object was written at least a full second after the source's ``mtime``
    (whole seconds on both sides: a rewrite within the same second is not told apart)."""
    return existing.last_modified >= mtime + 2


@dataclass
class _Listed:
    """One bounded listing of a prefix: the objects seen among the wanted keys."""

    prefix: str
    complete: bool
    last_key: str
    objects: dict[str, ExistingObject]

    def covers(self, key: str) -> bool:
        return key.startswith(self.prefix) and (self.complete or key <= self.last_key)


class DestinationIndex:
    """Looks up what S3 holds at destination keys: a listing where preloaded, else a HEAD.

    Only objects at wanted keys are kept (a small record each), so a prefix holding millions
    of objects costs no memory; a listing that stops early (its page budget) still answers
    for every key up to the last one it saw (ListObjectsV2 is in key order).
    """

    def __init__(self, s3: S3Client) -> None:
        self.s3 = s3
        self._listed: dict[str, list[_Listed]] = {}
        self.list_requests = 0
        self.head_requests = 0

    async def preload(self, bucket: str, keys: list[str], *, max_pages: int | None = None) -> None:
        """List the common prefix of ``keys`` once, in at most ``max_pages`` requests.

        The default budget is half a request per 1000 wanted keys' worth of HEADs saved:
        never more requests than half the HEADs it replaces.
        """
        if len(keys) < 2:
            self._listed.pop(bucket, None)
            return
        wanted = set(keys)
        prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071 (S3 prefixes are strings)
        budget = max_pages if max_pages is not None else max(1, len(wanted) // 2)
        await self._list(bucket, prefix, budget, wanted.__contains__)

    async def preload_prefix(self, bucket: str, prefix: str, *, max_pages: int = 20) -> None:
        """List everything under ``prefix`` (at most ``max_pages`` requests of 1000 keys),
        for a copy whose keys are not known yet (a streamed listing): every later lookup
        up to the last key seen is answered from it, without a HEAD. The page budget bounds
        the memory (a small record per object); keys beyond it fall back to a HEAD."""
        await self._list(bucket, prefix, max_pages, lambda key: True)

    async def _list(
        self, bucket: str, prefix: str, budget: int, keep: Callable[[str], bool]
    ) -> None:
        objects: dict[str, ExistingObject] = {}
        last_key = ""
        complete = False
        token: str | None = None
        try:
            for _ in range(budget):
                kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
                if token:
                    kwargs["ContinuationToken"] = token
                self.list_requests += 1
                page = await self.s3.list_objects_v2(**kwargs)
                for item in page.get("Contents", []):
                    key = item["Key"]
                    last_key = key
                    if keep(key):
                        objects[key] = ExistingObject(
                            key=key,
                            size=int(item.get("Size", 0)),
                            last_modified=item["LastModified"].timestamp(),
                            etag=str(item.get("ETag", "")),
                        )
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    complete = True
                    break
        except (ClientError, BotoCoreError) as exc:
            error = map_s3_error(exc, f"Listing s3://{bucket}/{prefix}")
            if isinstance(error, S3AccessDenied):  # no s3:ListBucket: HEAD each key instead
                log.info("%s; deciding by HEAD per key", error.message)
                self._listed.pop(bucket, None)
                return
            raise error from exc
        # A new listing replaces the bucket's last one (a watch lists again every poll).
        self._listed[bucket] = [_Listed(prefix, complete, last_key, objects)]

    async def lookup(
        self, bucket: str, key: str, *, policy: ConflictPolicy, size: int, mtime: int
    ) -> ExistingObject | None:
        """What is at ``key``, with the metadata the policy needs to decide."""
        for listed in self._listed.get(bucket, []):
            if listed.covers(key):
                found = listed.objects.get(key)
                if found is None or not needs_head(policy, size, mtime, found):
                    return found
                break
        try:
            return await self.head(bucket, key, want_sha256=policy is ConflictPolicy.IF_DIFFERENT)
        except S3AccessDenied:
            # Without s3:ListBucket a HEAD of a missing key is refused (403), not 404. Under
            # skip-existing the conditional write still keeps an existing object: go ahead.
            if policy is ConflictPolicy.SKIP_EXISTING:
                return None
            raise

    async def head(self, bucket: str, key: str, *, want_sha256: bool) -> ExistingObject | None:
        """HEAD ``key``; with ``want_sha256`` also the tag a multipart upload left."""
        self.head_requests += 1
        head = await head_object(self.s3, bucket, key)
        if head is None:
            return None
        meta = head.get("Metadata", {}) or {}
        recorded = meta.get(META_MTIME, "")
        sha256 = meta.get(META_SHA256)
        if sha256 is None and want_sha256:
            sha256 = await self._sha256_tag(bucket, key)
        return ExistingObject(
            key=key,
            size=int(head.get("ContentLength", 0)),
            last_modified=head["LastModified"].timestamp(),
            etag=str(head.get("ETag", "")),
            source_mtime=int(recorded) if recorded.isdigit() else None,
            sha256=sha256,
            from_head=True,
        )

    async def _sha256_tag(self, bucket: str, key: str) -> str | None:
        """The sha256 a multipart upload of ours left as an object tag, if any."""
        try:
            tags = await self.s3.get_object_tagging(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError):
            return None
        found = [t["Value"] for t in tags.get("TagSet", []) if t.get("Key") == META_SHA256]
        return found[0] if found else None

    async def decide(
        self,
        policy: ConflictPolicy,
        bucket: str,
        key: str,
        size: int,
        mtime: int,
        *,
        probe_overwrite: bool = True,
    ) -> Decision:
        """Look the key up and decide. Under ``overwrite`` nothing needs asking before a
        copy (``probe_overwrite=False``: only a preloaded listing is used); a plan asks, to
        tell a new key from a replaced one."""
        if policy is ConflictPolicy.OVERWRITE and not probe_overwrite:
            for listed in self._listed.get(bucket, []):
                if listed.covers(key):
                    return decide(policy, size, mtime, listed.objects.get(key))
            return Decision(Action.COPY, "written whatever is at the key")
        existing = await self.lookup(bucket, key, policy=policy, size=size, mtime=mtime)
        return decide(policy, size, mtime, existing)
