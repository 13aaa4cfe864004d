"""The tunables of a delivery run (S3 → SFTP), apart from :mod:`.delivery` so a front can
build a request without importing the S3 stack (a delivery's login starts meanwhile)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import ConflictPolicy, MiB
from ..plan.filters import FileFilter


@dataclass(frozen=True)
class DeliveryOptions:
    """Tunables of a delivery run.

    The default conflict policy is ``skip-existing``: a partner may already have picked up
    (or be reading) the file at the final name, so it is never replaced unless asked;
    ``overwrite`` / ``if-newer`` / ``if-different`` replace it atomically with
    ``posix-rename@openssh.com``, else by renaming the old file aside first (see
    :meth:`RemoteWriter.publish`).
    """

    part_size: int = 8 * MiB
    parts_in_flight: int = 8  # per object: buffers held at once (ranged GETs + writes)
    # As many as an upload's: a small object's story is ~7 round trips, so at 50 ms RTT
    # 4 in flight delivered 12 files/s and 64 deliver 145 (2,000 x 64 KiB); buffers still
    # come from the one pool, so memory stays within the budget.
    files_in_flight: int = 64
    memory_budget: int = 512 * MiB
    conflict: ConflictPolicy = ConflictPolicy.SKIP_EXISTING
    delete_source: bool = False
    sftp_block_size: int = 0  # 0: what the server's limits allow
    sftp_requests: int = 0  # 0: asyncssh's default (128 writes in flight)
    #: --inplace: write to the final name (servers that forbid rename; see INPLACE_RISK).
    inplace: bool = False
    #: --done-file SUFFIX: an empty NAME+SUFFIX written once NAME is in place.
    done_suffix: str = ""
    #: --include / --exclude / --filter / sizes / times over a prefix's objects.
    file_filter: FileFilter | None = None
    #: --min-age: a prefix's objects younger than this (LastModified, per listing) wait.
    min_age_seconds: float = 0.0
    #: Where each delivery in progress is recorded (its temporary file, for the next run
    #: after a kill -9); None: not recorded.
    record_dir: Path | None = None
    #: --verify-readback: read the temporary file back over SFTP before it is published
    #: and compare its SHA-256 with the bytes read from S3 (a second pass over the link).
    verify_readback: bool = False
    #: --verify-server-hash: ask the server for the SHA-256 of the temporary file
    #: (check-file-handle: ProFTPD) before it is published; where it cannot, the result
    #: says so and the delivery goes on.
    verify_server_hash: bool = False
