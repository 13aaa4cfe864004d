"""Decide per file, before reading a byte, what a TUI copy does at an existing key.

Textual-free. Kept in ui/ until the engine's own decision module (the nightly work's
``engine/decide.py``) is on main; then the plan dialog uses that one instead.

The plan of a copy under a conflict policy: each file is copied (nothing at its key), overwrites
an object, or is skipped — decided from one listing of the destination (or a HEAD per key for a
few files). Under ``if-different`` an object of the same size can only be told apart by its
content, so that file is left to the engine, which compares sha256 while copying.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError

from ..engine.config import ConflictPolicy
from ..engine.plan import FileJob
from ..engine.s3 import S3Client, head_object, map_s3_error

#: Up to this many files, HEAD each key (it also reads the recorded source mtime and sha256);
#: more than that, list the destination once, then HEAD up to ``HEAD_FOUND_LIMIT`` of the keys
#: found (beyond that, an object's upload time stands for its source mtime).
HEAD_LIMIT = 64
HEAD_FOUND_LIMIT = 1000
META_SHA256 = "sha256"
META_MTIME = "source-mtime"


class Decision(StrEnum):
    """What a copy does with one file."""

    COPY = "copy"  # nothing at the key yet
    OVERWRITE = "overwrite"  # replaces the object at the key
    COMPARE = "compare"  # same size: copied only if the sha256 differs (read to compare)
    SKIP = "skip"  # left as it is


@dataclass(frozen=True, slots=True)
class ExistingObject:
    """An object already at a destination key."""

    key: str
    size: int
    modified: float  # LastModified, seconds since the epoch
    source_mtime: int | None = None  # the mtime our upload recorded, when HEAD read it
    sha256: str | None = None

    @property
    def mtime(self) -> float:
        """The source mtime the object stands for (recorded, else its upload time)."""
        return self.source_mtime if self.source_mtime is not None else self.modified


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file of a copy's plan: what happens to it and why."""

    job: FileJob
    decision: Decision
    reason: str
    existing: ExistingObject | None = None

    @property
    def sends(self) -> bool:
        """The file goes to the queue (it may still be skipped by the content comparison)."""
        return self.decision is not Decision.SKIP


def decide(job: FileJob, existing: ExistingObject | None, policy: ConflictPolicy) -> PlannedFile:
    """The decision for ``job`` under ``policy``, given what is at its key."""
    if existing is None:
        return PlannedFile(job, Decision.COPY, "new")
    if policy is ConflictPolicy.OVERWRITE:
        return PlannedFile(job, Decision.OVERWRITE, "replaces the object", existing)
    if policy is ConflictPolicy.SKIP_EXISTING:
        return PlannedFile(job, Decision.SKIP, "exists", existing)
    if policy is ConflictPolicy.IF_NEWER:
        if job.mtime > existing.mtime:
            return PlannedFile(job, Decision.OVERWRITE, "source is newer", existing)
        return PlannedFile(job, Decision.SKIP, "object is as new", existing)
    if existing.size != job.size:
        return PlannedFile(job, Decision.OVERWRITE, "size differs", existing)
    return PlannedFile(job, Decision.COMPARE, "same size: sha256 compared", existing)


def decide_all(
    jobs: Iterable[FileJob], existing: dict[str, ExistingObject], policy: ConflictPolicy
) -> list[PlannedFile]:
    return [decide(job, existing.get(job.key), policy) for job in jobs]


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """Files and bytes per decision."""

    files: dict[Decision, int]
    bytes: dict[Decision, int]

    @classmethod
    def of(cls, planned: Iterable[PlannedFile]) -> PlanTotals:
        files = dict.fromkeys(Decision, 0)
        sizes = dict.fromkeys(Decision, 0)
        for item in planned:
            files[item.decision] += 1
            sizes[item.decision] += item.job.size
        return cls(files, sizes)

    @property
    def bytes_to_send(self) -> int:
        """Bytes read from SFTP at most (skipped files read nothing)."""
        return sum(size for decision, size in self.bytes.items() if decision is not Decision.SKIP)


async def find_existing(
    client: S3Client, jobs: list[FileJob], *, head_limit: int = HEAD_LIMIT
) -> dict[str, ExistingObject]:
    """The objects already at the jobs' keys: a HEAD each for a few, one listing for many."""
    if not jobs:
        return {}
    if len(jobs) <= head_limit:
        return await _head_each(client, jobs)
    found: dict[str, ExistingObject] = {}
    by_bucket: dict[str, set[str]] = {}
    for job in jobs:
        by_bucket.setdefault(job.bucket, set()).add(job.key)
    for bucket, keys in by_bucket.items():
        # S3 prefixes are strings, not paths: the character-wise common prefix is the one.
        prefix = os.path.commonprefix(sorted(keys))  # noqa: RUF071
        found |= await _list_under(client, bucket, prefix, keys)
    if found and len(found) <= HEAD_FOUND_LIMIT:
        found |= await _head_each(client, [job for job in jobs if job.key in found])
    return found


async def _head_each(client: S3Client, jobs: list[FileJob]) -> dict[str, ExistingObject]:
    slots = asyncio.Semaphore(8)

    async def one(job: FileJob) -> ExistingObject | None:
        async with slots:
            head = await head_object(client, job.bucket, job.key)
        if head is None:
            return None
        meta = head.get("Metadata", {})
        recorded = meta.get(META_MTIME, "")
        return ExistingObject(
            key=job.key,
            size=int(head.get("ContentLength", 0)),
            modified=head["LastModified"].timestamp(),
            source_mtime=int(recorded) if recorded.isdigit() else None,
            sha256=meta.get(META_SHA256),
        )

    results = await asyncio.gather(*(one(job) for job in jobs))
    return {found.key: found for found in results if found is not None}


async def _list_under(
    client: S3Client, bucket: str, prefix: str, keys: set[str]
) -> dict[str, ExistingObject]:
    found: dict[str, ExistingObject] = {}
    paginator = client.get_paginator("list_objects_v2")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"] in keys:
                    found[obj["Key"]] = ExistingObject(
                        obj["Key"], int(obj["Size"]), obj["LastModified"].timestamp()
                    )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Listing s3://{bucket}/{prefix}") from exc
    return found
