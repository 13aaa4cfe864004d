"""From a listing to the files a run takes: filters first, then the readiness gate.

Done files are set aside before the filters (``--include '*.csv'`` must not hide
``x.csv.done``); the filters decide what is *excluded*; the gate decides what is *waiting*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..sftp.pool import SftpPool
from .filters import FileFilter, source_root
from .readiness import ReadinessGate, StabilityTracker, check_ready
from .sources import FileJob, PlanSource


@dataclass
class Selection:
    """What a run takes from its listings, and what it leaves and why."""

    jobs: list[FileJob] = field(default_factory=list)
    excluded: list[tuple[FileJob, str]] = field(default_factory=list)
    waiting: list[tuple[FileJob, str]] = field(default_factory=list)
    done_files: dict[str, str] = field(default_factory=dict)  # data path → its done file
    roots: dict[str, str] = field(default_factory=dict)  # path → the source folder it is under

    def extend(self, other: Selection) -> None:
        self.jobs += other.jobs
        self.excluded += other.excluded
        self.waiting += other.waiting
        self.done_files.update(other.done_files)
        self.roots.update(other.roots)


async def select_jobs(
    sftp: SftpPool,
    jobs: Iterable[FileJob],
    root: str,
    *,
    file_filter: FileFilter | None = None,
    gate: ReadinessGate | None = None,
    tracker: StabilityTracker | None = None,
    wait: bool = True,
) -> Selection:
    """Apply the filters and the gate to the jobs listed under the source folder ``root``."""
    selection = Selection()
    file_filter = file_filter or FileFilter()
    gate = gate or ReadinessGate()
    markers: set[str] = set()
    passed: list[FileJob] = []
    for job in jobs:
        if gate.done_suffix and job.path.endswith(gate.done_suffix):
            markers.add(job.path)
            continue
        reason = file_filter.why_excluded(job, root)
        if reason is None:
            passed.append(job)
        else:
            selection.excluded.append((job, reason))
    if gate.active:
        verdict = await check_ready(passed, gate, sftp, tracker=tracker, markers=markers, wait=wait)
        selection.jobs = verdict.ready
        selection.waiting = verdict.waiting
        selection.done_files = verdict.done_files
    else:
        selection.jobs = passed
    selection.roots = {job.path: root for job in selection.jobs}
    return selection


def root_of(job: FileJob, roots: Sequence[tuple[str, str]]) -> str:
    """The deepest source folder (of ``job``'s endpoint) that ``job`` lies under."""
    best = "/"
    for endpoint, root in roots:
        if endpoint != job.endpoint.display:
            continue
        inside = job.path == root or root == "/" or job.path.startswith(root + "/")
        if inside and len(root) >= len(best):
            best = root
    return best


async def select_planned(
    sftp: SftpPool,
    jobs: Sequence[FileJob],
    sources: Sequence[PlanSource],
    *,
    file_filter: FileFilter | None = None,
    gate: ReadinessGate | None = None,
    tracker: StabilityTracker | None = None,
    wait: bool = True,
) -> Selection:
    """:func:`select_jobs` over a whole plan (``plan_copy``'s jobs of several sources): each
    file is filtered relative to the source folder it came from."""
    roots = [(s.endpoint.display, source_root(s.path)) for s in sources]
    groups: dict[str, list[FileJob]] = {}
    for job in jobs:
        groups.setdefault(root_of(job, roots), []).append(job)
    selection = Selection()
    for root, group in groups.items():
        selection.extend(
            await select_jobs(
                sftp, group, root, file_filter=file_filter, gate=gate, tracker=tracker, wait=wait
            )
        )
    return selection
