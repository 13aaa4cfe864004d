"""Planning: part sizes within S3's limits, and sources (files, folders, globs) → file jobs."""

from __future__ import annotations

import fnmatch
import itertools
import math
import posixpath
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ..addresses import S3Location, key_for, sanitize_key
from ..config import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, ConflictPolicy, MiB, SftpEndpoint
from ..errors import (
    SftpConnectError,
    SftpReadError,
    SourceNotFound,
    SourceReadFailed,
    TransferError,
    UsageError,
)
from ..sftp.entries import RemoteEntry
from ..sftp.pool import SftpPool


def part_size_for(size: int, requested: int) -> int:
    """The part size to use for a file of ``size`` bytes.

    The requested size, clamped to S3's 5 MiB-5 GiB range and raised (in whole MiB) until the
    file needs at most 10,000 parts.
    """
    part = min(max(requested, MIN_PART_SIZE), MAX_PART_SIZE)
    if size > part * MAX_PARTS:
        part = math.ceil(size / MAX_PARTS / MiB) * MiB
        if part > MAX_PART_SIZE:
            raise UsageError(
                f"A file of {size} bytes exceeds S3's 5 TiB object limit", "split the file"
            )
    return part


def part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


@dataclass(frozen=True)
class FileJob:
    """One file to move: where it is, how big, and the object it becomes."""

    endpoint: SftpEndpoint
    path: str
    size: int
    mtime: int
    bucket: str
    key: str
    problem: str = ""  # why this file cannot be copied (e.g. its name is no valid key)
    skipped: str = ""  # why this entry is deliberately not copied (e.g. a folder link)
    #: This file's own conflict policy, over the queue's (the TUI decides one per copy).
    conflict: ConflictPolicy | None = None

    @property
    def source(self) -> str:
        return f"{self.endpoint.display}{self.path}"


def _has_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


async def expand(
    sftp: SftpPool, endpoint: SftpEndpoint, path: str, dest: S3Location
) -> list[FileJob]:
    """Expand one source path (file, folder or glob) into file jobs under ``dest``.

    A folder is walked recursively and keeps its relative layout under the destination
    prefix: ``/in/a`` → ``prefix/a/…``, ``/in/a/`` → ``prefix/…`` (as rsync does); a glob
    matches names in its folder. The whole plan as a list, sorted by path; :func:`walk`
    streams the same jobs.

    Entries that cannot be copied become jobs that fail alone with one line each (a FIFO,
    device or socket, a name that is not UTF-8, a folder that cannot be listed, a dangling
    link); linked folders are skipped jobs unless ``endpoint.follow_symlinks``.
    """
    jobs = [job async for job in walk(sftp, endpoint, path, dest)]
    jobs.sort(key=lambda j: j.path)
    return jobs


async def walk(
    sftp: SftpPool, endpoint: SftpEndpoint, path: str, dest: S3Location
) -> AsyncIterator[FileJob]:
    """Stream the jobs of one source path as it is listed (see :func:`expand`).

    Only the folders still to visit are held, never the whole tree; each listing request has
    its own timeout.
    """
    if _has_glob(posixpath.basename(path)):
        folder, pattern = posixpath.split(path)
        if _has_glob(folder):
            raise UsageError(f"Only the last part of {path!r} may be a glob", "e.g. /in/*.csv")
        matches = [
            e
            for e in await sftp.listdir(endpoint, folder or "/")
            if fnmatch.fnmatch(e.name, pattern)
        ]
        if not matches:
            raise SourceNotFound(f"Nothing matches {path}", "check the pattern")
        _require_prefix(dest, path, len(matches))
        for entry in matches:
            if entry.is_dir and not entry.problem:
                async for job in _walk(sftp, endpoint, entry, dest, folder or "/"):
                    yield job
            else:
                yield _job(endpoint, entry, dest, None)
        return
    entry = await sftp.stat(endpoint, path)
    if entry.is_dir:
        _require_prefix(dest, path, 2)
        # Like rsync: /in/ copies the folder's contents, /in copies the folder itself.
        base = path if path.endswith("/") else posixpath.dirname(path.rstrip("/")) or "/"
        top = replace(entry, path=path.rstrip("/") or "/", is_link=False)
        async for job in _walk(sftp, endpoint, top, dest, base):
            yield job
        return
    yield _job(endpoint, entry, dest, None)


def _require_prefix(dest: S3Location, path: str, count: int) -> None:
    if count > 1 and not dest.is_prefix:
        raise UsageError(
            f"{path} is several files but {dest} names one key",
            "end the destination with / to copy into a prefix",
        )


def _job(
    endpoint: SftpEndpoint,
    entry: RemoteEntry,
    dest: S3Location,
    base: str | None,
    *,
    problem: str = "",
    skipped: str = "",
) -> FileJob:
    """A job for one file; a name that makes no valid key fails that file alone, with why."""
    problem = problem or entry.problem
    try:
        key = key_for(entry.path, dest, relative_to=base)
    except UsageError as exc:
        key, problem = repr(entry.name)[1:-1], problem or str(exc)
    return FileJob(
        endpoint=endpoint,
        path=entry.path,
        size=entry.size,
        mtime=entry.mtime,
        bucket=dest.bucket,
        key=key,
        problem=problem,
        skipped=skipped,
    )


async def _walk(
    sftp: SftpPool, endpoint: SftpEndpoint, top: RemoteEntry, dest: S3Location, base: str
) -> AsyncIterator[FileJob]:
    """Depth-first over ``top``; a folder that cannot be listed fails alone, the rest goes on.

    With ``follow_symlinks`` every folder's real path is tracked, so a link back into what
    was already visited (a loop) is skipped with a line instead of walked again.
    """
    follow = endpoint.follow_symlinks
    real_top = await sftp.realpath(endpoint, top.path) if follow else top.path
    seen: set[str] = {real_top}
    pending: list[tuple[RemoteEntry, str]] = [(top, real_top)]
    while pending:
        folder, real = pending.pop()
        try:
            async for entry in sftp.scandir(endpoint, folder.path):
                if not entry.is_dir or entry.problem:
                    yield _job(endpoint, entry, dest, base)
                elif not entry.is_link:
                    child = posixpath.join(real, entry.name)
                    if follow:
                        seen.add(child)
                    pending.append((entry, child))
                elif not follow:
                    why = "is a link to a folder; not followed (follow symlinks to copy it)"
                    yield _job(endpoint, entry, dest, base, skipped=f"{entry.path} {why}")
                else:
                    target = await sftp.realpath(endpoint, entry.path)
                    if target in seen:
                        why = f"links to {target}, which is already copied (a link loop?)"
                        yield _job(endpoint, entry, dest, base, skipped=f"{entry.path} {why}")
                    else:
                        seen.add(target)
                        pending.append((entry, target))
        except TransferError as exc:
            if (
                folder is top
                or isinstance(exc, SftpConnectError)
                or (isinstance(exc, SftpReadError) and not isinstance(exc, SourceReadFailed))
            ):
                raise  # the connection or the source itself: the listing cannot go on
            problem = f"Cannot list the folder {folder.path}: {exc.message}"
            yield _job(endpoint, folder, dest, base, problem=problem)


def ensure_unique_keys(jobs: list[FileJob], hint: str = "copy them to different prefixes") -> None:
    """Refuse a plan in which two files would land at the same key (one would be lost)."""
    seen: dict[str, str] = {}
    for job in jobs:
        if job.key in seen:
            raise UsageError(
                f"{job.path} and {seen[job.key]} would both land at s3://{job.bucket}/{job.key}",
                hint,
            )
        seen[job.key] = job.path


def exact_key_error(count: int, dest: S3Location, hint: str) -> UsageError:
    """Several sources or files for one exact key: the one wording every front uses."""
    return UsageError(f"{count} sources but {dest} names one key", hint)


def rebase(jobs: Iterable[FileJob], dest: S3Location, base_path: str | None) -> list[FileJob]:
    """Keys relative to ``base_path`` (keeps a folder's layout when Airflow tasks map over
    its files one by one); no change without a base path or into an exact key."""
    if base_path is None or not dest.is_prefix:
        return list(jobs)
    base = posixpath.normpath(base_path)
    out = []
    for job in jobs:
        if job.path != base and not job.path.startswith(base.rstrip("/") + "/"):
            raise UsageError(
                f"{job.path} is not under the base path {base}",
                "list the files from that folder or drop the base path",
            )
        out.append(replace(job, key=key_for(job.path, dest, relative_to=base)))
    return out


@dataclass(frozen=True)
class PlanSource:
    """One source of a copy: the server and a file, folder or glob on it."""

    endpoint: SftpEndpoint
    path: str


async def plan_copy(
    sftp: SftpPool,
    sources: Sequence[PlanSource],
    dest: S3Location,
    *,
    base_path: str | None = None,
    on_missing: Callable[[PlanSource, SourceNotFound], None] | None = None,
    exact_key_hint: str = "end the destination with / to copy into a prefix",
    unique_hint: str = "copy them to different prefixes",
) -> list[FileJob]:
    """Every file job of a copy: sources expanded, the exact-key rule (several sources or
    files need a prefix), keys rebased on ``base_path``, no two files for one key.

    A source that matches nothing raises :class:`SourceNotFound`, unless ``on_missing`` is
    given: then it is told and the plan goes on without it.
    """
    if len(sources) > 1 and not dest.is_prefix:
        raise exact_key_error(len(sources), dest, exact_key_hint)
    jobs: list[FileJob] = []
    for source in sources:
        try:
            jobs += await expand(sftp, source.endpoint, source.path, dest)
        except SourceNotFound as exc:
            if on_missing is None:
                raise
            on_missing(source, exc)
    if len(jobs) > 1 and not dest.is_prefix:
        raise exact_key_error(len(jobs), dest, exact_key_hint)
    jobs = rebase(jobs, dest, base_path)
    ensure_unique_keys(jobs, unique_hint)
    return jobs


class KeyTable:
    """The destination keys a streamed plan has handed out, at 16-32 bytes a key.

    Open-addressing tables of 64-bit digests (``hash`` of bucket and key), not the keys
    themselves, so a plan of a million files holds 32 MiB at most, not the keys' text. Two
    different keys share a digest with a chance of about n²/2⁶⁵ (10⁻⁸ at a million files);
    that would report a collision that is not one, never miss a real one. The digests are
    spread over 256 tables that grow one at a time, so no growth rehashes more than 1/256
    of the keys at once (a single table of a million keys would hold the loop for ~0.5 s).
    """

    __slots__ = ("_masks", "_shards", "_used", "count")

    _SHARDS = 256

    def __init__(self) -> None:
        self._shards = [array("Q", bytes(8 * 64)) for _ in range(self._SHARDS)]
        self._masks = [63] * self._SHARDS
        self._used = [0] * self._SHARDS
        self.count = 0

    def add(self, bucket: str, key: str) -> bool:
        """Note ``key``; False if it was given out before (the same digest)."""
        digest = (hash((bucket, key)) & 0xFFFF_FFFF_FFFF_FFFF) or 1  # 0 marks an empty slot
        shard = digest & (self._SHARDS - 1)
        slots, mask = self._shards[shard], self._masks[shard]
        if not _insert(slots, mask, digest):
            return False
        self.count += 1
        self._used[shard] = used = self._used[shard] + 1
        if 2 * used > mask:  # keep each table's load under a half
            grown = array("Q", bytes(16 * len(slots)))
            self._masks[shard] = mask = 2 * len(slots) - 1
            for value in slots:
                if value:
                    _insert(grown, mask, value)
            self._shards[shard] = grown
        return True


def _insert(slots: array[int], mask: int, digest: int) -> bool:
    """Put ``digest`` in ``slots`` (linear probing); False if it is there already."""
    at = (digest >> 8) & mask
    while True:
        value = slots[at]
        if value == 0:
            slots[at] = digest
            return True
        if value == digest:
            return False
        at = (at + 1) & mask


def _key_root(path: str, dest: S3Location) -> str | None:
    """The key a plain source path lands at (a file) or under (a folder, ``root/…``); None
    when its keys cannot be bounded (a glob, a folder's contents ``/in/``, an odd name)."""
    name = posixpath.basename(path)
    if not name or path.endswith("/") or _has_glob(name):
        return None
    try:
        return sanitize_key(dest.key + name)
    except UsageError:
        return None


def can_stream(sources: Sequence[PlanSource], dest: S3Location) -> bool:
    """Whether :func:`stream_plan` keeps :func:`plan_copy`'s rules for these sources.

    One source always (its own files have distinct names, so distinct keys; the stream
    still catches a clash per file). Several sources only when their keys cannot meet (each
    lands at or under a key of its own): then a collision between sources is impossible,
    and the stream need not see the whole plan before the first file moves.
    """
    if len(sources) <= 1:
        return True
    if not dest.is_prefix:
        return True  # refused up front, as plan_copy does
    roots = []
    for source in sources:
        root = _key_root(source.path, dest)
        if root is None:
            return False
        roots.append(root)
    roots.sort()
    return all(b != a and not b.startswith(a + "/") for a, b in itertools.pairwise(roots))


async def stream_plan(
    sftp: SftpPool,
    sources: Sequence[PlanSource],
    dest: S3Location,
    *,
    exact_key_hint: str = "end the destination with / to copy into a prefix",
    unique_hint: str = "copy them to different prefixes",
) -> AsyncIterator[FileJob]:
    """:func:`plan_copy`'s jobs as the sources are listed, never the whole plan in memory.

    For the sources :func:`can_stream` accepts. The exact-key rule holds before the first
    job is yielded (several sources into one key are refused up front; one source that is
    several files is refused by :func:`walk` before it yields). Every source is checked to
    exist before the first job, so a missing one fails the run before anything moves, as in
    :func:`plan_copy`. A file whose key another file of this plan already took (two names
    that differ only in Unicode normalization) becomes a job that fails alone, with why.
    """
    if len(sources) > 1 and not dest.is_prefix:
        raise exact_key_error(len(sources), dest, exact_key_hint)
    if len(sources) > 1:
        for source in sources:  # plain paths (can_stream): a stat each
            await sftp.stat(source.endpoint, source.path)
    seen = KeyTable()
    for source in sources:
        async for job in walk(sftp, source.endpoint, source.path, dest):
            if not (job.problem or job.skipped or seen.add(job.bucket, job.key)):
                job = replace(
                    job,
                    problem=f"{job.path} would land at s3://{job.bucket}/{job.key}, which "
                    f"another file of this copy already takes; {unique_hint}",
                )
            yield job
