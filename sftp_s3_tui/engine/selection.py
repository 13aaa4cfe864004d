"""From a listing to the files a run takes: filters first, then the readiness gate.

Done files are set aside before the filters (``--include '*.csv'`` must not hide
``x.csv.done``); the filters decide what is *excluded*; the gate decides what is *waiting*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .filters import FileFilter
from .plan import FileJob
from .readiness import ReadinessGate, StabilityTracker, check_ready
from .sftp import SftpPool


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
    pool: SftpPool,
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
        verdict = await check_ready(passed, gate, pool, tracker=tracker, markers=markers, wait=wait)
        selection.jobs = verdict.ready
        selection.waiting = verdict.waiting
        selection.done_files = verdict.done_files
    else:
        selection.jobs = passed
    selection.roots = {job.path: root for job in selection.jobs}
    return selection
