"""The verified move: delete the source, or move it to an archive folder on the SFTP server,
only once its object is verified in S3 and the source is re-stat'ed unchanged.

Never after a failure, a cancel or a skip (a skipped file was not verified by this run). A
server that cannot rename, or a delete that fails, is reported for that file and does not
fail the copy: the object is safe in S3 either way.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass

import asyncssh

from ..errors import TransferError, UsageError
from ..events import TransferResult, TransferState
from ..plan.filters import relative_path
from ..plan.sources import FileJob
from ..sftp.pool import SftpPool

UNVERIFIED = frozenset({"", "none", "size-only"})


@dataclass(frozen=True)
class SourceAction:
    """What to do with a source once its object is verified: delete it, or move it under
    ``move_to`` keeping its path relative to the source folder. ``done_files`` too: the
    same for the file's done file (``--done-file``)."""

    delete: bool = False
    move_to: str | None = None
    done_files: bool = True

    def __post_init__(self) -> None:
        if self.delete and self.move_to:
            raise UsageError("Give --delete-source or --move-to, not both")
        if self.move_to is not None and not self.move_to.startswith("/"):
            raise UsageError(f"--move-to {self.move_to!r} is not absolute", "e.g. /processed/")

    @property
    def active(self) -> bool:
        return self.delete or bool(self.move_to)

    @property
    def describe(self) -> str:
        return "delete" if self.delete else f"move to {self.move_to}" if self.move_to else "keep"

    def target_for(self, path: str, root: str) -> str | None:
        """Where ``path`` goes under ``move_to`` (``None`` when deleting or keeping)."""
        if not self.move_to:
            return None
        return posixpath.join(self.move_to, relative_path(path, root))


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What happened to one source file: ``action`` is deleted, moved or kept."""

    path: str
    action: str
    ok: bool
    reason: str = ""
    target: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "source_action": self.action, "ok": self.ok}
        if self.target:
            out["target"] = self.target
        if self.reason:
            out["reason"] = self.reason
        return out


def verified(result: TransferResult, *, verify_enabled: bool) -> bool:
    """Whether this run landed ``result``'s object and checked it against the source."""
    if result.status is not TransferState.DONE:
        return False
    verified_by = getattr(result, "verified_by", None)
    if verified_by is not None:
        return str(verified_by) not in UNVERIFIED
    return verify_enabled


def why_kept(result: TransferResult, *, verify_enabled: bool) -> str | None:
    """Why the source must stay, or None when it may be touched."""
    if result.status is not TransferState.DONE:
        return f"the transfer {result.status.value}"
    if not verified(result, verify_enabled=verify_enabled):
        return "the object was not verified"
    return None


async def apply_source_action(
    pool: SftpPool,
    job: FileJob,
    result: TransferResult,
    action: SourceAction,
    *,
    root: str,
    verify_enabled: bool = True,
    done_file: str | None = None,
) -> list[SourceOutcome]:
    """Delete or move ``job``'s source (and its done file) if, and only if, it is safe."""
    if not action.active:
        return []
    kept = why_kept(result, verify_enabled=verify_enabled)
    if kept is None:
        kept = await _changed_since(pool, job)
    if kept is not None:
        return [SourceOutcome(job.path, "kept", ok=False, reason=kept)]
    outcomes = [await _act(pool, job, job.path, action, root)]
    if done_file and action.done_files and outcomes[0].ok:
        outcomes.append(await _act(pool, job, done_file, action, root))
    return outcomes


async def _changed_since(pool: SftpPool, job: FileJob) -> str | None:
    """Why the source no longer is what was copied (None: same size and mtime)."""
    try:
        entry = await pool.stat(job.endpoint, job.path)
    except TransferError as exc:
        return f"it could not be checked again: {exc.message}"
    if (entry.size, entry.mtime) != (job.size, job.mtime):
        return (
            f"it changed after it was listed (size {job.size} → {entry.size}, "
            f"mtime {job.mtime} → {entry.mtime})"
        )
    return None


async def _act(
    pool: SftpPool, job: FileJob, path: str, action: SourceAction, root: str
) -> SourceOutcome:
    timeout = job.endpoint.request_timeout_seconds
    try:
        client = await pool.client(job.endpoint)
    except TransferError as exc:
        return SourceOutcome(path, "kept", ok=False, reason=exc.message)
    target = action.target_for(path, root)
    try:
        async with asyncio.timeout(timeout):
            if target is None:
                await client.remove(path)
                return SourceOutcome(path, "deleted", ok=True)
            await client.makedirs(posixpath.dirname(target), exist_ok=True)
            await _rename(client, path, target)
            return SourceOutcome(path, "moved", ok=True, target=target)
    except asyncssh.SFTPOpUnsupported:
        return SourceOutcome(
            path,
            "kept",
            ok=False,
            target=target,
            reason="the SFTP server does not support rename; use --delete-source or move it",
        )
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        what = "delete it" if target is None else f"move it to {target}"
        if isinstance(exc, TimeoutError):
            why = "the server did not answer in time"
        else:
            why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        return SourceOutcome(
            path, "kept", ok=False, target=target, reason=f"could not {what}: {why}"
        )


async def _rename(client: asyncssh.SFTPClient, path: str, target: str) -> None:
    """POSIX rename (replaces an older archived copy) where offered, else plain rename."""
    try:
        await client.posix_rename(path, target)
    except asyncssh.SFTPOpUnsupported:
        await client.rename(path, target)
