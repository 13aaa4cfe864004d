"""The verified move: delete the source, or move it to an archive folder on the SFTP server,
only once its object is verified in S3 and the source is re-stat'ed unchanged.

Never after a failure, a cancel or a skip (a skipped file was not verified by this run). A
server that cannot rename, or a delete that fails, is reported for that file and does not
fail the copy: the object is safe in S3 either way.

An archived file is never replaced: partners reuse names (``a.csv`` every day), and with a
reused key yesterday's archived copy may be the only one left. When ``/processed/a.csv`` is
taken the file goes to ``/processed/a.csv.<UTC time of the move, YYYYmmddTHHMMSSZ>`` (then
``….1``, ``….2`` should that be taken too), as rclone's ``--suffix`` does; the outcome names
where it went. The move is the plain SFTP rename, which SFTP v3 says fails when the target
exists (OpenSSH and asyncssh do); ``posix-rename@openssh.com``, which replaces it, is never
used. A server whose plain rename replaces anyway (the pool probes it once per host, in the
archive folder, on the first move) is moved to with ``hardlink@openssh.com`` (which refuses
an existing name) and the source's removal where it offers it; else the check-then-rename
stays and the outcome's note says a concurrent archiver could clobber an archived file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncssh

from ..errors import TransferError, UsageError
from ..events import TransferResult, TransferState
from ..plan.filters import relative_path
from ..plan.sources import FileJob
from ..sftp.pool import SftpPool

UNVERIFIED = frozenset({"", "none", "size-only"})
#: The note of a move on a server whose plain rename replaces and that has no hard links.
RENAME_REPLACES = (
    "this server's plain rename replaces an existing file (its rename probe showed it): "
    "an archiver running at the same moment could clobber an archived file"
)
ARCHIVE_NAMES = 100  # names tried beside a taken archive name before the source is kept


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

    def check_archive(self, sources: Iterable[str]) -> None:
        """Refuse (:class:`UsageError`) a ``move_to`` that is a source's folder — nothing
        would move and every run would ship the files again — or inside a folder the source
        walks (every run would ship the archive again: ``processed/processed/a.csv``).

        A glob ``/drop/*.csv`` walks only the names it matches, so ``/drop/processed/`` is a
        fine archive for it; a single file's own folder is caught per file, as the move."""
        if not self.move_to:
            return
        archive = _normal(self.move_to)
        for source in sources:
            if not source.startswith("/"):  # relative to the login folder: cannot compare
                continue
            name = posixpath.basename(source.rstrip("/"))
            pattern = name if any(ch in name for ch in "*?[") else None
            folder = _normal(posixpath.dirname(source.rstrip("/")) if pattern else source)
            hint = "archive outside the folder being copied, e.g. /processed/"
            if archive == folder:
                raise UsageError(
                    f"--move-to {self.move_to} is the source folder {folder}: nothing would "
                    "move, and every run would ship its files again",
                    hint,
                )
            inside = relative_path(archive, folder)
            if archive.startswith(folder.rstrip("/") + "/") and (
                pattern is None or fnmatch.fnmatch(inside.split("/")[0], pattern)
            ):
                raise UsageError(
                    f"--move-to {self.move_to} is inside the source {source}: every run would "
                    f"ship the archived files again (as {inside}/…)",
                    hint,
                )

    def target_for(self, path: str, root: str) -> str | None:
        """Where ``path`` goes under ``move_to`` (``None`` when deleting or keeping)."""
        if not self.move_to:
            return None
        return _normal(posixpath.join(self.move_to, relative_path(path, root)))


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What happened to one source file: ``action`` is deleted, moved or kept. ``target`` is
    where a moved file went; ``note`` says why that is not the plain archive name."""

    path: str
    action: str
    ok: bool
    reason: str = ""
    target: str | None = None
    note: str = ""
    #: What the server's rename probe found (``refuses``, ``replaces``, ``unknown``): what
    #: the move relied on ('' when no move was tried).
    rename_overwrites: str = ""
    #: How the file was moved: ``rename``, or ``hardlink`` (a server whose rename replaces).
    moved_by: str = ""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "source_action": self.action, "ok": self.ok}
        if self.target:
            out["target"] = self.target
        if self.rename_overwrites:
            out["rename_overwrites"] = self.rename_overwrites
        if self.moved_by:
            out["moved_by"] = self.moved_by
        if self.reason:
            out["reason"] = self.reason
        if self.note:
            out["note"] = self.note
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
    sftp: SftpPool,
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
        kept = await _changed_since(sftp, job)
    if kept is not None:
        return [SourceOutcome(job.path, "kept", ok=False, reason=kept)]
    # One suffix for the file and its done file, so a renamed pair still pairs.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    outcomes = [await _act(sftp, job, job.path, action, root, stamp)]
    if done_file and action.done_files and outcomes[0].ok:
        outcomes.append(await _act(sftp, job, done_file, action, root, stamp))
    return outcomes


async def _changed_since(sftp: SftpPool, job: FileJob) -> str | None:
    """Why the source no longer is what was copied (None: same size and mtime)."""
    try:
        entry = await sftp.stat(job.endpoint, job.path)
    except TransferError as exc:
        return f"it could not be checked again: {exc.message}"
    if (entry.size, entry.mtime) != (job.size, job.mtime):
        return (
            f"it changed after it was listed (size {job.size} → {entry.size}, "
            f"mtime {job.mtime} → {entry.mtime})"
        )
    return None


async def _act(
    sftp: SftpPool, job: FileJob, path: str, action: SourceAction, root: str, stamp: str
) -> SourceOutcome:
    timeout = job.endpoint.request_timeout_seconds
    try:
        client = await sftp.client(job.endpoint)
    except TransferError as exc:
        return SourceOutcome(path, "kept", ok=False, reason=exc.message)
    target = action.target_for(path, root)
    try:
        async with asyncio.timeout(timeout):
            if target is None:
                await client.remove(path)
                return SourceOutcome(path, "deleted", ok=True)
            if target == path:
                return SourceOutcome(
                    path,
                    "kept",
                    ok=False,
                    target=target,
                    reason=f"--move-to {action.move_to} is the folder it is in; "
                    "give an archive folder outside the drop",
                )
            await client.makedirs(posixpath.dirname(target), exist_ok=True)
            rename = await sftp.rename_behaviour(job.endpoint, posixpath.dirname(target))
            profile = sftp.server_profile(job.endpoint)
            link = rename == "replaces" and profile is not None and profile.hardlink
            placed = await _move_aside_of_archived(client, path, target, stamp, link=link)
            if placed is None:
                return SourceOutcome(
                    path,
                    "kept",
                    ok=False,
                    target=target,
                    reason=f"{target} and {ARCHIVE_NAMES - 1} names beside it "
                    "already hold archived files",
                )
            notes = [] if placed == target else [f"{target} already held an archived file"]
            if rename == "replaces" and not link:
                notes.append(RENAME_REPLACES)
            return SourceOutcome(
                path,
                "moved",
                ok=True,
                target=placed,
                note="; ".join(notes),
                rename_overwrites=rename,
                moved_by="hardlink" if link else "rename",
            )
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


def _normal(path: str) -> str:
    """An absolute path without ``.``, ``..``, doubled or trailing slashes."""
    return "/" + posixpath.normpath(path).lstrip("/") if path.strip("/") else "/"


def archive_names(target: str, stamp: str) -> list[str]:
    """The names tried for an archived file, in order: the plain one, then with the suffix."""
    aside = f"{target}.{stamp}"
    return [target, aside, *(f"{aside}.{n}" for n in range(1, ARCHIVE_NAMES - 1))]


async def _move_aside_of_archived(
    client: asyncssh.SFTPClient, path: str, target: str, stamp: str, *, link: bool = False
) -> str | None:
    """Rename ``path`` to the first free name of :func:`archive_names`; the name used, or
    None when every one is taken.

    The plain rename, never posix-rename: it refuses to replace an existing file, so a name
    taken between the check and the rename (another run archiving too) is not clobbered on
    the servers that honour it; the next name is tried instead. With ``link`` (a server
    whose plain rename was seen to replace, offering ``hardlink@openssh.com``) the move is
    a hard link, which refuses an existing name on every server, then the source's removal.
    """
    for name in archive_names(target, stamp):
        if await client.lexists(name):
            continue
        try:
            if link:
                await _link_then_remove(client, path, name)
            else:
                await client.rename(path, name)
        except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
            if await client.lexists(name):  # taken meanwhile: try the next name
                continue
            raise
        return name
    return None


async def _link_then_remove(client: asyncssh.SFTPClient, path: str, name: str) -> None:
    """Move ``path`` to ``name`` as a hard link and the source's removal; a removal that
    fails takes the new link away again (the source stays whole where it was)."""
    await client.link(path, name)
    try:
        await client.remove(path)
    except BaseException:
        with contextlib.suppress(OSError, asyncssh.Error):
            await client.remove(name)
        raise
