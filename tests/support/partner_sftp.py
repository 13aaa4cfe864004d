"""Partner SFTP servers that behave like the ones deliveries meet in the field, over real
SFTP (asyncssh, files on disk under ``base/root``):

* ``no-posix-rename``: offers no ``posix-rename@openssh.com`` (appliances, older servers);
  its plain rename refuses an existing target, as SFTP v3 says;
* ``no-rename``: refuses every rename (drop boxes that only let files be written);
* ``flips-a-byte``: stores the first byte of each file inverted (a disk or a server that
  changes what it was sent: every size and status still says all is well).

asyncssh advertises its SFTP extensions from a class attribute of its server handler, so the
``no-posix-rename`` server hides the extension by patching that attribute for as long as it
runs (``monkeypatch``, this test process only: the CLI under test runs in another process).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Literal

import asyncssh
import pytest
from asyncssh.sftp import SFTPServerHandler

from tests.support.nightly import key_login_sftp
from tests.support.servers import SftpServerInfo

Behaviour = Literal["no-posix-rename", "no-rename", "flips-a-byte"]


class _Partner(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, with ``behaviour``'s refusals."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes, behaviour: Behaviour) -> None:
        super().__init__(chan, chroot=root)
        self._behaviour = behaviour

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        if self._behaviour == "no-rename":
            raise asyncssh.SFTPOpUnsupported("rename not supported")
        super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

    def write(self, file_obj: object, offset: int, data: bytes) -> int | Awaitable[int]:
        if self._behaviour == "flips-a-byte" and offset == 0 and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return super().write(file_obj, offset, data)


@contextlib.asynccontextmanager
async def partner_sftp(
    base: Path, behaviour: Behaviour, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SftpServerInfo]:
    """Run a partner server over ``base / "root"`` on the running loop."""
    monkeypatch.setattr(
        SFTPServerHandler,
        "_extensions",
        [e for e in SFTPServerHandler._extensions if e[0] != b"posix-rename@openssh.com"],
    )
    async with key_login_sftp(base, lambda chan, root: _Partner(chan, root, behaviour)) as info:
        yield info
