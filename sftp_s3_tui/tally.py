"""What a headless run counts for its summary, whichever way the files go."""

from __future__ import annotations

from .exit_codes import EXIT_FAILED, EXIT_OK


class FileCounts:
    """Running counts of a run's files (nothing kept per file) and the summary record
    ``--json`` ends with: the same fields for a copy and a delivery."""

    def __init__(self) -> None:
        self.files = self.copied = self.skipped = self.failed = self.bytes = 0

    def count(self, status: str, size: int) -> None:
        """One finished file: ``done`` (its ``size`` bytes sent), ``skipped``, or a failure."""
        self.files += 1
        if status == "done":
            self.copied += 1
            self.bytes += size
        elif status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def summary(self, seconds: float) -> dict[str, object]:
        return {
            "summary": True,
            "files": self.files,
            "copied": self.copied,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(seconds, 3),
            "exit_code": EXIT_FAILED if self.failed else EXIT_OK,
        }
