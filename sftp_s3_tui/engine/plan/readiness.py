"""The readiness gate: is a listed file complete, or is the partner still writing it?

Three tests, cheapest first: a done file (``x.csv`` only once ``x.csv.done`` exists), a minimum
age (mtime at least ``min_age`` ago) and stability (size and mtime unchanged across two
listings ``stable`` seconds apart). A file that fails one is *waiting*, never failed: the next
run or the next watch poll looks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from ..errors import TransferError
from ..sftp.pool import SftpPool
from .sources import FileJob

RESTAT_CONCURRENCY = 16  # stats in flight at once when re-checking stability


@dataclass(frozen=True)
class ReadinessGate:
    """The user's readiness rules (0 / empty = off)."""

    min_age_seconds: float = 0.0
    stable_seconds: float = 0.0
    done_suffix: str = ""

    @property
    def active(self) -> bool:
        return bool(self.min_age_seconds or self.stable_seconds or self.done_suffix)

    @property
    def describe(self) -> str:
        """The rules in a few words (lineage's gate facet, the hooks): ``min-age 300s``."""
        parts = []
        if self.min_age_seconds:
            parts.append(f"min-age {self.min_age_seconds:g}s")
        if self.stable_seconds:
            parts.append(f"stable {self.stable_seconds:g}s")
        if self.done_suffix:
            parts.append(f"done-file {self.done_suffix}")
        return ", ".join(parts)


@dataclass
class GateResult:
    """The gate's verdict on a listing: ready jobs, waiting ones (with why), done files."""

    ready: list[FileJob] = field(default_factory=list)
    waiting: list[tuple[FileJob, str]] = field(default_factory=list)
    done_files: dict[str, str] = field(default_factory=dict)  # data path → its done file


@dataclass(frozen=True, slots=True)
class _Seen:
    size: int
    mtime: int
    since: float  # monotonic time it was first seen with this size and mtime


class StabilityTracker:
    """Remembers each file's (size, mtime) and since when it has not changed.

    A copy observes twice (list, wait, re-stat); a watch keeps one tracker across polls, so
    stability costs it no waiting at all.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[tuple[str, str], _Seen] = {}

    def observe(self, job: FileJob) -> float:
        """Record ``job``'s current size and mtime; seconds it has been unchanged."""
        key = (job.endpoint.display, job.path)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or (seen.size, seen.mtime) != (job.size, job.mtime):
            self._seen[key] = _Seen(job.size, job.mtime, now)
            return 0.0
        return now - seen.since

    def forget_missing(self, present: Iterable[FileJob]) -> None:
        """Drop files no longer listed (shipped and moved, or deleted), so memory stays flat."""
        keep = {(j.endpoint.display, j.path) for j in present}
        for key in [k for k in self._seen if k not in keep]:
            del self._seen[key]


def split_done_files(
    jobs: Iterable[FileJob], suffix: str, markers: set[str] | None = None
) -> GateResult:
    """Pair data files with their done files; the done files themselves are never copied.

    ``markers`` are the done files listed (default: those among ``jobs``), for a caller that
    filtered the data files first.
    """
    result = GateResult()
    listed = list(jobs)
    if markers is None:
        markers = {j.path for j in listed if j.path.endswith(suffix)}
    for job in listed:
        if job.path.endswith(suffix):
            continue
        marker = job.path + suffix
        if marker in markers:
            result.done_files[job.path] = marker
            result.ready.append(job)
        else:
            result.waiting.append((job, f"its done file {marker} is not there yet"))
    return result


async def check_ready(
    jobs: Iterable[FileJob],
    gate: ReadinessGate,
    sftp: SftpPool,
    *,
    tracker: StabilityTracker | None = None,
    markers: set[str] | None = None,
    wait: bool = True,
    now: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> GateResult:
    """Apply ``gate`` to a listing.

    With ``wait`` (a one-shot copy), stability is checked by waiting ``stable_seconds`` and
    stat-ing the candidates again; without it (a watch), the ``tracker``'s memory of earlier
    polls decides and nothing waits.
    """
    if gate.done_suffix:
        result = split_done_files(jobs, gate.done_suffix, markers)
    else:
        result = GateResult(ready=list(jobs))
    if gate.min_age_seconds:
        now = time.time() if now is None else now
        young = [j for j in result.ready if now - j.mtime < gate.min_age_seconds]
        for job in young:
            result.waiting.append((job, _too_young(now - job.mtime, gate.min_age_seconds)))
        result.ready = [j for j in result.ready if now - j.mtime >= gate.min_age_seconds]
    if gate.stable_seconds and result.ready:
        tracker = tracker or StabilityTracker()
        candidates = result.ready
        result.ready = []
        if wait:
            for job in candidates:
                tracker.observe(job)
            await sleep(gate.stable_seconds)
            candidates = await _restat(sftp, candidates, result)
        for job in candidates:
            unchanged = tracker.observe(job)
            if unchanged >= gate.stable_seconds:
                result.ready.append(job)
            else:
                result.waiting.append(
                    (
                        job,
                        f"still changing: unchanged for {unchanged:.0f} of "
                        f"{gate.stable_seconds:g} s",
                    )
                )
    return result


def _too_young(age_seconds: float, min_age_seconds: float) -> str:
    """Why a file under the minimum age waits; a negative age (an mtime in our future) most
    likely means the server's clock is ahead, and says so: "modified 0 s ago" hid it."""
    wanted = f"{min_age_seconds:g}"
    if age_seconds < 0:
        return (
            f"its mtime is {-age_seconds:.0f} s in the future (the server's clock may be ahead "
            f"of ours); waiting until it is {wanted} s old"
        )
    return f"modified {age_seconds:.0f} s ago; waiting until {wanted} s old"


async def _restat(sftp: SftpPool, jobs: list[FileJob], result: GateResult) -> list[FileJob]:
    """The jobs with their current size and mtime; a file gone meanwhile is waiting."""
    slots = asyncio.Semaphore(RESTAT_CONCURRENCY)

    async def one(job: FileJob) -> FileJob | None:
        async with slots:
            try:
                entry = await sftp.stat(job.endpoint, job.path)
            except TransferError as exc:
                result.waiting.append((job, f"could not be checked again: {exc.message}"))
                return None
        return replace(job, size=entry.size, mtime=entry.mtime)

    fresh = await asyncio.gather(*(one(j) for j in jobs))
    return [j for j in fresh if j is not None]
