"""Helpers of the nightly tests: run a selection through CopyRun, read a manifest back, and a
real asyncssh SFTP server that cannot rename or delete (as some partners' servers)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.nightly.manifest import Manifest
from sftp_s3_tui.engine.nightly.run import CopyRun, RunReport
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from sftp_s3_tui.engine.plan.filters import FileFilter, source_root
from sftp_s3_tui.engine.plan.readiness import ReadinessGate
from sftp_s3_tui.engine.plan.selection import select_jobs
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo


async def nightly(
    server: SftpServerInfo,
    source: str,
    dest: str,
    s3_endpoint: S3Endpoint,
    *,
    options: TransferOptions | None = None,
    action: SourceAction | None = None,
    manifest: Path | None = None,
    file_filter: FileFilter | None = None,
    gate: ReadinessGate | None = None,
) -> RunReport:
    """What ``copy SOURCE DEST [--move-to …] [--manifest …]`` does, in process."""
    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(server.endpoint(), source, parse_s3_url(dest))
        selection = await select_jobs(
            queue.sftp, jobs, source_root(source), file_filter=file_filter, gate=gate
        )
        record = await Manifest.open(str(manifest)) if manifest else None
        try:
            return await CopyRun(queue, manifest=record, source_action=action).run(selection)
        finally:
            if record is not None:
                await record.close()


def manifest_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _Stubborn(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, that refuses rename and fails deletes."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes) -> None:
        super().__init__(chan, chroot=root)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("rename not supported")

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

    def remove(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("deleting is not allowed here")


class _KeyAuth(asyncssh.SSHServer):
    def __init__(self, key: asyncssh.SSHKey) -> None:
        self._key = key

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data == self._key.public_data


@contextlib.asynccontextmanager
async def key_login_sftp(
    base: Path, sftp_factory: Callable[[asyncssh.SSHServerChannel, bytes], asyncssh.SFTPServer]
) -> AsyncIterator[SftpServerInfo]:
    """A real SFTP server (asyncssh) over ``base/root`` whose sessions ``sftp_factory(chan,
    root)`` makes, reached as ``partner`` with a fresh key and a known host key."""
    root = base / "root"
    root.mkdir(parents=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    identity = base / "id_ed25519"
    client_key.write_private_key(identity)
    identity.chmod(0o600)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    public = client_key.convert_to_public()
    acceptor = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=lambda: _KeyAuth(public),
        sftp_factory=lambda chan: sftp_factory(chan, str(root).encode()),
        allow_scp=False,
    )
    port = acceptor.get_port()
    known = base / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    try:
        yield SftpServerInfo(
            kind="asyncssh",
            host="127.0.0.1",
            port=port,
            username="partner",
            identity_file=identity,
            known_hosts=known,
            root=root,
            remote_root="/",
        )
    finally:
        acceptor.close()
        await acceptor.wait_closed()


@contextlib.asynccontextmanager
async def stubborn_sftp(base: Path) -> AsyncIterator[SftpServerInfo]:
    """A real SFTP server (asyncssh) over ``base/root`` without rename and delete."""
    async with key_login_sftp(base, _Stubborn) as info:
        yield info


class _Replacing(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, whose plain rename replaces an existing
    target (as ``posix-rename`` does; SFTP v3 says it must refuse). ``appearing`` names
    paths another archiver fills right after this client checked them: each one's first
    lstat says it is not there yet (the race the archive step must survive)."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes, appearing: set[str]) -> None:
        super().__init__(chan, chroot=root)
        self.appearing = appearing

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self.posix_rename(oldpath, newpath)

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        name = path.decode()
        if name in self.appearing:
            self.appearing.discard(name)
            raise asyncssh.SFTPNoSuchFile(f"{name} is not there (yet)")
        return super().lstat(path)  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def replacing_sftp(
    base: Path, appearing: set[str] | None = None
) -> AsyncIterator[SftpServerInfo]:
    """A real SFTP server (asyncssh) over ``base/root`` whose plain rename replaces (see
    :class:`_Replacing`); it offers ``hardlink@openssh.com`` as asyncssh does."""
    names = appearing if appearing is not None else set()
    async with key_login_sftp(base, lambda chan, root: _Replacing(chan, root, names)) as info:
        yield info
