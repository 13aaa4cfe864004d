"""The plan of a copy before it runs (``--dry-run``, the TUI's confirm dialog): per file its
source, key, size, decision and part size, and the totals. Asks S3 only read-only questions
(a listing, HEADs) and writes nothing anywhere."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..config import ConflictPolicy, TransferOptions
from ..errors import UsageError
from ..units import format_size
from .conflicts import Action, DestinationIndex, ExistingObject, decide
from .selection import Selection
from .sources import FileJob, part_count, part_size_for


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file of the plan; ``requests`` are the S3 requests its copy makes to write and
    verify it (0 for a file that is not copied)."""

    source: str
    path: str
    bucket: str
    key: str
    size: int
    mtime: int
    action: Action
    reason: str
    part_size: int = 0
    parts: int = 0
    requests: int = 0
    #: What is at the key now (a front shows it; not in the JSON rows).
    existing: ExistingObject | None = field(default=None, compare=False)
    #: The job itself, for a front that queues the plan it showed.
    job: FileJob | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "mtime": self.mtime,
            "decision": self.action.value,
            "reason": self.reason,
            "part_size": self.part_size,
            "parts": self.parts,
            "requests": self.requests,
        }


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """Files and bytes per action, and the parts and S3 requests of the files to copy."""

    files: dict[Action, int]
    bytes: dict[Action, int]
    parts: int = 0
    requests: int = 0

    @classmethod
    def of(cls, planned: Iterable[PlannedFile]) -> PlanTotals:
        files = dict.fromkeys(Action, 0)
        sizes = dict.fromkeys(Action, 0)
        parts = requests = 0
        for item in planned:
            files[item.action] += 1
            sizes[item.action] += item.size
            parts += item.parts
            requests += item.requests
        return cls(files, sizes, parts, requests)

    @property
    def files_to_copy(self) -> int:
        """Files the copy reads (copied, overwritten or compared)."""
        return sum(n for action, n in self.files.items() if action.reads_source)

    @property
    def bytes_to_send(self) -> int:
        """Bytes read from SFTP at most (a compared file may turn out identical)."""
        return sum(n for action, n in self.bytes.items() if action.reads_source)

    def as_json(self) -> dict[str, int]:
        """``files``, ``bytes``, ``parts``, ``requests`` of the files to copy, then the
        number of files per action (only actions that occur)."""
        return {
            "files": self.files_to_copy,
            "bytes": self.bytes_to_send,
            "parts": self.parts,
            "requests": self.requests,
            **{a.value: n for a, n in sorted(self.files.items()) if n},
        }


@dataclass
class CopyPlan:
    """Every file considered, in listing order, and the totals of those that will be read."""

    files: list[PlannedFile] = field(default_factory=list)
    lookup_requests: int = 0  # the read-only S3 requests the plan itself made
    policy: ConflictPolicy = ConflictPolicy.OVERWRITE  # what the files were decided under

    @property
    def counts(self) -> Counter[Action]:
        return Counter(f.action for f in self.files)

    @property
    def tally(self) -> PlanTotals:
        """The totals, per action (what the TUI's dialog and ``--dry-run`` show)."""
        return PlanTotals.of(self.files)

    def totals(self) -> dict[str, int]:
        """The totals as the ``--dry-run --json`` summary gives them."""
        return self.tally.as_json()

    def summary(self) -> str:
        """One line: ``3 files to copy (1.2 GiB, 160 parts, 175 requests); 2 skip, …``."""
        t = self.totals()
        others = ", ".join(
            f"{n} {a.value}" for a, n in sorted(self.counts.items()) if not a.reads_source
        )
        line = (
            f"{t['files']} file(s) to copy ({format_size(t['bytes'])}, {t['parts']} part(s), "
            f"{t['requests']} S3 request(s))"
        )
        return f"{line}; {others}" if others else line

    def table(self) -> list[str]:
        """Human-readable rows: decision, size, part size × parts, source → key, why."""
        rows = []
        for f in self.files:
            parts = f"{format_size(f.part_size)} × {f.parts}" if f.parts else "-"
            rows.append(
                f"{f.action.value:<9} {format_size(f.size):>10}  {parts:<16} "
                f"{f.source} → s3://{f.bucket}/{f.key}  ({f.reason})"
            )
        return rows


def requests_for(size: int, part_size: int, *, verify: bool) -> tuple[int, int, int]:
    """(part size, parts, S3 requests) for a file of ``size`` bytes.

    One part: PutObject (+ HEAD when verifying). Multipart: Create, the parts, Complete, the
    sha256 tag (+ HEAD when verifying).
    """
    part = part_size_for(size, part_size)
    if size <= part:
        return size, 1, 1 + int(verify)
    count = part_count(size, part)
    return part, count, count + 3 + int(verify)


def plan_file(
    job: FileJob,
    action: Action,
    reason: str,
    options: TransferOptions,
    existing: ExistingObject | None = None,
) -> PlannedFile:
    part = parts = requests = 0
    if action.reads_source:
        try:
            part, parts, requests = requests_for(job.size, options.part_size, verify=options.verify)
        except UsageError as exc:  # larger than S3 allows: it would fail, say so now
            action, reason = Action.INVALID, str(exc)
    return PlannedFile(
        source=job.source,
        path=job.path,
        bucket=job.bucket,
        key=job.key,
        size=job.size,
        mtime=job.mtime,
        action=action,
        reason=reason,
        part_size=part,
        parts=parts,
        requests=requests,
        existing=existing,
        job=job,
    )


async def preview_copy(
    selection: Selection,
    index: DestinationIndex,
    options: TransferOptions,
    *,
    on_planned: Callable[[PlannedFile], None] | None = None,
) -> CopyPlan:
    """The plan for ``selection`` under ``options.conflict``, from a listing of the
    destination (one bounded ListObjectsV2 per bucket) and HEADs where it cannot tell.
    ``on_planned`` is told each file as it is decided (a front prints it at once)."""
    before = index.list_requests + index.head_requests
    by_bucket: dict[str, list[str]] = {}
    for job in selection.jobs:
        by_bucket.setdefault(job.bucket, []).append(job.key)
    for bucket, keys in by_bucket.items():
        await index.preload(bucket, keys)
    plan = CopyPlan(policy=options.conflict)

    def add(planned: PlannedFile) -> None:
        plan.files.append(planned)
        if on_planned is not None:
            on_planned(planned)

    for job in selection.jobs:
        if job.problem:
            add(plan_file(job, Action.INVALID, job.problem, options))
            continue
        policy = options.conflict
        existing = await index.lookup(
            job.bucket, job.key, policy=policy, size=job.size, mtime=job.mtime
        )
        decision = decide(policy, job.size, job.mtime, existing)
        add(plan_file(job, decision.action, decision.reason, options, existing))
    for job, reason in selection.waiting:
        add(plan_file(job, Action.WAITING, reason, options))
    for job, reason in selection.excluded:
        add(plan_file(job, Action.EXCLUDED, reason, options))
    plan.lookup_requests = index.list_requests + index.head_requests - before
    return plan
