"""What a nightly run adds to a copy, in a module of its own: the fronts build it while the
SSH logins start, before the S3 stack (which :mod:`.workflow` needs) is imported."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plan.filters import FileFilter
from ..plan.readiness import ReadinessGate
from .source_actions import SourceAction


@dataclass(frozen=True)
class RunOptions:
    """What a nightly run adds to a copy: which files (filters, gate), what is recorded
    (manifest: a local path or ``s3://bucket/key``), what happens to sources afterwards,
    and whether it only plans (``dry_run``)."""

    file_filter: FileFilter = field(default_factory=FileFilter)
    gate: ReadinessGate = field(default_factory=ReadinessGate)
    source_action: SourceAction = field(default_factory=SourceAction)
    manifest: str | None = None
    dry_run: bool = False
